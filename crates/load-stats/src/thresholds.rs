//! Pass/fail limits of a run and their evaluation.
//!
//! Why here and pure: the same limits judge a live run (`harness run`), a `summary.json` and a Locust
//! `_stats.csv` (`harness check`); all three are turned into [`Measured`] figures first, so one function decides.
//!
//! Scenario form (`[thresholds]`, unknown fields rejected; every limit optional; limits are inclusive):
//! ```toml
//! [thresholds]
//! min_rps = 1000
//! p50 = "50ms"
//! p95 = "100ms"
//! p99 = "200ms"
//! max_error_percent = 5.0                   # all failures, 429s included
//! max_error_percent_excluding_429 = 1.0     # the users' rule
//!
//! max_p95_drift_ratio = 1.5                 # last window's p95 / first window's p95 (see `drift`)
//! max_p95_drift_ms = 20                     # last window's p95 - first window's p95, in ms
//! drift_window = "1h"                       # window length (default 1 h, at most a quarter of the run)
//!
//! [thresholds.requests."chat basic"]        # per request name
//! p95 = "150ms"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{RequestReport, RunStats};

/// Limits of one scope (the whole run or one request name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Minimum requests per second.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_negative"
    )]
    pub min_rps: Option<f64>,
    /// Maximum median latency (`"50ms"`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p50: Option<Duration>,
    /// Maximum 95th percentile latency.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p95: Option<Duration>,
    /// Maximum 99th percentile latency.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p99: Option<Duration>,
    /// Maximum failures in percent of requests, 429s included.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "percent"
    )]
    pub max_error_percent: Option<f64>,
    /// Maximum failures other than 429 in percent of requests.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "percent"
    )]
    pub max_error_percent_excluding_429: Option<f64>,
}

impl Limits {
    /// Each limit of `other` that is set replaces the one in `self`.
    pub fn override_with(&mut self, other: &Limits) {
        self.min_rps = other.min_rps.or(self.min_rps);
        self.p50 = other.p50.or(self.p50);
        self.p95 = other.p95.or(self.p95);
        self.p99 = other.p99.or(self.p99);
        self.max_error_percent = other.max_error_percent.or(self.max_error_percent);
        self.max_error_percent_excluding_429 = other
            .max_error_percent_excluding_429
            .or(self.max_error_percent_excluding_429);
    }

    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// The scenario's `[thresholds]`: limits for the whole run plus per-request-name limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Minimum requests per second of the whole run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_negative"
    )]
    pub min_rps: Option<f64>,
    /// Maximum median latency of the whole run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p50: Option<Duration>,
    /// Maximum 95th percentile latency of the whole run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p95: Option<Duration>,
    /// Maximum 99th percentile latency of the whole run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub p99: Option<Duration>,
    /// Maximum failures in percent, 429s included.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "percent"
    )]
    pub max_error_percent: Option<f64>,
    /// Maximum failures other than 429 in percent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "percent"
    )]
    pub max_error_percent_excluding_429: Option<f64>,
    /// Maximum ratio of the last window's p95 to the first window's (latency drift, see [`crate::drift`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_negative"
    )]
    pub max_p95_drift_ratio: Option<f64>,
    /// Maximum increase of p95 from the first window to the last, in milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_negative"
    )]
    pub max_p95_drift_ms: Option<f64>,
    /// Length of the first and last windows the drift compares (default 1 h, clipped to a quarter of the run).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "human_duration::serde::optional"
    )]
    pub drift_window: Option<Duration>,
    /// Limits per request name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Limits>,
}

impl Thresholds {
    /// The users' CI targets: >= 1000 req/s, p50 <= 50 ms, p95 <= 100 ms, p99 <= 200 ms, errors <= 1 % excluding
    /// 429 (the defaults of `harness check`).
    pub fn users_targets() -> Self {
        Self::from_overall(&Limits {
            min_rps: Some(1000.0),
            p50: Some(Duration::from_millis(50)),
            p95: Some(Duration::from_millis(100)),
            p99: Some(Duration::from_millis(200)),
            max_error_percent: None,
            max_error_percent_excluding_429: Some(1.0),
        })
    }

    /// Thresholds with only whole-run limits.
    pub fn from_overall(limits: &Limits) -> Self {
        Self {
            min_rps: limits.min_rps,
            p50: limits.p50,
            p95: limits.p95,
            p99: limits.p99,
            max_error_percent: limits.max_error_percent,
            max_error_percent_excluding_429: limits.max_error_percent_excluding_429,
            max_p95_drift_ratio: None,
            max_p95_drift_ms: None,
            drift_window: None,
            requests: BTreeMap::new(),
        }
    }

