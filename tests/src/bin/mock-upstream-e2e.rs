//! The `mock-upstream` program built inside this package, so the end-to-end tests that run the mock as an external
//! process get its path from Cargo (`CARGO_BIN_EXE_mock-upstream-e2e`) without depending on another package's
//! binary having been built.

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
