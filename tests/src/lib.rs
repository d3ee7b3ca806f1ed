//! End-to-end tests and deliberately broken proxy fixtures.
//!
//! # Layout
//! - `src/bin/leaky-proxy.rs` — the reference proxy plus a layer that really leaks memory (N bytes per request),
//!   file descriptors or upstream TCP connections; the harness's leak verdicts must call it LEAK / GROWTH.
//! - `src/bin/misbehaving-proxy.rs` + `src/misbehaving/` — a proxy that is correct except for one chosen defect
//!   (or none), optionally slow and unsteady; the behaviour verdicts must fail for the defect and only for it.
//! - `src/leak.rs` — the leaking middleware itself, kept apart so each fixture binary stays a thin main.
//! - `src/bin/harness-e2e.rs` — the harness program built in this package, so tests get its path from Cargo.
//! - `e2e/` — end-to-end runs of the real binaries over loopback (`e2e/common` holds their shared helpers).

pub mod leak;
pub mod misbehaving;
