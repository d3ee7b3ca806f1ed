//! `harness`: load driver for API-key-router proxies.
//!
//! Scenario files ([`scenario`]) describe the load; the [`engine`] drives it against the proxy under test
//! ([`sut`]: started by the harness, or attached to), measuring exact latencies without coordinated omission
//! over HTTP/1.1 connections owned by the workers ([`http`]); [`run`] orchestrates a whole run and writes Locust-compatible CSVs,
//! `summary.json` and a verdict with a documented exit code ([`exit`]); [`monitoring`] samples and judges the
//! proxy's resources; [`live_metrics`] serves the run's own metrics to Prometheus while it goes on. [`profile`]
//! reads proxy profiles and [`overrides`] applies them (and `-H`) to a scenario; [`suite`] runs several
//! scenarios as one suite; [`shard`] divides a run over several machines and [`merge`] judges their results
//! once. [`cli`] and [`commands`] are the command line.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod error;
pub mod exit;
pub mod http;
pub mod live_metrics;
pub mod merge;
pub mod monitoring;
pub mod overrides;
pub mod profile;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod suite;
pub mod sut;

/// The whole `harness` program: parses the command line, sets up tracing and the runtime, runs the command and
/// returns the documented exit code. Both the `harness` binary and the end-to-end tests' copy of it call this.
pub fn main_entry() -> i32 {
    use clap::Parser;
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(commands::execute(cli)),
        Err(e) => {
            eprintln!("harness: cannot start the async runtime: {e}");
            exit::Exit::Invalid.code()
        }
    }
}
