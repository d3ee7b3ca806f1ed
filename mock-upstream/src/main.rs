//! `mock-upstream` binary: see `mock_upstream::cli`.

use clap::Parser;

fn main() {
    let args = mock_upstream::cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = mock_upstream::cli::runtime()
        .and_then(|runtime| runtime.block_on(mock_upstream::cli::run(args)));
    if let Err(error) = result {
        eprintln!("mock-upstream: error: {error:#}");
        std::process::exit(mock_upstream::cli::exit_code(&error));
    }
}
