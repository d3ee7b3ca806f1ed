//! A run's statistics: cumulative totals plus the interval being filled, closed once per second into a
//! [`HistoryRow`].
//!
//! Why history rows are returned rather than kept: a soak runs for hours; the engine writes each row to
//! `_stats_history.csv` as it closes (a killed run keeps its history) and `RunStats` stays the same size.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::recorder::unix_secs;
use crate::{LatencyHistogram, LatencyPercentiles, RequestStats, StatsDelta, StatusClass};

/// Name of the all-requests row, as Locust writes it.
pub const AGGREGATED_NAME: &str = "Aggregated";

/// Totals of one request (or of all requests: [`AGGREGATED_NAME`] with an empty method).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestReport {
    /// HTTP method; empty for the aggregate.
    pub method: String,
    /// Request name, or [`AGGREGATED_NAME`].
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Failures, 429s included (Locust's `Failure Count`).
    pub failures: u64,
    /// Failures that were 429 responses.
    pub failures_429: u64,
    /// Response bytes, summed.
    pub content_bytes: u64,
    /// Latency of all requests (microseconds).
    pub latency: LatencyHistogram,
}

impl RequestReport {
    /// Sums request statistics into one report.
    pub fn from_requests<'a>(
        method: &str,
        name: &str,
        stats: impl IntoIterator<Item = &'a RequestStats>,
    ) -> Self {
        let mut report = Self {
            method: method.to_owned(),
            name: name.to_owned(),
            requests: 0,
            failures: 0,
            failures_429: 0,
            content_bytes: 0,
            latency: LatencyHistogram::new(),
        };
        for request in stats {
            report.add_counts(request);
            for class in request.classes.values() {
                report.latency.add(&class.latency);
            }
        }
        report
    }

    fn add_counts(&mut self, request: &RequestStats) {
        self.requests += request.requests();
        self.failures += request.failures();
        self.failures_429 += request.failures_429();
        self.content_bytes += request.content_bytes;
    }

    /// Failures / requests (0 when there were no requests).
    pub fn error_rate(&self) -> f64 {
        ratio(self.failures, self.requests)
    }

    /// Failures other than 429 / requests — the users' rule (0 when there were no requests).
    pub fn error_rate_excluding_429(&self) -> f64 {
        ratio(self.failures - self.failures_429, self.requests)
    }

    /// Latency percentiles (`None` without requests).
    pub fn percentiles(&self) -> Option<LatencyPercentiles> {
        LatencyPercentiles::of(&self.latency)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Cumulative aggregate figures at the time a history row was closed (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CumulativeTotals {
    /// Requests since the start.
    pub requests: u64,
    /// Failures since the start (429s included).
    pub failures: u64,
    /// Response bytes since the start.
    pub content_bytes: u64,
    /// Median latency since the start.
    pub median_ms: Option<f64>,
    /// Mean latency since the start.
    pub mean_ms: Option<f64>,
    /// Smallest latency since the start.
    pub min_ms: Option<f64>,
    /// Largest latency since the start.
    pub max_ms: Option<f64>,
}

/// One closed interval (normally one second) of the aggregate, plus the cumulative totals at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRow {
    /// Unix seconds at the end of the interval.
    pub timestamp: u64,
    /// Users (closed model) or in-flight requests (open model), as given by the engine.
    pub users: u32,
    /// Length of the interval in seconds.
    pub interval_secs: f64,
    /// Requests finished in the interval.
    pub requests: u64,
    /// Failures in the interval (429s included).
    pub failures: u64,
    /// Failures in the interval that were 429 responses.
    pub failures_429: u64,
    /// Requests per second over the interval.
    pub requests_per_sec: f64,
    /// Failures per second over the interval.
    pub failures_per_sec: f64,
    /// Latency percentiles of the interval alone (`None` when no request finished in it).
    pub percentiles: Option<LatencyPercentiles>,
    /// Failures in the interval by status class (for the progress line).
    pub failures_by_class: BTreeMap<StatusClass, u64>,
    /// Cumulative totals at the end of the interval.
    pub total: CumulativeTotals,
}

/// The current interval's aggregate; reset in place when it closes (its histogram is allocated once).
#[derive(Debug)]
struct Interval {
    requests: u64,
    failures: u64,
    failures_429: u64,
    latency: LatencyHistogram,
    failures_by_class: BTreeMap<StatusClass, u64>,
}

impl Interval {
    fn new() -> Self {
        Self {
            requests: 0,
            failures: 0,
            failures_429: 0,
            latency: LatencyHistogram::aggregate(),
            failures_by_class: BTreeMap::new(),
        }
    }

    fn reset(&mut self) {
        self.requests = 0;
        self.failures = 0;
        self.failures_429 = 0;
        self.latency.reset();
        self.failures_by_class.clear();
    }
}

/// Totals and interval accounting of one run.
#[derive(Debug)]
pub struct RunStats {
    started: SystemTime,
    last_closed: SystemTime,
    totals: StatsDelta,
    interval: Interval,
}

impl RunStats {
    /// Empty statistics of a run that started at `started`.
    pub fn new(started: SystemTime) -> Self {
        Self {
            started,
            last_closed: started,
            totals: StatsDelta::new(),
            interval: Interval::new(),
        }
    }

    /// Adds a recorder's delta to the totals and to the current interval.
    pub fn merge(&mut self, delta: &StatsDelta) {
        self.totals.merge(delta);
        self.interval.latency.add(&delta.aggregate);
        for request in &delta.requests {
            for (class, stats) in &request.classes {
                self.interval.requests += stats.requests;
                self.interval.failures += stats.failures;
                if stats.failures > 0 {
                    *self.interval.failures_by_class.entry(*class).or_default() += stats.failures;
                }
            }
            self.interval.failures_429 += request.failures_429();
        }
    }

    /// Closes the current interval at `at` (call once per second, and once more when the run stops).
    pub fn close_interval(&mut self, at: SystemTime, users: u32) -> HistoryRow {
        let secs = at
            .duration_since(self.last_closed)
            .unwrap_or_default()
            .as_secs_f64();
        self.last_closed = self.last_closed.max(at);
        let interval = &self.interval;
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let row = HistoryRow {
            timestamp: unix_secs(at),
            users,
            interval_secs: secs,
            requests: interval.requests,
            failures: interval.failures,
            failures_429: interval.failures_429,
            requests_per_sec: per_sec(interval.requests),
            failures_per_sec: per_sec(interval.failures),
            percentiles: LatencyPercentiles::of(&interval.latency),
            failures_by_class: interval.failures_by_class.clone(),
            total: self.cumulative_totals(),
        };
        self.interval.reset();
        row
    }

    fn cumulative_totals(&self) -> CumulativeTotals {
        let ms = |us: Option<u64>| us.map(crate::percentiles::us_to_ms);
        let aggregated = &self.totals.aggregate;
        CumulativeTotals {
            requests: aggregated.count(),
            failures: self
                .totals
                .requests
                .iter()
                .map(RequestStats::failures)
                .sum(),
            content_bytes: self.totals.requests.iter().map(|r| r.content_bytes).sum(),
            median_ms: ms(aggregated.quantile_us(0.5)),
            mean_ms: aggregated.mean_ms(),
            min_ms: ms(aggregated.min_us()),
            max_ms: ms(aggregated.max_us()),
        }
    }

    /// When the run started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// From the start to the last closed interval.
    pub fn elapsed(&self) -> Duration {
        self.last_closed
            .duration_since(self.started)
            .unwrap_or_default()
    }

    /// Everything merged so far.
    pub fn totals(&self) -> &StatsDelta {
        &self.totals
    }

    /// Latency of all requests since the start ([`Precision::Aggregate`](crate::histogram::Precision::Aggregate)).
    pub fn aggregated_latency(&self) -> &LatencyHistogram {
        &self.totals.aggregate
    }

    /// One report per request, sorted by name then method (Locust's order).
    pub fn request_reports(&self) -> Vec<RequestReport> {
        let mut reports: Vec<RequestReport> = self
            .totals
            .requests
            .iter()
            .map(|r| RequestReport::from_requests(&r.method, &r.name, [r]))
            .collect();
        reports.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
        reports
    }

    /// The all-requests report (empty method, name [`AGGREGATED_NAME`]); its latency is the 0.1 % aggregate
    /// histogram, not the sum of the 1 % per-request ones.
    pub fn aggregate_report(&self) -> RequestReport {
        let mut report = RequestReport::from_requests("", AGGREGATED_NAME, []);
        for request in &self.totals.requests {
            report.add_counts(request);
        }
        report.latency = self.totals.aggregate.clone();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Precision;
    use crate::{Outcome, OutcomeResult, Recorder};

    fn record(recorder: &mut Recorder, name: &'static str, status: u16, success: bool, ms: u64) {
        recorder.record(&Outcome {
            name,
            method: "GET",
            result: OutcomeResult::Status(status),
            success,
            latency: Duration::from_millis(ms),
            bytes: 10,
            stream: None,
        });
    }

    #[test]
    fn intervals_count_their_own_requests_and_totals_accumulate() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut run = RunStats::new(t0);
        let mut recorder = Recorder::new();
        for ms in [10, 20, 30, 40] {
            record(&mut recorder, "a", 200, true, ms);
        }
        record(&mut recorder, "b", 429, false, 1);
        record(&mut recorder, "b", 500, false, 2);
        run.merge(&recorder.take());
        let first = run.close_interval(t0 + Duration::from_secs(2), 7);
        assert_eq!(
            (first.timestamp, first.users, first.requests, first.failures),
            (1_002, 7, 6, 2)
        );
        assert_eq!(
            (
                first.requests_per_sec,
                first.failures_per_sec,
                first.failures_429
            ),
            (3.0, 1.0, 1)
        );
        assert_eq!(
            first.failures_by_class.get(&StatusClass::ServerError),
            Some(&1)
        );
        assert_eq!(first.percentiles.unwrap().p100, 40.0);

        let second = run.close_interval(t0 + Duration::from_secs(3), 7);
        assert_eq!((second.requests, second.percentiles), (0, None));
        assert_eq!((second.total.requests, second.total.failures), (6, 2));
        assert_eq!(
            (second.total.min_ms, second.total.max_ms),
            (Some(1.0), Some(40.0))
        );
        assert_eq!(run.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn aggregate_latency_keeps_three_digits_where_requests_keep_two() {
        let mut run = RunStats::new(SystemTime::UNIX_EPOCH);
        let mut recorder = Recorder::new();
        for us in [50_000, 100_700, 150_000] {
            recorder.record(&Outcome {
                name: "a",
                method: "GET",
                result: OutcomeResult::Status(200),
                success: true,
                latency: Duration::from_micros(us),
                bytes: 0,
                stream: None,
            });
        }
        run.merge(&recorder.take());
        // The median 100.7 ms lies in a 64 µs wide 3-digit bucket (reported as 100.735 ms) and in a 512 µs wide
        // 2-digit one (100.863 ms).
        let row = run.close_interval(SystemTime::UNIX_EPOCH + Duration::from_secs(1), 1);
        let median_ms = |h: &LatencyHistogram| h.quantile_us(0.5).unwrap() as f64 / 1000.0;
        for (what, median) in [
            ("history row", row.percentiles.unwrap().p50),
            ("cumulative", row.total.median_ms.unwrap()),
            ("aggregate", median_ms(&run.aggregate_report().latency)),
        ] {
            assert!((median - 100.7).abs() < 0.1, "{what}: {median}");
        }
        let per_request = median_ms(&run.request_reports()[0].latency);
        assert!((per_request - 100.7).abs() < 0.6, "{per_request}");
        assert!(
            (per_request - 100.7).abs() >= 0.1,
            "2 digits: {per_request}"
        );
    }

    #[test]
    fn reports_are_sorted_and_aggregate_sums_them() {
        let mut run = RunStats::new(SystemTime::UNIX_EPOCH);
        let mut recorder = Recorder::new();
        record(&mut recorder, "zeta", 200, true, 5);
        record(&mut recorder, "alpha", 429, false, 5);
        record(&mut recorder, "alpha", 200, true, 5);
        record(&mut recorder, "alpha", 503, false, 5);
        run.merge(&recorder.take());
        let names: Vec<_> = run.request_reports().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        let all = run.aggregate_report();
        assert_eq!(
            (all.method.as_str(), all.name.as_str()),
            ("", AGGREGATED_NAME)
        );
        assert_eq!((all.requests, all.failures, all.failures_429), (4, 2, 1));
        assert_eq!(
            (all.latency.count(), all.latency.precision()),
            (4, Precision::Aggregate)
        );
        assert_eq!(
            (all.error_rate(), all.error_rate_excluding_429()),
            (0.5, 0.25)
        );
    }

    #[test]
    fn an_empty_run_reports_zeros_not_panics() {
        let mut run = RunStats::new(SystemTime::UNIX_EPOCH);
        let row = run.close_interval(SystemTime::UNIX_EPOCH, 0);
        assert_eq!((row.requests_per_sec, row.total.median_ms), (0.0, None));
        let all = run.aggregate_report();
        assert_eq!(
            (all.requests, all.error_rate(), all.percentiles()),
            (0, 0.0, None)
        );
    }
}
