//! `summary.json`: the machine-readable result of a run.
//!
//! Why a typed, versioned document: CI gates, dashboards and `harness check` read it, so field names are stable
//! (changes bump [`SCHEMA_VERSION`]), every field is described in `load-stats/summary.schema.json`, and the
//! serialized histograms (HdrHistogram V2+DEFLATE, base64) let anyone recompute percentiles or merge runs.
//!
//! Units: latencies in milliseconds (`*_ms`, microsecond precision) unless a field says `_us`; rates per second;
//! percentages 0-100.
//!
//! The engine builds it with [`Summary::from_run`], then fills the fields it owns: `verdict`, `exit_code`,
//! `verdict_reasons`, `leak_report`, `engine`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::percentiles::us_to_ms;
use crate::thresholds::ThresholdResult;
use crate::{
    ClassStats, ErrorClass, ErrorRow, LatencyHistogram, LatencyPercentiles, RequestReport,
    RequestStats, RunStats, StatsDelta, StatusClass, StreamStats,
};

/// Version of the document layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
/// `verdict` until the engine sets it.
pub const VERDICT_PENDING: &str = "PENDING";

/// The whole `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// From the start to the last closed interval, in seconds.
    pub duration_secs: f64,
    /// The effective configuration (scenario after CLI overrides), echoed as given by the engine.
    pub config: serde_json::Value,
    /// All requests together (`name` = `Aggregated`, empty `method`).
    pub aggregate: RequestSummary,
    /// One entry per request (method + name), sorted by name then method.
    pub requests: Vec<RequestSummary>,
    /// Failures by status class, all requests.
    pub failures_by_class: BTreeMap<StatusClass, u64>,
    /// Failures by request, kind and first-seen message (bounded; see `errors` module).
    pub errors: Vec<ErrorRow>,
    /// Streaming metrics per request name (only names that streamed).
    pub streaming: Vec<StreamSummary>,
    /// Every threshold checked, passed or not.
    pub thresholds: Vec<ThresholdResult>,
    /// Whether every threshold passed.
    pub thresholds_passed: bool,
    /// Overall verdict set by the engine (`PASS`, `FAIL`, `LEAK`, `INTERRUPTED`, ...); [`VERDICT_PENDING`] before.
    pub verdict: String,
    /// Process exit code matching the verdict (set by the engine).
    pub exit_code: i32,
    /// Why the verdict is what it is, one sentence each (set by the engine).
    pub verdict_reasons: Vec<String>,
    /// The system-under-test leak analysis (`sut_monitor::leak::LeakReport`), or null.
    pub leak_report: serde_json::Value,
    /// Engine-owned figures (late/dropped sends of the open model, the generator's own RSS/CPU, ...), or null.
    pub engine: serde_json::Value,
}

/// Latency figures of one histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Exact minimum.
    pub min_ms: f64,
    /// Exact mean.
    pub mean_ms: f64,
    /// Exact maximum.
    pub max_ms: f64,
    /// Percentiles (within 0.1 % for the aggregate, 1 % per request and status class).
    pub percentiles: LatencyPercentiles,
    /// Samples above 1 h, recorded as 1 h.
    pub saturated: u64,
}

impl LatencySummary {
    /// Figures of `histogram`; `None` when it is empty.
    pub fn of(histogram: &LatencyHistogram) -> Option<Self> {
        Some(Self {
            count: histogram.count(),
            min_ms: us_to_ms(histogram.min_us()?),
            mean_ms: histogram.mean_ms()?,
            max_ms: us_to_ms(histogram.max_us()?),
            percentiles: LatencyPercentiles::of(histogram)?,
            saturated: histogram.saturated(),
        })
    }
}

/// One status class of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassSummary {
    /// Requests in this class.
    pub requests: u64,
    /// How many the scenario counted as failures.
    pub failures: u64,
    /// Latency figures (null when empty).
    pub latency: Option<LatencySummary>,
    /// The serialized histogram (mergeable).
    pub histogram: LatencyHistogram,
}

