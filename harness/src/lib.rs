//! `harness`: load driver for API-key-router proxies.
//!
//! Scenario files describe the load; the engine drives it against the proxy under test (started by the harness or
//! attached to), measuring exact latencies without coordinated omission; the run writes Locust-compatible CSVs,
//! `summary.json` and a verdict with a documented exit code.

pub mod scenario;