    /// The whole-run limits.
    pub fn overall(&self) -> Limits {
        Limits {
            min_rps: self.min_rps,
            p50: self.p50,
            p95: self.p95,
            p99: self.p99,
            max_error_percent: self.max_error_percent,
            max_error_percent_excluding_429: self.max_error_percent_excluding_429,
        }
    }

    /// Applies overrides (e.g. from the CLI): whole-run limits that are set replace these, per-request limits
    /// are overridden field by field.
    pub fn override_with(&mut self, other: &Thresholds) {
        let mut overall = self.overall();
        overall.override_with(&other.overall());
        let requests = std::mem::take(&mut self.requests);
        *self = Self {
            requests,
            max_p95_drift_ratio: other.max_p95_drift_ratio.or(self.max_p95_drift_ratio),
            max_p95_drift_ms: other.max_p95_drift_ms.or(self.max_p95_drift_ms),
            drift_window: other.drift_window.or(self.drift_window),
            ..Self::from_overall(&overall)
        };
        for (name, limits) in &other.requests {
            self.requests
                .entry(name.clone())
                .or_default()
                .override_with(limits);
        }
    }

    /// True when no limit at all is set.
    pub fn is_empty(&self) -> bool {
        self.overall().is_empty()
            && self.requests.values().all(Limits::is_empty)
            && self.max_p95_drift_ratio.is_none()
            && self.max_p95_drift_ms.is_none()
    }

    /// Whether a latency-drift limit is set (the run then measures the drift windows).
    pub fn judges_drift(&self) -> bool {
        self.max_p95_drift_ratio.is_some() || self.max_p95_drift_ms.is_some()
    }
}

/// Figures of one scope, whatever the source (live run, `summary.json`, Locust CSV).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Requests.
    pub requests: u64,
    /// Failures, 429s included.
    pub failures: u64,
    /// Failures that were 429s (0 if unknown).
    pub failures_429: u64,
    /// Requests per second over the run.
    pub requests_per_sec: f64,
    /// Median latency in ms (`None` without data).
    pub p50_ms: Option<f64>,
    /// 95th percentile latency in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency in ms.
    pub p99_ms: Option<f64>,
}

impl Measured {
    /// Figures of a live run's report; rates are over `elapsed` (0 when it is zero).
    pub fn from_report(report: &RequestReport, elapsed: Duration) -> Self {
        let p = report.percentiles();
        let rps = if elapsed.is_zero() {
            0.0
        } else {
            report.requests as f64 / elapsed.as_secs_f64()
        };
        Self {
            requests: report.requests,
            failures: report.failures,
            failures_429: report.failures_429,
            requests_per_sec: rps,
            p50_ms: p.map(|p| p.p50),
            p95_ms: p.map(|p| p.p95),
            p99_ms: p.map(|p| p.p99),
        }
    }
}

/// [`evaluate`] on a live run's totals.
pub fn evaluate_run(thresholds: &Thresholds, run: &RunStats) -> Vec<ThresholdResult> {
    let elapsed = run.elapsed();
    let overall = Measured::from_report(&run.aggregate_report(), elapsed);
    let mut per_request: BTreeMap<String, Vec<RequestReport>> = BTreeMap::new();
    for report in run.request_reports() {
        per_request
            .entry(report.name.clone())
            .or_default()
            .push(report);
    }
    // Limits are per name: a name used with several methods is judged on all of them together.
    let per_request = per_request
        .into_iter()
        .map(|(name, reports)| {
            let merged = merge_reports(&name, &reports);
            (name, Measured::from_report(&merged, elapsed))
        })
        .collect();
    evaluate(thresholds, &overall, &per_request)
}

