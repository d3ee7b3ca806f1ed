//! The fault rule format: one flat record with a match part, a trigger part, an action and an optional TTL.
//! The same JSON/TOML shape is used in the config file (`[[rules]]`), the admin API and the harness timeline.

use crate::latency::Distribution;
use crate::route::{Provider, Route};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// What an injected fault does. Provider-shaped where there is a provider shape (errors, stream error events).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A provider-shaped error with `status` (default 500).
    #[default]
    Error,
    /// 429 rate limit (`limit` = requests or tokens) with `retry-after` (default 1 s).
    RateLimit,
    /// 429 `insufficient_quota` with no `retry-after` (unless `retry_after` is set).
    Quota,
    /// Overloaded: OpenAI 503, Anthropic 529 `overloaded_error`, both with `x-should-retry: true`.
    Overloaded,
    /// Extra latency drawn from `latency`, then the normal response.
    Latency,
    /// No answer until the client gives up (bounded by the config's `hang_max`).
    Hang,
    /// Reset the TCP connection (RST, via `SO_LINGER 0`) without sending anything.
    TcpReset,
    /// Close the connection cleanly (FIN) without sending any byte.
    Close,
    /// 200 with a body that is not valid JSON.
    MalformedJson,
    /// 200 whose body stops halfway through its announced `content-length`.
    TruncatedBody,
    /// Streams only: send `chunks` SSE frames, then drop the connection without the terminator.
    CutStream,
    /// Streams only: after `chunks` frames, send the provider's in-stream error event and end the stream.
    StreamError,
    /// Drop the connection `after` the request arrived (mid-stream for streams, before any byte otherwise).
    Disconnect,
    /// Dribble the response at `bytes_per_sec`.
    Slow,
    /// Streams only: after `chunks` frames, send a frame whose `data:` is not valid JSON, then continue.
    MalformedSse,
}

