//! Mergeable statistics of a load run.
//!
//! The engine's workers each own a [`Recorder`] and feed it one [`Outcome`] per finished request. Every
//! interval (1 s) the run loop takes the worker's interval snapshot ([`StatsDelta`]) and merges it into the run's
//! totals ([`RunStats`]), closing the interval into a [`HistoryRow`]. Everything here is sized by the number of
//! distinct request names, status classes and (bounded) error messages, never by the number of requests:
//! histograms, not sample vectors.
//!
//! # Cost
//! Memory is fixed by the scenario, not by the traffic or the latencies seen: every histogram covers 1 µs..1 h
//! from its creation (see [`histogram`]). A per-request histogram (2 significant digits, 1 %) is 13 KiB; the
//! all-requests histogram (3 digits, 0.1 %) is 92 KiB and exists once per recorder and run. For `W` worker
//! recorders, the run totals and the delta in transit, the ceiling is about
//! `13 KiB x (request names x status classes seen) x (W + 2) + 92 KiB x (W + 4)`, e.g. 26 MiB for 500 names
//! failing in one class on 2 workers. The error table keeps at most 100 distinct messages per request. Recording
//! one outcome costs about 200 ns including a distinct error message on 2 % of them (release build).
//!
//! # Layout
//! - [`histogram`]: the bounded-memory microsecond HDR histogram and its portable encoding.
//! - [`status`]: status classes, the second key of every histogram.
//! - [`request_stats`], [`streaming`], [`errors`]: what is kept per request, per stream, per failure.
//! - [`recorder`]: the hot-path [`Recorder`] and the mergeable [`StatsDelta`].
//! - [`run`]: [`RunStats`] totals, per-interval [`HistoryRow`]s and per-request [`RequestReport`]s.
//! - [`interval_log`]: the per-second history as an HdrHistogram interval log (`history.hlog`), read back to
//!   merge runs side by side (shards).
//! - [`percentiles`]: the reported percentiles, in Locust's order.
//! - [`locust`]: Locust 2.x compatible CSV writers.
//! - [`thresholds`]: scenario limits and their pass/fail evaluation.
//! - [`drift`]: latency drift between the first and the last window of a run (merged interval histograms).
//! - [`summary`]: the `summary.json` document (schema in `summary.schema.json`).
//! - [`check`]: `harness check` — thresholds applied to a Locust `_stats.csv` or a `summary.json`.

pub mod check;
pub mod drift;
pub mod errors;
pub mod histogram;
pub mod interval_log;
pub mod locust;
pub mod percentiles;
pub mod recorder;
pub mod request_stats;
pub mod run;
pub mod status;
pub mod streaming;
pub mod summary;
pub mod thresholds;

pub use errors::{ErrorKind, ErrorRow, ErrorTable};
pub use histogram::{LatencyHistogram, PackedHistogram};
pub use percentiles::LatencyPercentiles;
pub use recorder::{Recorder, StatsDelta};
pub use request_stats::{ClassStats, RequestStats};
pub use run::{CumulativeTotals, HistoryRow, RequestReport, RunStats};
pub use status::StatusClass;
pub use streaming::StreamStats;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happened to one request, as the engine saw it.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// The scenario's request name (Locust's `Name` column).
    pub name: &'a str,
    /// HTTP method (Locust's `Type` column).
    pub method: &'a str,
    /// Status received or transport error.
    pub result: OutcomeResult<'a>,
    /// Whether the scenario counts this outcome as a success (expected status, header checks passed, ...).
    pub success: bool,
    /// Latency measured from the *intended* send time (open model) or the actual send time (closed model).
    pub latency: Duration,
    /// Response body size in bytes (Locust's content size).
    pub bytes: u64,
    /// Streaming timings, for `stream = true` requests.
    pub stream: Option<StreamTiming>,
}

/// Status or transport error of one request.
#[derive(Debug, Clone)]
pub enum OutcomeResult<'a> {
    /// A response arrived with this status.
    Status(u16),
    /// No (complete) response: the class and a human message (first-seen messages are kept, bounded).
    Error(ErrorClass, &'a str),
}

/// Transport-level failure classes (serialized in snake_case: `timeout`, `connect_refused`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The request did not finish before its timeout.
    Timeout,
    /// TCP connect refused.
    ConnectRefused,
    /// Connection reset / closed before a complete response.
    Reset,
    /// Body or SSE stream could not be parsed.
    Parse,
    /// A stream ended before its terminal event.
    StreamCut,
    /// Anything else.
    Other,
}

/// Timings of one streamed (SSE) response.
#[derive(Debug, Clone, Default)]
pub struct StreamTiming {
    /// Time to the first response byte (headers).
    pub ttfb: Duration,
    /// Time to the first SSE `data:` event.
    pub ttft: Option<Duration>,
    /// Number of SSE data events received.
    pub chunks: u32,
    /// Largest gap between two consecutive chunks (gaps are also recorded one by one through
    /// `Recorder::record_chunk_gap`).
    pub max_gap: Duration,
}
