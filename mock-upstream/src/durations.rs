//! Durations in config files and JSON are human strings (`"250ms"`, `"5s"`, `"2m"`), not numbers, so a
//! scenario reads like the incident it reproduces. These serde helpers are used with `#[serde(with = ...)]`.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Parse a human duration such as `"250ms"`, `"5s"` or `"1s 500ms"`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|err| {
        format!("invalid duration `{text}`: {err} (examples: \"250ms\", \"5s\", \"2m\")")
    })
}

/// Render a duration the way [`parse`] reads it back.
pub(crate) fn render(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `#[serde(with = "crate::durations::required")]` for `Duration` fields.
pub(crate) mod required {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&render(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(default, with = "crate::durations::optional")]` for `Option<Duration>` fields.
pub(crate) mod optional {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&render(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_round_trip() {
        for (text, expected) in [
            ("250ms", 250),
            ("5s", 5_000),
            ("2m", 120_000),
            ("1s 500ms", 1_500),
        ] {
            let parsed = parse(text).unwrap();
            assert_eq!(parsed, Duration::from_millis(expected), "{text}");
            assert_eq!(parse(&render(parsed)).unwrap(), parsed);
        }
        assert!(parse("fast")
            .unwrap_err()
            .contains("invalid duration `fast`"));
    }
}
