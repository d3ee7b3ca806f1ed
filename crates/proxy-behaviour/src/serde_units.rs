//! How durations are written in results. Results (read by reports and scripts) carry plain numbers of
//! milliseconds, which plot and compare easily; thresholds (written by people in scenario files) are human strings
//! like `"5s"`, read by the workspace-wide `human_duration::serde` helpers.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Milliseconds (fractions kept, exact for whole microseconds) of a duration.
pub(crate) fn to_millis(duration: Duration) -> f64 {
    duration.as_nanos() as f64 / 1e6
}

/// A duration from milliseconds; `None` for negative, NaN or absurdly large values.
pub(crate) fn from_millis(ms: f64) -> Option<Duration> {
    let nanos = (ms * 1e6).round();
    (nanos.is_finite() && (0.0..u64::MAX as f64).contains(&nanos))
        .then(|| Duration::from_nanos(nanos as u64))
}

fn invalid<E: serde::de::Error>(ms: f64) -> E {
    E::custom(format!("{ms} is not a valid number of milliseconds"))
}

/// `#[serde(with = "crate::serde_units::millis")]`: a `Duration` as a number of milliseconds.
pub(crate) mod millis {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(to_millis(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(deserializer)?;
        from_millis(ms).ok_or_else(|| invalid(ms))
    }
}

/// `#[serde(default, with = "crate::serde_units::optional_millis")]`: an `Option<Duration>` as milliseconds or null.
pub(crate) mod optional_millis {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_f64(to_millis(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(deserializer)?
            .map(|ms| from_millis(ms).ok_or_else(|| invalid(ms)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_table() {
        let cases = [
            (Duration::from_millis(12), 12.0),
            (Duration::from_micros(1500), 1.5),
            (Duration::ZERO, 0.0),
        ];
        for (duration, ms) in cases {
            assert_eq!(to_millis(duration), ms);
            assert_eq!(from_millis(ms), Some(duration));
        }
        assert_eq!(from_millis(-1.0), None);
        assert_eq!(from_millis(f64::NAN), None);
    }
}
