//! Mergeable statistics of a load run.
//!
//! The engine's workers each own a [`Recorder`] and feed it one [`Outcome`] per finished request. Every
//! interval (1 s) the run loop takes the worker's interval snapshot and merges it into the run's totals and the
//! per-interval history. Everything here is sized by the number of distinct request names and status classes,
//! never by the number of requests: histograms, not sample vectors.
//!
//! (Seed of the interface agreed between the engine and this crate; the stats owner extends it.)

use std::time::Duration;

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

/// Transport-level failure classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
