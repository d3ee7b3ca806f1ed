//! Stand-alone `watch` (the same logic as `harness watch`), for benchmarks and ad-hoc use:
//! `cargo run --release -p bench-tools --bin monitor_watch -- --pid 1234 --duration 10m --out results`.

use clap::Parser;

/// Watch a process tree and judge it for leaks.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    watch: sut_monitor::watch::WatchArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let code = match sut_monitor::watch::run(Cli::parse().watch).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
