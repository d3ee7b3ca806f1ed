//! `reference-proxy` binary: parse flags, start logging (to stderr; stdout carries the `listening on` line),
//! run the library, map errors to exit codes (2 = bad config, 1 = anything else).

use std::process::ExitCode;

use clap::Parser;
use reference_proxy::{build_runtime, run_standalone, Args, ConfigError, EXIT_BAD_CONFIG};

/// jemalloc gives freed memory back to the OS over time, so RSS falls again after a burst of connections.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = build_runtime()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run_standalone(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reference-proxy: {error:#}");
            let bad_config = error.downcast_ref::<ConfigError>().is_some();
            ExitCode::from(if bad_config { EXIT_BAD_CONFIG as u8 } else { 1 })
        }
    }
}
