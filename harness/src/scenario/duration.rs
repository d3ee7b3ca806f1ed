//! Human durations in scenario files (`"500ms"`, `"1m30s"`) and on the command line.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses a human duration such as `"60s"`, `"1m30s"` or `"250ms"`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {text:?}"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?} ({e}); use e.g. \"500ms\", \"30s\", \"2m\"")
    })
}

/// A duration written as a string (`"30s"`) or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Text(String),
    Seconds(f64),
}

/// `deserialize_with` helper for a required duration field.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let raw = RawDuration::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a duration such as \"30s\" or a number of seconds")
    })?;
    match raw {
        RawDuration::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        RawDuration::Seconds(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| serde::de::Error::custom(format!("invalid duration {s} s"))),
    }
}

/// `deserialize_with` helper for an optional duration field.
pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// `serialize_with` helper: a duration as a human string (`"1m 30s"`).
pub(crate) fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let cases = [
            ("30s", Some(30_000)),
            ("1m30s", Some(90_000)),
            ("250ms", Some(250)),
            ("2", Some(2_000)),
            ("0.5", Some(500)),
            ("soon", None),
            ("-1", None),
        ];
        for (text, want_ms) in cases {
            let got = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, want_ms, "{text}");
        }
    }
}
