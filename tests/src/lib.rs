//! End-to-end tests and deliberately broken proxy fixtures.
//!
//! # Layout
//! - `src/bin/leaky-proxy.rs` — the reference proxy plus a layer that really leaks memory (N bytes per request)
//!   or file descriptors; the harness's leak verdicts must call it LEAK / GROWTH.
//! - `src/leak.rs` — the leaking middleware itself, kept apart so each fixture binary stays a thin main.
//! - `src/bin/harness-e2e.rs` — the harness program built in this package, so tests get its path from Cargo.
//! - `tests/` — end-to-end runs of the real binaries over loopback.

pub mod leak;
pub mod misbehaving;