/// Statistics of one request (or of all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// HTTP method (empty for the aggregate).
    pub method: String,
    /// Request name (`Aggregated` for the aggregate).
    pub name: String,
    /// Requests.
    pub requests: u64,
    /// Failures, 429s included.
    pub failures: u64,
    /// Failures that were 429 responses.
    pub failures_429: u64,
    /// Failures in percent of requests.
    pub error_percent: f64,
    /// Failures other than 429 in percent of requests (the users' rule).
    pub error_percent_excluding_429: f64,
    /// Requests per second over the run.
    pub requests_per_sec: f64,
    /// Failures per second over the run.
    pub failures_per_sec: f64,
    /// Response bytes, summed.
    pub content_bytes: u64,
    /// Latency figures of all classes (null without requests).
    pub latency: Option<LatencySummary>,
    /// The serialized histogram of all classes (mergeable).
    pub histogram: LatencyHistogram,
    /// Per status class.
    pub by_status_class: BTreeMap<StatusClass, ClassSummary>,
}

impl RequestSummary {
    /// Summary of one report; `classes` are the per-class figures (empty for the aggregate if not wanted).
    pub fn new(
        report: &RequestReport,
        elapsed: Duration,
        classes: BTreeMap<StatusClass, ClassSummary>,
    ) -> Self {
        let per_sec = |n: u64| {
            if elapsed.is_zero() {
                0.0
            } else {
                n as f64 / elapsed.as_secs_f64()
            }
        };
        Self {
            method: report.method.clone(),
            name: report.name.clone(),
            requests: report.requests,
            failures: report.failures,
            failures_429: report.failures_429,
            error_percent: 100.0 * report.error_rate(),
            error_percent_excluding_429: 100.0 * report.error_rate_excluding_429(),
            requests_per_sec: per_sec(report.requests),
            failures_per_sec: per_sec(report.failures),
            content_bytes: report.content_bytes,
            latency: LatencySummary::of(&report.latency),
            histogram: report.latency.clone(),
            by_status_class: classes,
        }
    }
}

/// Streaming metrics of one request name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Request name.
    pub name: String,
    /// Streams seen.
    pub streams: u64,
    /// Streams cut short, all causes.
    pub cut: u64,
    /// Streams cut short, by cause.
    pub cut_by_cause: BTreeMap<ErrorClass, u64>,
    /// Streams without a single data event.
    pub without_first_token: u64,
    /// Data events, summed.
    pub chunks: u64,
    /// Data events per stream, on average.
    pub mean_chunks: f64,
    /// Most data events in one stream.
    pub max_chunks: u32,
    /// Time to first byte.
    pub ttfb: Option<LatencySummary>,
    /// Time to first token (first SSE data event).
    pub ttft: Option<LatencySummary>,
    /// Every gap between consecutive chunks.
    pub chunk_gap: Option<LatencySummary>,
    /// The largest gap of each stream.
    pub max_gap: Option<LatencySummary>,
    /// Total stream duration.
    pub duration: Option<LatencySummary>,
    /// The raw, mergeable histograms.
    pub histograms: StreamStats,
}

impl StreamSummary {
    /// Summary of one name's streaming metrics.
    pub fn of(stats: &StreamStats) -> Self {
        let mean_chunks = if stats.streams == 0 {
            0.0
        } else {
            stats.chunks as f64 / stats.streams as f64
        };
        Self {
            name: stats.name.clone(),
            streams: stats.streams,
            cut: stats.cut_total(),
            cut_by_cause: stats.cut.clone(),
            without_first_token: stats.without_first_token,
            chunks: stats.chunks,
            mean_chunks,
            max_chunks: stats.max_chunks,
            ttfb: LatencySummary::of(&stats.ttfb),
            ttft: LatencySummary::of(&stats.ttft),
            chunk_gap: LatencySummary::of(&stats.chunk_gap),
            max_gap: LatencySummary::of(&stats.max_gap),
            duration: LatencySummary::of(&stats.duration),
            histograms: stats.clone(),
        }
    }
}

