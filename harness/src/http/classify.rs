//! Transport errors → [`ErrorClass`] plus a short message, by walking the error's source chain.

use load_stats::ErrorClass;
use std::error::Error as StdError;

/// Classifies a transport error (connect, send or body read).
pub fn classify(err: &(dyn StdError + 'static)) -> (ErrorClass, String) {
    let mut class = ErrorClass::Other;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let c = io_class(io.kind());
            if c != ErrorClass::Other {
                class = c;
                break;
            }
            if let Some(inner) = io.get_ref() {
                cur = Some(inner as &(dyn StdError + 'static));
                continue;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                class = ErrorClass::Timeout;
            } else if h.is_parse() {
                class = ErrorClass::Parse;
            } else if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                class = ErrorClass::Reset;
            }
        }
        cur = e.source();
    }
    (class, chain_message(err))
}

fn io_class(kind: std::io::ErrorKind) -> ErrorClass {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => ErrorClass::ConnectRefused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorClass::Reset
        }
        K::TimedOut => ErrorClass::Timeout,
        K::InvalidData => ErrorClass::Parse,
        _ => ErrorClass::Other,
    }
}

/// `outer: inner: innermost`, without repeating identical layers.
fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn io_kinds_map_to_classes() {
        let cases = [
            (ErrorKind::ConnectionRefused, ErrorClass::ConnectRefused),
            (ErrorKind::ConnectionReset, ErrorClass::Reset),
            (ErrorKind::BrokenPipe, ErrorClass::Reset),
            (ErrorKind::TimedOut, ErrorClass::Timeout),
            (ErrorKind::InvalidData, ErrorClass::Parse),
            (ErrorKind::PermissionDenied, ErrorClass::Other),
        ];
        for (kind, want) in cases {
            let outer = Error::other(Error::new(kind, "inner"));
            assert_eq!(classify(&outer).0, want, "{kind:?}");
        }
    }
}
