//! Durations as people write them — one rule for every scenario file, config file, admin-API body and
//! command-line flag in the workspace.
//!
//! Why one crate: per-crate serde helpers drift apart (a bare number accepted in one section and rejected in
//! another, each with its own message). Every duration is read by [`parse`]:
//! - humantime syntax: `"250ms"`, `"30s"`, `"2m"`, `"1h30m"`, `"1s 500ms"`, `"1.5s"`;
//! - a bare number (`30`, `0.5`; as text, as a flag or as a TOML/JSON number) is read as **seconds**, with a
//!   warning naming the unit and how to write it (`0` needs no unit and gets no warning);
//! - negative, NaN, infinite and too large values are errors; every error names the text and gives examples.
//!
//! How to use it:
//! - `#[serde(with = "human_duration::serde::required")]` on a `Duration` field;
//! - `#[serde(default, with = "human_duration::serde::optional")]` on an `Option<Duration>` field;
//! - `#[arg(long, value_parser = human_duration::parse)]` on a clap flag;
//! - [`format()`] to print a duration the way [`parse`] reads it back (`"1m 30s"`).

use std::time::Duration;

/// Why a text is not a duration. The message names the text and shows how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number with a unit (empty, a word, a stray character).
    #[error(
        "invalid duration {text:?}: expected a number with a unit, e.g. \"250ms\", \"30s\", \"2m\", \"1h30m\""
    )]
    Syntax {
        /// The rejected text.
        text: String,
    },
    /// A number with a unit that is not a time unit.
    #[error(
        "invalid duration {text:?}: unknown unit {unit:?}; use ns, us, ms, s, m, h or d, e.g. \"250ms\", \"30s\", \"2m\", \"1h30m\""
    )]
    UnknownUnit {
        /// The rejected text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// A negative duration.
    #[error("invalid duration {text:?}: must not be negative, e.g. \"0s\", \"250ms\", \"30s\"")]
    Negative {
        /// The rejected text.
        text: String,
    },
    /// NaN, infinite, too large to hold, or finer than a nanosecond.
    #[error(
        "invalid duration {text:?}: out of range (not finite, too large, or finer than 1ns), e.g. \"250ms\", \"30s\", \"2m\", \"1h30m\""
    )]
    OutOfRange {
        /// The rejected text.
        text: String,
    },
}

/// Parses a human duration: humantime syntax (`"250ms"`, `"30s"`, `"2m"`, `"1h30m"`, `"1s 500ms"`), or a bare
/// number read as seconds (with a warning). Surrounding whitespace is ignored. Usable as a clap value parser.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(DurationError::Negative { text: text.into() });
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return from_seconds(text, seconds);
    }
    humantime::parse_duration(text).map_err(|err| match err {
        humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
            DurationError::UnknownUnit {
                text: text.into(),
                unit,
            }
        }
        humantime::DurationError::NumberOverflow => DurationError::OutOfRange { text: text.into() },
        _ => DurationError::Syntax { text: text.into() },
    })
}

/// Formats a duration the way [`parse`] reads it back: `"250ms"`, `"30s"`, `"1m 30s"`, `"0s"`.
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// A bare number of seconds (`text` is how it was written), with the no-unit warning.
fn from_seconds(text: &str, seconds: f64) -> Result<Duration, DurationError> {
    if seconds < 0.0 {
        return Err(DurationError::Negative { text: text.into() });
    }
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| DurationError::OutOfRange { text: text.into() })?;
    warn_no_unit(text, duration);
    Ok(duration)
}

/// Warns that a number without a unit was read as seconds, and how to write it (zero needs no unit). Command-line
/// flags are parsed before a binary installs its tracing subscriber; without one, the warning goes to stderr so
/// it is not lost.
fn warn_no_unit(text: &str, duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let message = format!(
        "duration {text} has no unit: read as {text} s; write \"{}\"",
        format(duration)
    );
    let no_subscriber =
        tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
    if no_subscriber {
        eprintln!("warning: {message}");
    } else {
        tracing::warn!("{message}");
    }
}