fn merge_reports(name: &str, reports: &[RequestReport]) -> RequestReport {
    let mut merged = RequestReport::from_requests("", name, []);
    for report in reports {
        merged.requests += report.requests;
        merged.failures += report.failures;
        merged.failures_429 += report.failures_429;
        merged.content_bytes += report.content_bytes;
        merged.latency.add(&report.latency);
    }
    merged
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// At least one request was made (checked before anything else).
    Requests,
    /// Requests per second (a minimum).
    MinRps,
    /// Median latency (a maximum).
    P50,
    /// 95th percentile latency (a maximum).
    P95,
    /// 99th percentile latency (a maximum).
    P99,
    /// Failure percentage, 429s included (a maximum).
    ErrorPercent,
    /// Failure percentage without 429s (a maximum).
    #[serde(rename = "error_percent_excluding_429")]
    ErrorPercentExcluding429,
    /// Last window's p95 / first window's p95 (a maximum).
    P95DriftRatio,
    /// Last window's p95 − first window's p95 in ms (a maximum).
    P95DriftMs,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requests => "requests",
            Self::MinRps => "req/s",
            Self::P50 => "p50",
            Self::P95 => "p95",
            Self::P99 => "p99",
            Self::ErrorPercent => "errors",
            Self::ErrorPercentExcluding429 => "errors excl. 429",
            Self::P95DriftRatio => "p95 drift (last/first window)",
            Self::P95DriftMs => "p95 drift (last-first window)",
        })
    }
}

/// Scope name of the whole-run limits in results.
pub const OVERALL_SCOPE: &str = "Aggregated";

/// The verdict of one limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdResult {
    /// [`OVERALL_SCOPE`] or a request name.
    pub scope: String,
    /// What was measured.
    pub metric: Metric,
    /// The limit (req/s, ms or percent; see `unit`).
    pub limit: f64,
    /// The measured value (`None` when there was no data).
    pub measured: Option<f64>,
    /// `req/s`, `ms`, `%` or `requests`.
    pub unit: String,
    /// Whether the limit held.
    pub passed: bool,
    /// One human sentence, e.g. `p95 123.4 ms > limit 100 ms`.
    pub detail: String,
}

impl fmt::Display for ThresholdResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.scope, self.detail)
    }
}

/// True when every result passed (an empty list passes).
pub fn all_passed(results: &[ThresholdResult]) -> bool {
    results.iter().all(|r| r.passed)
}

/// Judges the whole run (`overall`) and each named request (`per_request`, looked up by name) against the limits.
/// A run without requests yields one clear failure instead of meaningless percentiles; a per-request limit for a
/// name that never ran fails too (it catches typos).
pub fn evaluate(
    thresholds: &Thresholds,
    overall: &Measured,
    per_request: &BTreeMap<String, Measured>,
) -> Vec<ThresholdResult> {
    let mut results = evaluate_scope(OVERALL_SCOPE, &thresholds.overall(), Some(overall));
    for (name, limits) in &thresholds.requests {
        results.extend(evaluate_scope(name, limits, per_request.get(name)));
    }
    results
}

fn evaluate_scope(
    scope: &str,
    limits: &Limits,
    measured: Option<&Measured>,
) -> Vec<ThresholdResult> {
    if limits.is_empty() {
        return Vec::new();
    }
    let Some(measured) = measured.filter(|m| m.requests > 0) else {
        return vec![no_requests(scope)];
    };
    let error_percent = |failures: u64| 100.0 * failures as f64 / measured.requests as f64;
    let mut results = Vec::new();
    if let Some(limit) = limits.min_rps {
        results.push(at_least(
            scope,
            Metric::MinRps,
            limit,
            measured.requests_per_sec,
            "req/s",
        ));
    }
    for (metric, limit, value) in [
        (Metric::P50, limits.p50, measured.p50_ms),
        (Metric::P95, limits.p95, measured.p95_ms),
        (Metric::P99, limits.p99, measured.p99_ms),
    ] {
        if let Some(limit) = limit {
            results.push(at_most(
                scope,
                metric,
                limit.as_secs_f64() * 1000.0,
                value,
                "ms",
            ));
        }
    }
    let excluding_429 = measured.failures.saturating_sub(measured.failures_429);
    for (metric, limit, failures) in [
        (
            Metric::ErrorPercent,
            limits.max_error_percent,
            measured.failures,
        ),
        (
            Metric::ErrorPercentExcluding429,
            limits.max_error_percent_excluding_429,
            excluding_429,
        ),
    ] {
        if let Some(limit) = limit {
            results.push(at_most(
                scope,
                metric,
                limit,
                Some(error_percent(failures)),
                "%",
            ));
        }
    }
    results
}

