//! `harness` binary: parse the command line, set up tracing and the runtime, run, exit with the documented code.

use clap::Parser;

fn main() {
    let cli = harness::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(harness::commands::execute(cli)),
        Err(e) => {
            eprintln!("harness: cannot start the async runtime: {e}");
            harness::exit::Exit::Invalid.code()
        }
    };
    std::process::exit(code);
}
