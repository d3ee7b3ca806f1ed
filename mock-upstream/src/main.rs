//! `mock-upstream` binary: see `mock_upstream::cli`.

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = mock_upstream::cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(error) = mock_upstream::cli::run(args).await {
        eprintln!("mock-upstream: error: {error:#}");
        std::process::exit(mock_upstream::cli::exit_code(&error));
    }
}
