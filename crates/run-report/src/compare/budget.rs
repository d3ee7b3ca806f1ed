//! The regression budget: how much worse the current run may be than the baseline, per figure.
//!
//! Load figures (throughput, latency, errors, memory) get relative budgets because they scale with the machine.
//! Behaviour figures get budgets in their own units, chosen so that a rerun of the same correct proxy on the same
//! machine stays inside them (see each field) while a proxy that lost a behaviour — stopped rotating keys, stopped
//! honouring Retry-After, stopped failing over — lands far outside.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ReportError;

/// How much worse the current run may be than the baseline. Percentages are relative to the baseline; `false`
/// in TOML (or `None`) turns a check off (the metric is still shown).
///
/// ```toml
/// throughput_drop_percent = 10
/// p95_increase_percent = 10
/// p99_increase_percent = false        # shown, not judged
/// error_percent_increase_points = 0.5 # errors excl. 429, absolute percentage points
/// rss_slope_increase_percent = 50
/// fairness_drop = 0.1                 # Jain's index, absolute
/// retry_after_violations_increase = 5 # violations, absolute
/// recovery_increase_percent = 50
/// recovery_increase_at_least = "1s"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressionBudget {
    /// Max drop of requests per second, percent (default 10).
    #[serde(deserialize_with = "number_or_off")]
    pub throughput_drop_percent: Option<f64>,
    /// Max rise of the median, percent (default off: medians move with upstream latency noise).
    #[serde(deserialize_with = "number_or_off")]
    pub p50_increase_percent: Option<f64>,
    /// Max rise of p95, percent (default 10).
    #[serde(deserialize_with = "number_or_off")]
    pub p95_increase_percent: Option<f64>,
    /// Max rise of p99, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub p99_increase_percent: Option<f64>,
    /// Max rise of the error percentage excluding 429, in percentage points (default 0.5).
    #[serde(deserialize_with = "number_or_off")]
    pub error_percent_increase_points: Option<f64>,
    /// Max rise of streaming time-to-first-token p95 per request name, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub ttft_p95_increase_percent: Option<f64>,
    /// Max rise of the steady-state RSS slope, percent (default 50).
    #[serde(deserialize_with = "number_or_off")]
    pub rss_slope_increase_percent: Option<f64>,
    /// RSS slopes at or below this many MiB per hour are never a regression (noise floor; default 1).
    pub rss_slope_floor_mib_per_hour: f64,
    /// Max rise of the peak RSS, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub rss_peak_increase_percent: Option<f64>,
    /// Whether a worse overall verdict (e.g. PASS → LEAK) counts as a regression (default true).
    pub verdict_must_not_worsen: bool,
    /// Max drop of Jain's key-fairness index, absolute (default 0.1). Reruns of a correct proxy move the index
    /// by a few thousandths (it is computed over thousands of requests); a proxy that stops rotating drops it to
    /// about 1/keys (0.33 with three keys), so 0.1 separates the two with room on both sides.
    #[serde(deserialize_with = "number_or_off")]
    pub fairness_drop: Option<f64>,
    /// Max rise of Retry-After violations over the baseline's, a count (default 5). Requests already on the wire
    /// when a 429 is written arrive inside the mock's grace and count as races, not violations; on a loaded
    /// machine a few of them arrive after the grace, which is noise. A proxy that ignores Retry-After commits
    /// hundreds.
    #[serde(deserialize_with = "number_or_off")]
    pub retry_after_violations_increase: Option<f64>,
    /// Max drop of failover masking per fault window, absolute (default 0.1). A proxy that fails over masks
    /// close to 1 run after run; one that passes failures through falls towards 0.
    #[serde(deserialize_with = "number_or_off")]
    pub masking_drop: Option<f64>,
    /// Max rise of the recovery time per fault window or load peak, percent (default 50), but never less than
    /// [`Self::recovery_increase_at_least`]: recovery is measured over windows of whole seconds, so a short
    /// recovery moves by a second between reruns.
    #[serde(deserialize_with = "number_or_off")]
    pub recovery_increase_percent: Option<f64>,
    /// The smallest rise of the recovery time that is a regression (default 1 s).
    #[serde(with = "human_duration::serde::required")]
    pub recovery_increase_at_least: Duration,
    /// Max rise of the TTFT the proxy adds to streams (median client TTFT − upstream TTFT), percent (default
    /// 50), but never less than [`Self::ttft_overhead_increase_at_least`]. The figure is mostly scheduling: the
    /// same correct proxy on a shared two-core machine measured from 4 ms (idle) to 27 ms (load average 16), so
    /// only a rise of tens of milliseconds — a proxy doing slow work before it forwards — says something about the
    /// proxy. A proxy that holds streams back is caught by the buffering state instead.
    #[serde(deserialize_with = "number_or_off")]
    pub ttft_overhead_increase_percent: Option<f64>,
    /// The smallest rise of the TTFT overhead that is a regression (default 20 ms).
    #[serde(with = "human_duration::serde::required")]
    pub ttft_overhead_increase_at_least: Duration,
    /// Whether streams that passed through in the baseline and are buffered in the current run are a regression
    /// (default true).
    pub streams_must_not_become_buffered: bool,
    /// Whether a behaviour check (fairness, Retry-After, masking, ...) that was PASS in the baseline and is FAIL
    /// in the current run is a regression by itself, whatever its figure's budget says (default true).
    pub behaviour_checks_must_not_fail: bool,
}

