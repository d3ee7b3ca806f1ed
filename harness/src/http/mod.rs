//! HTTP on the hot path: prepared requests, one send with full timing, SSE scanning, error classes.
//!
//! The hot path uses hyper's connection-level HTTP/1.1 client rather than reqwest or a pooled client: each load
//! worker owns its [`Connection`] (as oha and wrk do), so a request costs no pool lookup or lock. On one core
//! against nginx a bare reqwest loop reached ~0.6× oha's request rate, a pooled hyper-util loop ~1.0× and a
//! connection-level loop more (`bench/harness-vs-oha-wrk.sh`, figures in `bench/RESULTS.md`); reqwest still serves
//! the cold paths (readiness checks, setup calls).

mod classify;
mod conn;
mod exchange;
mod prepared;
mod sse;

pub use classify::classify;
pub use conn::{Connection, SendError};
pub use exchange::Exchange;
pub use prepared::{PreparedRequest, TargetError};
pub use sse::{ScanStep, SseScanner};