/// The latency-drift limits against the run's [`crate::drift::LatencyDrift`] (whole-run scope). A limit without
/// drift figures (the load stopped before its last window, or a window had no requests) fails as N/A.
pub fn evaluate_drift(
    thresholds: &Thresholds,
    drift: Option<&crate::drift::LatencyDrift>,
) -> Vec<ThresholdResult> {
    let mut results = Vec::new();
    if let Some(limit) = thresholds.max_p95_drift_ratio {
        let value = drift.and_then(|d| d.p95_ratio);
        results.push(at_most(
            OVERALL_SCOPE,
            Metric::P95DriftRatio,
            limit,
            value,
            "x",
        ));
    }
    if let Some(limit) = thresholds.max_p95_drift_ms {
        let value = drift.and_then(|d| d.p95_diff_ms);
        results.push(at_most(
            OVERALL_SCOPE,
            Metric::P95DriftMs,
            limit,
            value,
            "ms",
        ));
    }
    results
}

/// The failed result of a scope in which no request completed: nothing can be checked, so nothing passed.
pub fn no_requests(scope: &str) -> ThresholdResult {
    ThresholdResult {
        scope: scope.to_owned(),
        metric: Metric::Requests,
        limit: 1.0,
        measured: Some(0.0),
        unit: "requests".to_owned(),
        passed: false,
        detail: "no requests were made, so no limit can be checked".to_owned(),
    }
}

fn at_least(scope: &str, metric: Metric, limit: f64, value: f64, unit: &str) -> ThresholdResult {
    let passed = value >= limit;
    let relation = if passed { ">=" } else { "<" };
    ThresholdResult {
        scope: scope.to_owned(),
        metric,
        limit,
        measured: Some(value),
        unit: unit.to_owned(),
        passed,
        detail: format!(
            "{metric} {} {relation} limit {} {unit}",
            round2(value),
            round2(limit)
        ),
    }
}

fn at_most(
    scope: &str,
    metric: Metric,
    limit: f64,
    value: Option<f64>,
    unit: &str,
) -> ThresholdResult {
    let (passed, detail) = match value {
        Some(value) if value <= limit => (
            true,
            format!(
                "{metric} {} <= limit {} {unit}",
                round2(value),
                round2(limit)
            ),
        ),
        Some(value) => (
            false,
            format!(
                "{metric} {} > limit {} {unit}",
                round2(value),
                round2(limit)
            ),
        ),
        None => (
            false,
            format!("{metric} has no data (N/A), limit {} {unit}", round2(limit)),
        ),
    };
    ThresholdResult {
        scope: scope.to_owned(),
        metric,
        limit,
        measured: value,
        unit: unit.to_owned(),
        passed,
        detail,
    }
}

/// Rounds for display only (two decimals, trailing zeros dropped).
fn round2(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn non_negative<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !value.is_finite() || value < 0.0 {
        return Err(serde::de::Error::custom(format!(
            "must be a number >= 0, got {value}"
        )));
    }
    Ok(Some(value))
}

fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !(0.0..=100.0).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "must be a percentage between 0 and 100 (e.g. 1.0 for 1 %), got {value}"
        )));
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(
        requests: u64,
        failures: u64,
        failures_429: u64,
        rps: f64,
        p: [f64; 3],
    ) -> Measured {
        Measured {
            requests,
            failures,
            failures_429,
            requests_per_sec: rps,
            p50_ms: Some(p[0]),
            p95_ms: Some(p[1]),
            p99_ms: Some(p[2]),
        }
    }

    #[test]
    fn drift_limits_table() {
        use crate::drift::{latency_drift, WindowLatency};
        let window = |p95| WindowLatency {
            start_s: 0.0,
            end_s: 10.0,
            requests: 100,
            p50_ms: p95,
            p95_ms: p95,
        };
        let drift =
            |first, last| latency_drift(Duration::from_secs(10), window(first), window(last));
        let limits = |ratio, ms| Thresholds {
            max_p95_drift_ratio: ratio,
            max_p95_drift_ms: ms,
            ..Thresholds::default()
        };
        let flat = drift(Some(10.0), Some(11.0));
        let slower = drift(Some(10.0), Some(40.0));
        let cases = [
            (limits(Some(1.5), None), Some(&flat), vec![true]),
            (limits(Some(1.5), None), Some(&slower), vec![false]),
            (limits(None, Some(20.0)), Some(&slower), vec![false]),
            (
                limits(Some(5.0), Some(30.0)),
                Some(&slower),
                vec![true, true],
            ),
            (limits(Some(1.5), Some(5.0)), None, vec![false, false]),
            (limits(None, None), Some(&slower), vec![]),
        ];
        for (thresholds, d, want) in cases {
            let got: Vec<bool> = evaluate_drift(&thresholds, d)
                .iter()
                .map(|r| r.passed)
                .collect();
            assert_eq!(got, want, "{thresholds:?} {d:?}");
        }
        let r = &evaluate_drift(&limits(Some(1.5), None), Some(&slower))[0];
        assert_eq!(
            (r.metric, r.unit.as_str(), r.measured),
            (Metric::P95DriftRatio, "x", Some(4.0))
        );
        assert!(limits(Some(1.0), None).judges_drift() && !limits(Some(1.0), None).is_empty());
        let toml = "max_p95_drift_ratio = 1.5\nmax_p95_drift_ms = 20\ndrift_window = \"10m\"\n";
        let parsed: Thresholds = toml::from_str(toml).expect("drift limits parse");
        assert_eq!(parsed.drift_window, Some(Duration::from_secs(600)));
        let mut base = parsed.clone();
        base.override_with(&Thresholds::from_overall(&Limits::default()));
        assert_eq!(base, parsed, "CLI overrides keep the drift limits");
    }

    fn verdicts(thresholds: &Thresholds, overall: &Measured) -> Vec<(Metric, bool)> {
        evaluate(thresholds, overall, &BTreeMap::new())
            .iter()
            .map(|r| (r.metric, r.passed))
            .collect()
    }

    #[test]
    fn users_targets_pass_and_fail_metric_by_metric() {
        use Metric::*;
        let targets = Thresholds::users_targets();
        let cases = [
            (
                measured(10_000, 0, 0, 1500.0, [20.0, 80.0, 150.0]),
                [true, true, true, true, true],
            ),
            (
                measured(10_000, 0, 0, 999.9, [20.0, 80.0, 150.0]),
                [false, true, true, true, true],
            ),
            (
                measured(10_000, 0, 0, 1000.0, [50.0, 100.0, 200.0]),
                [true, true, true, true, true],
            ),
            (
                measured(10_000, 0, 0, 1000.0, [50.1, 100.1, 200.1]),
                [true, false, false, false, true],
            ),
            // 5 % failures, all 429: fine under the users' rule.
            (
                measured(10_000, 500, 500, 1000.0, [1.0, 1.0, 1.0]),
                [true, true, true, true, true],
            ),
            (
                measured(10_000, 101, 0, 1000.0, [1.0, 1.0, 1.0]),
                [true, true, true, true, false],
            ),
        ];
        for (m, expected) in cases {
            let got = verdicts(&targets, &m);
            let metrics: Vec<_> = got.iter().map(|(metric, _)| *metric).collect();
            assert_eq!(metrics, [MinRps, P50, P95, P99, ErrorPercentExcluding429]);
            let passed: Vec<_> = got.iter().map(|(_, p)| *p).collect();
            assert_eq!(passed, expected, "{m:?}");
        }
    }

    #[test]
    fn error_rate_with_429_counts_every_failure() {
        let thresholds = Thresholds {
            max_error_percent: Some(1.0),
            ..Thresholds::default()
        };
        let m = measured(1000, 20, 20, 1.0, [1.0; 3]);
        assert_eq!(verdicts(&thresholds, &m), [(Metric::ErrorPercent, false)]);
    }

    #[test]
    fn empty_run_is_one_clear_failure() {
        let results = evaluate(
            &Thresholds::users_targets(),
            &measured(0, 0, 0, 0.0, [0.0; 3]),
            &BTreeMap::new(),
        );
        assert_eq!(results.len(), 1);
        assert_eq!(
            (results[0].metric, results[0].passed),
            (Metric::Requests, false)
        );
        assert!(
            results[0].to_string().contains("no requests"),
            "{}",
            results[0]
        );
        assert!(evaluate(
            &Thresholds::default(),
            &measured(0, 0, 0, 0.0, [0.0; 3]),
            &BTreeMap::new()
        )
        .is_empty());
    }

    #[test]
    fn per_request_limits_apply_to_their_name_and_missing_names_fail() {
        let thresholds: Thresholds =
            toml::from_str("[requests.chat]\np95 = \"100ms\"\n[requests.typo]\nmin_rps = 1\n")
                .unwrap();
        let mut per_request = BTreeMap::new();
        per_request.insert(
            "chat".to_owned(),
            measured(10, 0, 0, 1.0, [10.0, 120.0, 130.0]),
        );
        let results = evaluate(
            &thresholds,
            &measured(10, 0, 0, 1.0, [1.0; 3]),
            &per_request,
        );
        let summary: Vec<_> = results
            .iter()
            .map(|r| (r.scope.as_str(), r.metric, r.passed))
            .collect();
        assert_eq!(
            summary,
            [
                ("chat", Metric::P95, false),
                ("typo", Metric::Requests, false)
            ]
        );
    }

    #[test]
    fn missing_percentiles_fail_with_na() {
        let mut m = measured(5, 0, 0, 1.0, [1.0; 3]);
        m.p95_ms = None;
        let thresholds = Thresholds {
            p95: Some(Duration::from_millis(100)),
            ..Thresholds::default()
        };
        let result = &evaluate(&thresholds, &m, &BTreeMap::new())[0];
        assert!(!result.passed && result.detail.contains("N/A"), "{result}");
    }

    #[test]
    fn live_run_is_judged_per_name_across_methods() {
        use crate::{Outcome, OutcomeResult, Recorder};
        let t0 = std::time::SystemTime::UNIX_EPOCH;
        let mut run = RunStats::new(t0);
        let mut recorder = Recorder::new();
        for (method, status, ms) in [
            ("GET", 200, 10),
            ("POST", 503, 300),
            ("POST", 429, 1),
            ("GET", 200, 20),
        ] {
            recorder.record(&Outcome {
                name: "models",
                method,
                result: OutcomeResult::Status(status),
                success: status == 200,
                latency: Duration::from_millis(ms),
                bytes: 0,
                stream: None,
            });
        }
        run.merge(&recorder.take());
        run.close_interval(t0 + Duration::from_secs(2), 1);
        let thresholds: Thresholds =
            toml::from_str("min_rps = 2\n[requests.models]\nmax_error_percent_excluding_429 = 10.0\np99 = \"1s\"\n")
                .unwrap();
        let results = evaluate_run(&thresholds, &run);
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.scope.as_str(), r.metric, r.measured, r.passed))
            .collect();
        assert_eq!(
            got,
            [
                (OVERALL_SCOPE, Metric::MinRps, Some(2.0), true),
                ("models", Metric::P99, results[1].measured, true),
                (
                    "models",
                    Metric::ErrorPercentExcluding429,
                    Some(25.0),
                    false
                ),
            ]
        );
    }

    #[test]
    fn toml_parses_durations_and_rejects_bad_input() {
        let ok: Thresholds = toml::from_str(
            "min_rps = 1000\np50 = \"50ms\"\np99 = \"1s 500ms\"\nmax_error_percent_excluding_429 = 1.0\n",
        )
        .unwrap();
        assert_eq!(
            (ok.p50, ok.p99),
            (
                Some(Duration::from_millis(50)),
                Some(Duration::from_millis(1500))
            )
        );
        // A bare number is seconds, as in every other duration field (with a warning).
        let bare: Thresholds = toml::from_str("p95 = 0.1\ndrift_window = 60").unwrap();
        assert_eq!(
            (bare.p95, bare.drift_window),
            (
                Some(Duration::from_millis(100)),
                Some(Duration::from_secs(60))
            )
        );
        for (bad, needle) in [
            ("p95 = \"fast\"", "invalid duration"),
            ("p95 = -1", "must not be negative"),
            ("p95_max = \"1s\"", "unknown field"),
            ("max_error_percent = 150.0", "percentage"),
            ("min_rps = -1", ">= 0"),
            ("[requests.x]\nfoo = 1", "unknown field"),
        ] {
            let err = toml::from_str::<Thresholds>(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let mut base = Thresholds::users_targets();
        base.requests.insert(
            "chat".into(),
            Limits {
                p95: Some(Duration::from_millis(300)),
                ..Limits::default()
            },
        );
        let cli = Thresholds {
            min_rps: Some(10.0),
            requests: BTreeMap::from([(
                "chat".into(),
                Limits {
                    p99: Some(Duration::from_secs(1)),
                    ..Limits::default()
                },
            )]),
            ..Thresholds::default()
        };
        base.override_with(&cli);
        assert_eq!(
            (base.min_rps, base.p50),
            (Some(10.0), Some(Duration::from_millis(50)))
        );
        let chat = &base.requests["chat"];
        assert_eq!(
            (chat.p95, chat.p99),
            (
                Some(Duration::from_millis(300)),
                Some(Duration::from_secs(1))
            )
        );
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(serde_json::from_str::<Thresholds>(&json).unwrap(), base);
    }
}
