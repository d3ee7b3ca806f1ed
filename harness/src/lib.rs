//! `harness`: load driver for API-key-router proxies.
//!
//! Scenario files ([`scenario`]) describe the load; the [`engine`] drives it against the proxy under test
//! ([`sut`]: started by the harness, or attached to), measuring exact latencies without coordinated omission
//! over a hyper-util hot path ([`http`]); [`run`] orchestrates a whole run and writes Locust-compatible CSVs,
//! `summary.json` and a verdict with a documented exit code ([`exit`]); [`monitoring`] samples and judges the
//! proxy's resources. [`cli`] and [`commands`] are the command line.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod error;
pub mod exit;
pub mod http;
pub mod monitoring;
pub mod run;
pub mod scenario;
pub mod sut;
