//! Status classes: the second key of every latency histogram.
//!
//! Why classes and not exact statuses: a handful of classes keeps the number of histograms small and fixed,
//! while still separating what the users care about — successes, 429 rate limits (excluded from their error
//! rate), other client errors, server errors and each kind of transport failure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ErrorClass, OutcomeResult};

/// Class of a request's result; serialized as the short names shown in `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StatusClass {
    /// 100-199.
    #[serde(rename = "1xx")]
    Informational,
    /// 200-299.
    #[serde(rename = "2xx")]
    Success,
    /// 300-399.
    #[serde(rename = "3xx")]
    Redirect,
    /// 400-499 except 429.
    #[serde(rename = "4xx")]
    ClientError,
    /// 429 Too Many Requests, kept apart because rate limiting is often expected.
    #[serde(rename = "429")]
    TooManyRequests,
    /// 500-599.
    #[serde(rename = "5xx")]
    ServerError,
    /// A status outside 100-599.
    #[serde(rename = "invalid_status")]
    InvalidStatus,
    /// Transport: timeout.
    #[serde(rename = "timeout")]
    Timeout,
    /// Transport: connection refused.
    #[serde(rename = "connect_refused")]
    ConnectRefused,
    /// Transport: connection reset or closed early.
    #[serde(rename = "reset")]
    Reset,
    /// Transport: unparsable body or stream.
    #[serde(rename = "parse")]
    Parse,
    /// Transport: stream ended before its terminal event.
    #[serde(rename = "stream_cut")]
    StreamCut,
    /// Transport: anything else.
    #[serde(rename = "other")]
    Other,
}

impl StatusClass {
    /// Every class, in report order.
    pub const ALL: [StatusClass; 13] = [
        Self::Informational,
        Self::Success,
        Self::Redirect,
        Self::ClientError,
        Self::TooManyRequests,
        Self::ServerError,
        Self::InvalidStatus,
        Self::Timeout,
        Self::ConnectRefused,
        Self::Reset,
        Self::Parse,
        Self::StreamCut,
        Self::Other,
    ];

    /// Class of an HTTP status code.
    pub fn of_status(status: u16) -> Self {
        match status {
            429 => Self::TooManyRequests,
            100..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirect,
            400..=499 => Self::ClientError,
            500..=599 => Self::ServerError,
            _ => Self::InvalidStatus,
        }
    }

    /// Class of a transport error.
    pub fn of_error(class: ErrorClass) -> Self {
        match class {
            ErrorClass::Timeout => Self::Timeout,
            ErrorClass::ConnectRefused => Self::ConnectRefused,
            ErrorClass::Reset => Self::Reset,
            ErrorClass::Parse => Self::Parse,
            ErrorClass::StreamCut => Self::StreamCut,
            ErrorClass::Other => Self::Other,
        }
    }

    /// Class of an outcome's result.
    pub fn of_result(result: &OutcomeResult<'_>) -> Self {
        match result {
            OutcomeResult::Status(status) => Self::of_status(*status),
            OutcomeResult::Error(class, _) => Self::of_error(*class),
        }
    }

    /// Short stable name (`2xx`, `429`, `timeout`, ...), identical to the serialized form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirect => "3xx",
            Self::ClientError => "4xx",
            Self::TooManyRequests => "429",
            Self::ServerError => "5xx",
            Self::InvalidStatus => "invalid_status",
            Self::Timeout => "timeout",
            Self::ConnectRefused => "connect_refused",
            Self::Reset => "reset",
            Self::Parse => "parse",
            Self::StreamCut => "stream_cut",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_classes() {
        for (status, class) in [
            (100, StatusClass::Informational),
            (200, StatusClass::Success),
            (204, StatusClass::Success),
            (302, StatusClass::Redirect),
            (400, StatusClass::ClientError),
            (428, StatusClass::ClientError),
            (429, StatusClass::TooManyRequests),
            (430, StatusClass::ClientError),
            (503, StatusClass::ServerError),
            (0, StatusClass::InvalidStatus),
            (600, StatusClass::InvalidStatus),
        ] {
            assert_eq!(StatusClass::of_status(status), class, "{status}");
        }
    }

    #[test]
    fn serialized_name_equals_display() {
        for class in StatusClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{class}\""));
            assert_eq!(serde_json::from_str::<StatusClass>(&json).unwrap(), class);
        }
    }
}