impl FaultKind {
    /// Every kind, for docs, metrics and tests.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Error,
        FaultKind::RateLimit,
        FaultKind::Quota,
        FaultKind::Overloaded,
        FaultKind::Latency,
        FaultKind::Hang,
        FaultKind::TcpReset,
        FaultKind::Close,
        FaultKind::MalformedJson,
        FaultKind::TruncatedBody,
        FaultKind::CutStream,
        FaultKind::StreamError,
        FaultKind::Disconnect,
        FaultKind::Slow,
        FaultKind::MalformedSse,
    ];

    /// Stable snake_case name (as in rules, the ledger and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Error => "error",
            FaultKind::RateLimit => "rate_limit",
            FaultKind::Quota => "quota",
            FaultKind::Overloaded => "overloaded",
            FaultKind::Latency => "latency",
            FaultKind::Hang => "hang",
            FaultKind::TcpReset => "tcp_reset",
            FaultKind::Close => "close",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedBody => "truncated_body",
            FaultKind::CutStream => "cut_stream",
            FaultKind::StreamError => "stream_error",
            FaultKind::Disconnect => "disconnect",
            FaultKind::Slow => "slow",
            FaultKind::MalformedSse => "malformed_sse",
        }
    }

    /// Kinds that only make sense on a streaming response; a rule with one only matches streaming requests.
    pub fn is_stream_only(self) -> bool {
        matches!(
            self,
            FaultKind::CutStream | FaultKind::StreamError | FaultKind::MalformedSse
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which limit a synthetic 429 claims was hit (OpenAI's `error.type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Requests per minute.
    #[default]
    Requests,
    /// Tokens per minute.
    Tokens,
}

/// One fault rule. Rules are ordered; the first rule that matches a request *and* whose trigger fires acts.
///
/// Match fields (all optional, empty = any): `keys` (key ids), `provider`, `routes`, `models`, `stream`.
/// Trigger fields (all given ones must hold): `probability`, `every_nth`, `first_n`, `after_n`, and the
/// window `[from, until)` measured from the mock's start or the epoch set through the admin API. Counts
/// (`every_nth`, `first_n`, `after_n`) are over the requests this rule matched, per key and route, since the
/// rule was installed. Action: `action` plus its parameters. `ttl`: the rule removes itself after this long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Unique id; assigned (`rule-N`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Match: key ids (empty = every key, including the pooled any-key bucket).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Match: provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Match: routes (empty = every route).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Match: requested model names (empty = any model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Match: only streaming (`true`) or only non-streaming (`false`) requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Trigger: fire with this probability (0..=1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Trigger: fire on every Nth matched request (the Nth, 2Nth, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_nth: Option<u64>,
    /// Trigger: fire on the first N matched requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_n: Option<u64>,
    /// Trigger: fire once N matched requests have passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_n: Option<u64>,
    /// Trigger: window start, relative to the epoch (mock start unless set by the admin API).
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<Duration>,
    /// Trigger: window end (exclusive), relative to the epoch.
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Duration>,
    /// Action.
    pub action: FaultKind,
    /// `error`: HTTP status (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `rate_limit`: which limit was hit (default requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitKind>,
    /// Error actions: `retry-after` / `retry-after-ms` to announce (default 1 s for `rate_limit`).
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<Duration>,
    /// Error actions: `x-should-retry` header value (default `true` for `overloaded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_retry: Option<bool>,
    /// Error actions and `stream_error`: message in the provider error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `latency`: extra delay distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Distribution>,
    /// `cut_stream`, `stream_error`, `malformed_sse`: number of SSE frames sent first (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u32>,
    /// `disconnect`: how long after the request arrives.
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<Duration>,
    /// `slow`: bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<u32>,
    /// The rule removes itself this long after it was installed.
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<Duration>,
}

/// A rule that cannot work as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// A field has an impossible value.
    #[error("rule {rule}: field `{field}`: {problem}")]
    InvalidField {
        /// Rule id or position.
        rule: String,
        /// Offending field.
        field: &'static str,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// Two rules share an id.
    #[error("rule id `{0}` is used twice")]
    DuplicateId(String),
}

impl FaultRule {
    /// A rule with this action and every other field empty (matches everything, always fires).
    pub fn new(action: FaultKind) -> Self {
        FaultRule {
            action,
            ..Default::default()
        }
    }

    /// Check the rule; `label` names it in errors (its id or position).
    pub fn validate(&self, label: &str) -> Result<(), RuleError> {
        let invalid = |field, problem: String| RuleError::InvalidField {
            rule: label.to_string(),
            field,
            problem,
        };
        if let Some(p) = self.probability.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(invalid("probability", format!("{p} is outside 0..=1")));
        }
        if self.every_nth == Some(0) {
            return Err(invalid("every_nth", "must be >= 1".into()));
        }
        if let (Some(from), Some(until)) = (self.from, self.until) {
            if from >= until {
                return Err(invalid(
                    "until",
                    format!("window [{from:?}, {until:?}) is empty"),
                ));
            }
        }
        if self.action.is_stream_only() && self.stream == Some(false) {
            return Err(invalid(
                "stream",
                format!("action `{}` needs a streaming request", self.action),
            ));
        }
        self.validate_action_parameters(label)
    }

    fn validate_action_parameters(&self, label: &str) -> Result<(), RuleError> {
        let invalid = |field, problem: String| RuleError::InvalidField {
            rule: label.to_string(),
            field,
            problem,
        };
        let action = self.action;
        if let Some(status) = self.status.filter(|s| !(100..=599).contains(s)) {
            return Err(invalid("status", format!("{status} is not an HTTP status")));
        }
        if let Some(latency) = &self.latency {
            latency
                .validate()
                .map_err(|problem| invalid("latency", problem.to_string()))?;
        }
        let required: &[(&'static str, bool)] = match action {
            FaultKind::Latency => &[("latency", self.latency.is_some())],
            FaultKind::Disconnect => &[("after", self.after.is_some())],
            FaultKind::Slow => &[("bytes_per_sec", self.bytes_per_sec.is_some_and(|b| b > 0))],
            _ => &[],
        };
        if let Some((field, _)) = required.iter().find(|(_, present)| !present) {
            return Err(invalid(
                field,
                format!("required (and > 0) for action `{action}`"),
            ));
        }
        let present = [
            (
                "status",
                self.status.is_some(),
                matches!(action, FaultKind::Error),
            ),
            (
                "limit",
                self.limit.is_some(),
                matches!(action, FaultKind::RateLimit),
            ),
            (
                "latency",
                self.latency.is_some(),
                matches!(action, FaultKind::Latency),
            ),
            ("chunks", self.chunks.is_some(), action.is_stream_only()),
            (
                "after",
                self.after.is_some(),
                matches!(action, FaultKind::Disconnect),
            ),
            (
                "bytes_per_sec",
                self.bytes_per_sec.is_some(),
                matches!(action, FaultKind::Slow),
            ),
        ];
        match present
            .iter()
            .find(|(_, given, applies)| *given && !applies)
        {
            Some((field, _, _)) => Err(invalid(
                field,
                format!("does not apply to action `{action}`"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_shape_round_trips() {
        let text = r#"
            keys = ["k2"]
            routes = ["chat_completions"]
            action = "rate_limit"
            retry_after = "5s"
            probability = 1.0
            ttl = "30s"
        "#;
        let rule: FaultRule = toml::from_str(text).unwrap();
        assert_eq!(rule.retry_after, Some(Duration::from_secs(5)));
        assert_eq!(rule.action, FaultKind::RateLimit);
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), rule);
        assert!(toml::from_str::<FaultRule>("action = \"hang\"\nbogus = 1").is_err());
    }

    #[test]
    fn validation_table() {
        let base = FaultRule::new;
        let cases: Vec<(FaultRule, Option<&str>)> = vec![
            (base(FaultKind::Hang), None),
            (
                FaultRule {
                    probability: Some(1.5),
                    ..base(FaultKind::Error)
                },
                Some("probability"),
            ),
            (
                FaultRule {
                    every_nth: Some(0),
                    ..base(FaultKind::Error)
                },
                Some("every_nth"),
            ),
            (
                FaultRule {
                    from: Some(Duration::from_secs(5)),
                    until: Some(Duration::from_secs(5)),
                    ..base(FaultKind::Error)
                },
                Some("until"),
            ),
            (
                FaultRule {
                    stream: Some(false),
                    ..base(FaultKind::CutStream)
                },
                Some("stream"),
            ),
            (
                FaultRule {
                    status: Some(99),
                    ..base(FaultKind::Error)
                },
                Some("status"),
            ),
            (base(FaultKind::Latency), Some("latency")),
            (base(FaultKind::Disconnect), Some("after")),
            (
                FaultRule {
                    bytes_per_sec: Some(0),
                    ..base(FaultKind::Slow)
                },
                Some("bytes_per_sec"),
            ),
            (
                FaultRule {
                    chunks: Some(2),
                    ..base(FaultKind::Hang)
                },
                Some("chunks"),
            ),
            (
                FaultRule {
                    status: Some(503),
                    ..base(FaultKind::Error)
                },
                None,
            ),
            (
                FaultRule {
                    chunks: Some(3),
                    ..base(FaultKind::StreamError)
                },
                None,
            ),
        ];
        for (rule, expected_field) in cases {
            match (rule.validate("r"), expected_field) {
                (Ok(()), None) => {}
                (Err(RuleError::InvalidField { field, .. }), Some(expected)) => {
                    assert_eq!(field, expected, "{rule:?}")
                }
                (other, _) => panic!("{rule:?} -> {other:?}"),
            }
        }
    }
}
