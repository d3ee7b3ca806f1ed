//! `reference-proxy` binary: parse flags, start logging (to stderr; stdout carries the `listening on` line),
//! run the library, map errors to exit codes (2 = bad config, 1 = anything else).

use std::process::ExitCode;

use clap::Parser;
use reference_proxy::{Args, ConfigError, EXIT_BAD_CONFIG};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match reference_proxy::run(args, |router| router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reference-proxy: {error:#}");
            let bad_config = error.downcast_ref::<ConfigError>().is_some();
            ExitCode::from(if bad_config { EXIT_BAD_CONFIG as u8 } else { 1 })
        }
    }
}