/// Serde helpers: deserialize from a string (`"30s"`) or a TOML/JSON number of seconds (with the same warning
/// as [`parse()`]); serialize as the human string from [`format()`].
pub mod serde {
    use ::serde::de::{self, Deserializer, Visitor};
    use ::serde::Serializer;
    use std::fmt;
    use std::time::Duration;

    const EXPECTING: &str = "a duration such as \"30s\"";

    /// Reads one duration from a string or a number.
    struct DurationVisitor;

    impl<'de> Visitor<'de> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(EXPECTING)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            crate::parse(text).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
            let duration = Duration::from_secs(seconds);
            crate::warn_no_unit(&seconds.to_string(), duration);
            Ok(duration)
        }

        fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
            match u64::try_from(seconds) {
                Ok(seconds) => self.visit_u64(seconds),
                Err(_) => Err(E::custom(crate::DurationError::Negative {
                    text: seconds.to_string(),
                })),
            }
        }

        fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
            crate::from_seconds(&seconds.to_string(), seconds).map_err(E::custom)
        }
    }

    /// `#[serde(with = "human_duration::serde::required")]` for `Duration` fields.
    pub mod required {
        use super::*;

        /// Writes the duration as a human string (`"1m 30s"`).
        pub fn serialize<S: Serializer>(
            value: &Duration,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&crate::format(*value))
        }

        /// Reads a duration from a string (`"30s"`) or a number of seconds.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Duration, D::Error> {
            deserializer.deserialize_any(DurationVisitor)
        }
    }

    /// `#[serde(default, with = "human_duration::serde::optional")]` for `Option<Duration>` fields (absent or
    /// null = `None`).
    pub mod optional {
        use super::*;

        /// Writes `Some` as a human string (`"1m 30s"`), `None` as none/null.
        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(duration) => serializer.serialize_some(&crate::format(*duration)),
                None => serializer.serialize_none(),
            }
        }

        /// Reads an optional duration from a string, a number of seconds, or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            deserializer.deserialize_option(OptionVisitor)
        }

        struct OptionVisitor;

        impl<'de> Visitor<'de> for OptionVisitor {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                required::deserialize(deserializer).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::serde::{Deserialize, Serialize};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn accepted_forms() {
        let cases = [
            ("250ms", MS(250)),
            ("30s", MS(30_000)),
            ("2m", MS(120_000)),
            ("1h30m", MS(5_400_000)),
            ("1m30s", MS(90_000)),
            ("1s 500ms", MS(1_500)),
            ("1.5s", MS(1_500)),
            ("  30s\n", MS(30_000)),
            ("100us", Duration::from_micros(100)),
            ("2 hours", MS(7_200_000)),
            ("0s", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bare_numbers_are_seconds() {
        let cases = [
            ("30", MS(30_000)),
            ("0.5", MS(500)),
            ("2", MS(2_000)),
            (" 0.25 ", MS(250)),
            ("0", Duration::ZERO),
            ("1e1", MS(10_000)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn rejections_name_the_text_and_give_examples() {
        let examples = "e.g. \"250ms\", \"30s\", \"2m\", \"1h30m\"";
        let cases = [
            (
                "soon",
                "invalid duration \"soon\": expected a number with a unit",
            ),
            ("", "invalid duration \"\": expected a number with a unit"),
            (
                "30 s ms",
                "invalid duration \"30 s ms\": expected a number with a unit",
            ),
            (
                "5parsecs",
                "invalid duration \"5parsecs\": unknown unit \"parsecs\"",
            ),
            ("-1", "invalid duration \"-1\": must not be negative"),
            ("-2s", "invalid duration \"-2s\": must not be negative"),
            ("NaN", "invalid duration \"NaN\": out of range"),
            ("inf", "invalid duration \"inf\": out of range"),
            ("1e300", "invalid duration \"1e300\": out of range"),
            ("99999999999999999999999h", "out of range"),
        ];
        for (text, want) in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(want), "{text:?}: {message}");
            assert!(
                message.contains(examples) || message.contains("\"250ms\", \"30s\""),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn format_parses_back() {
        for duration in [
            Duration::ZERO,
            MS(1),
            MS(250),
            MS(1_500),
            MS(90_000),
            MS(5_400_000),
            Duration::from_nanos(1_000_000_007),
            Duration::from_secs(3 * 86_400 + 5),
        ] {
            let text = format(duration);
            assert_eq!(parse(&text), Ok(duration), "{text}");
        }
        assert_eq!(format(MS(90_000)), "1m 30s");
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        #[serde(with = "crate::serde::required")]
        timeout: Duration,
        #[serde(
            default,
            with = "crate::serde::optional",
            skip_serializing_if = "Option::is_none"
        )]
        warmup: Option<Duration>,
    }

    #[test]
    fn serde_via_toml() {
        let cases = [
            (
                "timeout = \"30s\"\nwarmup = \"250ms\"",
                MS(30_000),
                Some(MS(250)),
            ),
            ("timeout = \"1m 30s\"", MS(90_000), None),
            ("timeout = 30\nwarmup = 2", MS(30_000), Some(MS(2_000))),
            ("timeout = 0.1\nwarmup = 1.5", MS(100), Some(MS(1_500))),
            (
                "timeout = \"2\"\nwarmup = \"0.5\"",
                MS(2_000),
                Some(MS(500)),
            ),
        ];
        for (text, timeout, warmup) in cases {
            let config: Config = toml::from_str(text).unwrap();
            assert_eq!(config, Config { timeout, warmup }, "{text}");
            let back: Config = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
            assert_eq!(back, config, "{text}");
        }
        let written = toml::to_string(&Config {
            timeout: MS(90_000),
            warmup: Some(MS(250)),
        })
        .unwrap();
        assert_eq!(written, "timeout = \"1m 30s\"\nwarmup = \"250ms\"\n");
    }

    #[test]
    fn serde_rejections() {
        let cases = [
            (
                "timeout = \"soon\"",
                "invalid duration \"soon\": expected a number with a unit",
            ),
            (
                "timeout = -1",
                "invalid duration \"-1\": must not be negative",
            ),
            (
                "timeout = -0.5",
                "invalid duration \"-0.5\": must not be negative",
            ),
            ("timeout = nan", "invalid duration \"NaN\": out of range"),
            ("timeout = inf", "invalid duration \"inf\": out of range"),
            ("timeout = true", "expected a duration such as \"30s\""),
            (
                "timeout = \"1s\"\nwarmup = \"soon\"",
                "invalid duration \"soon\"",
            ),
            (
                "timeout = \"1s\"\nwarmup = [1]",
                "expected a duration such as \"30s\"",
            ),
            ("warmup = \"1s\"", "missing field `timeout`"),
        ];
        for (text, want) in cases {
            let message = toml::from_str::<Config>(text).unwrap_err().to_string();
            assert!(message.contains(want), "{text}: {message}");
        }
    }

    #[test]
    fn bare_number_warning_names_the_unit_and_the_fix() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            parse("30").unwrap();
            parse("0.5").unwrap();
            parse("0").unwrap();
            parse("45s").unwrap();
            toml::from_str::<Config>("timeout = 7").unwrap();
        });
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("duration 30 has no unit: read as 30 s; write \"30s\""),
            "{logs}"
        );
        assert!(
            logs.contains("duration 0.5 has no unit: read as 0.5 s; write \"500ms\""),
            "{logs}"
        );
        assert!(
            logs.contains("duration 7 has no unit: read as 7 s; write \"7s\""),
            "{logs}"
        );
        assert_eq!(logs.matches("has no unit").count(), 3, "{logs}");
    }
}