impl Summary {
    /// Builds the summary of a run; the verdict fields start as [`VERDICT_PENDING`] / 0 / null for the engine.
    pub fn from_run(
        run: &RunStats,
        config: serde_json::Value,
        thresholds: Vec<ThresholdResult>,
    ) -> Self {
        let elapsed = run.elapsed();
        let requests: Vec<RequestSummary> = run
            .request_reports()
            .iter()
            .map(|report| RequestSummary::new(report, elapsed, class_summaries(run, report)))
            .collect();
        let mut failures_by_class = BTreeMap::new();
        for request in &run.totals().requests {
            for (class, stats) in request.classes.iter().filter(|(_, s)| s.failures > 0) {
                *failures_by_class.entry(*class).or_default() += stats.failures;
            }
        }
        let aggregate_classes = merge_class_summaries(&requests);
        Self {
            schema_version: SCHEMA_VERSION,
            started_at: rfc3339(run.started()),
            duration_secs: elapsed.as_secs_f64(),
            config,
            aggregate: RequestSummary::new(&run.aggregate_report(), elapsed, aggregate_classes),
            requests,
            failures_by_class,
            errors: run.totals().errors.rows(),
            streaming: run.totals().streams.iter().map(StreamSummary::of).collect(),
            thresholds_passed: crate::thresholds::all_passed(&thresholds),
            thresholds,
            verdict: VERDICT_PENDING.to_owned(),
            exit_code: 0,
            verdict_reasons: Vec::new(),
            leak_report: serde_json::Value::Null,
            engine: serde_json::Value::Null,
        }
    }

    /// Writes pretty JSON (with a trailing newline).
    pub fn write_json(&self, mut w: impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")
    }

    /// The run's statistics back as one delta — per-request class histograms and counts, the all-requests
    /// histogram, streams and the error table — so the summaries of runs made side by side (shards) merge into
    /// one [`RunStats`] by adding histograms, never by averaging percentiles.
    pub fn to_delta(&self) -> StatsDelta {
        let mut delta = StatsDelta::new();
        for summary in &self.requests {
            let mut request = RequestStats::new(&summary.method, &summary.name);
            request.content_bytes = summary.content_bytes;
            for (class, c) in &summary.by_status_class {
                request.classes.insert(
                    *class,
                    ClassStats {
                        requests: c.requests,
                        failures: c.failures,
                        latency: c.histogram.clone(),
                    },
                );
            }
            delta.requests.push(request);
        }
        delta.aggregate.add(&self.aggregate.histogram);
        delta.streams = self
            .streaming
            .iter()
            .map(|s| s.histograms.clone())
            .collect();
        for row in &self.errors {
            delta.errors.merge_row(row);
        }
        delta
    }

    /// Parses a `summary.json` document.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn class_summaries(run: &RunStats, report: &RequestReport) -> BTreeMap<StatusClass, ClassSummary> {
    let Some(stats) = run.totals().request(&report.method, &report.name) else {
        return BTreeMap::new();
    };
    stats
        .classes
        .iter()
        .map(|(class, s)| {
            let summary = ClassSummary {
                requests: s.requests,
                failures: s.failures,
                latency: LatencySummary::of(&s.latency),
                histogram: s.latency.clone(),
            };
            (*class, summary)
        })
        .collect()
}

fn merge_class_summaries(requests: &[RequestSummary]) -> BTreeMap<StatusClass, ClassSummary> {
    let mut merged: BTreeMap<StatusClass, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    for (class, summary) in requests.iter().flat_map(|r| &r.by_status_class) {
        let entry = merged.entry(*class).or_default();
        entry.0 += summary.requests;
        entry.1 += summary.failures;
        entry.2.add(&summary.histogram);
    }
    merged
        .into_iter()
        .map(|(class, (requests, failures, histogram))| {
            let latency = LatencySummary::of(&histogram);
            (
                class,
                ClassSummary {
                    requests,
                    failures,
                    latency,
                    histogram,
                },
            )
        })
        .collect()
}

