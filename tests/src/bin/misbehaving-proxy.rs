//! A key-router proxy that is correct except for one `--defect` (see `tests::misbehaving`). Exit codes:
//! 2 = bad flags (clap), 1 = could not start or serve.

use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use tests::misbehaving::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(error) = args.pauses() {
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, error)
            .exit();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match tests::misbehaving::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("misbehaving-proxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}