impl Default for RegressionBudget {
    fn default() -> Self {
        Self {
            throughput_drop_percent: Some(10.0),
            p50_increase_percent: None,
            p95_increase_percent: Some(10.0),
            p99_increase_percent: Some(20.0),
            error_percent_increase_points: Some(0.5),
            ttft_p95_increase_percent: Some(20.0),
            rss_slope_increase_percent: Some(50.0),
            rss_slope_floor_mib_per_hour: 1.0,
            rss_peak_increase_percent: Some(20.0),
            verdict_must_not_worsen: true,
            fairness_drop: Some(0.1),
            retry_after_violations_increase: Some(5.0),
            masking_drop: Some(0.1),
            recovery_increase_percent: Some(50.0),
            recovery_increase_at_least: Duration::from_secs(1),
            ttft_overhead_increase_percent: Some(50.0),
            ttft_overhead_increase_at_least: Duration::from_millis(20),
            streams_must_not_become_buffered: true,
            behaviour_checks_must_not_fail: true,
        }
    }
}

fn number_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrOff {
        Number(f64),
        Flag(bool),
    }
    match NumberOrOff::deserialize(d)? {
        NumberOrOff::Number(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
        NumberOrOff::Number(n) => Err(serde::de::Error::custom(format!(
            "{n} must be a non-negative number"
        ))),
        NumberOrOff::Flag(false) => Ok(None),
        NumberOrOff::Flag(true) => Err(serde::de::Error::custom(
            "use a number, or `false` to turn the check off",
        )),
    }
}

impl RegressionBudget {
    /// Parses a budget TOML; `origin` (the file name) prefixes errors, which carry line and column (an unknown
    /// key is named with the list of known ones).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ReportError> {
        toml::from_str(text)
            .map_err(|e| ReportError::invalid(origin, format!("invalid regression budget: {e}")))
    }

    /// Reads a budget TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ReportError> {
        Self::from_toml_str(&ReportError::read_to_string(path)?, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_budget_file_is_the_default() {
        let text = include_str!("../../regression-budget.example.toml");
        let budget =
            RegressionBudget::from_toml_str(text, Path::new("regression-budget.example.toml"))
                .unwrap();
        assert_eq!(budget, RegressionBudget::default());
    }

    #[test]
    fn budget_toml_defaults_overrides_off_and_errors() {
        let path = Path::new("budget.toml");
        let b = RegressionBudget::from_toml_str(
            "p95_increase_percent = 5\np99_increase_percent = false\nfairness_drop = 0.05\n\
             masking_drop = false\nrecovery_increase_at_least = \"2s\"\n",
            path,
        )
        .unwrap();
        assert_eq!(
            (
                b.p95_increase_percent,
                b.p99_increase_percent,
                b.throughput_drop_percent,
                b.fairness_drop,
                b.masking_drop,
                b.recovery_increase_at_least,
                b.ttft_overhead_increase_at_least,
            ),
            (
                Some(5.0),
                None,
                Some(10.0),
                Some(0.05),
                None,
                Duration::from_secs(2),
                Duration::from_millis(20)
            )
        );
        for (text, expected) in [
            ("p95_increase = 5\n", "unknown field `p95_increase`"),
            (
                "fairness = 0.1\n",
                "unknown field `fairness`, expected one of",
            ),
            ("min_fairness = 0.9\n", "unknown field `min_fairness`"),
            ("p95_increase_percent = true\n", "budget.toml"),
            ("p95_increase_percent = -1\n", "budget.toml"),
            ("fairness_drop = -0.1\n", "must be a non-negative number"),
            (
                "retry_after_violations_increase = true\n",
                "`false` to turn",
            ),
            (
                "recovery_increase_at_least = \"soon\"\n",
                "invalid duration",
            ),
            ("ttft_overhead_increase_at_least = false\n", "budget.toml"),
        ] {
            let err = RegressionBudget::from_toml_str(text, path)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.starts_with("budget.toml"),
                "{text}: {err}"
            );
        }
    }
}
