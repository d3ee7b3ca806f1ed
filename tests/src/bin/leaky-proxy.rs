//! The reference proxy with a real leak (see `tests::leak`): same CLI as `reference-proxy`, plus
//! `LEAK_BYTES_PER_REQUEST`, `LEAK_FD_EVERY` and `LEAK_SOCKET_EVERY` in the environment.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let plan = match tests::leak::LeakPlan::from_env() {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("leaky-proxy: {message}");
            return ExitCode::from(2);
        }
    };
    let args = reference_proxy::Args::parse();
    if let Err(error) = tests::leak::install(plan, &args.upstream) {
        eprintln!("leaky-proxy: {error}");
        return ExitCode::from(2);
    }
    match reference_proxy::run(args, tests::leak::with_leak).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("leaky-proxy: {error:#}");
            ExitCode::from(2)
        }
    }
}
