//! HTTP on the hot path: prepared requests, one send with full timing, SSE scanning, error classes.
//!
//! The hot path uses hyper-util's pooled client directly rather than reqwest: on one core against nginx a bare
//! reqwest loop reached ~0.7× oha's request rate and a bare hyper-util loop ~1.0× (see the harness README and
//! `bench/harness-vs-oha-wrk.sh`); reqwest still serves the cold paths (readiness checks, setup calls).

mod classify;
mod exchange;
mod prepared;
mod sse;

pub use classify::classify;
pub use exchange::{Exchange, HttpClient};
pub use prepared::{PreparedRequest, TargetError};
pub use sse::{ScanStep, SseScanner};