fn rfc3339(at: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::{evaluate_run, Thresholds};
    use crate::{Outcome, OutcomeResult, Recorder, StreamTiming};
    use std::time::SystemTime;

    fn run() -> RunStats {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut run = RunStats::new(t0);
        let mut recorder = Recorder::new();
        for (name, status, success, stream) in [
            ("chat", 200, true, true),
            ("chat", 429, false, true),
            ("models", 200, true, false),
            ("models", 500, false, false),
        ] {
            recorder.record(&Outcome {
                name,
                method: "POST",
                result: OutcomeResult::Status(status),
                success,
                latency: Duration::from_millis(40),
                bytes: 100,
                stream: stream.then(|| StreamTiming {
                    ttfb: Duration::from_millis(5),
                    ttft: Some(Duration::from_millis(9)),
                    chunks: 4,
                    max_gap: Duration::from_millis(3),
                }),
            });
        }
        run.merge(&recorder.take());
        run.close_interval(t0 + Duration::from_secs(2), 2);
        run
    }

    #[test]
    fn summary_carries_totals_classes_errors_and_streams() {
        let run = run();
        let results = evaluate_run(&Thresholds::users_targets(), &run);
        let summary = Summary::from_run(&run, serde_json::json!({"scenario": "x"}), results);
        assert_eq!(summary.started_at, "2027-01-15T08:00:00Z");
        assert_eq!(
            (summary.aggregate.requests, summary.aggregate.failures),
            (4, 2)
        );
        assert_eq!(summary.aggregate.error_percent_excluding_429, 25.0);
        assert_eq!(summary.aggregate.requests_per_sec, 2.0);
        assert_eq!(
            summary.aggregate.by_status_class[&StatusClass::Success].requests,
            2
        );
        assert_eq!(summary.failures_by_class.len(), 2);
        assert_eq!(summary.errors.len(), 2);
        assert_eq!(summary.streaming.len(), 1);
        assert_eq!(summary.streaming[0].mean_chunks, 4.0);
        assert!(!summary.thresholds_passed, "2 req/s is below 1000");
        assert_eq!(summary.verdict, VERDICT_PENDING);
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let run = run();
        let summary = Summary::from_run(&run, serde_json::Value::Null, Vec::new());
        let mut bytes = Vec::new();
        summary.write_json(&mut bytes).unwrap();
        let back = Summary::from_json(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn two_summaries_merge_into_the_run_that_recorded_both() {
        let one = Summary::from_run(&run(), serde_json::Value::Null, Vec::new());
        let t0 = run().started();
        let mut merged = RunStats::new(t0);
        merged.merge(&one.to_delta());
        merged.merge(&one.to_delta());
        merged.close_interval(t0 + Duration::from_secs(2), 0);
        let both = Summary::from_run(&merged, serde_json::Value::Null, Vec::new());
        assert_eq!(both.aggregate.requests, 2 * one.aggregate.requests);
        assert_eq!(both.aggregate.failures_429, 2 * one.aggregate.failures_429);
        let mut doubled = one.aggregate.histogram.clone();
        doubled.add(&one.aggregate.histogram);
        assert_eq!(both.aggregate.histogram, doubled);
        assert_eq!(both.requests.len(), one.requests.len());
        assert_eq!(both.errors[0].occurrences, 2 * one.errors[0].occurrences);
        assert_eq!(both.streaming[0].streams, 2 * one.streaming[0].streams);
        assert_eq!(
            both.aggregate.requests_per_sec,
            2.0 * one.aggregate.requests_per_sec
        );
    }

    #[test]
    fn empty_run_summary_has_nulls_not_panics() {
        let run = RunStats::new(SystemTime::UNIX_EPOCH);
        let summary = Summary::from_run(&run, serde_json::Value::Null, Vec::new());
        assert_eq!(
            (
                summary.aggregate.requests,
                summary.aggregate.latency.clone()
            ),
            (0, None)
        );
        assert_eq!(summary.aggregate.error_percent, 0.0);
    }
}
