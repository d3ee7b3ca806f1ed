//! The reference proxy with a real leak (see `tests::leak`): same CLI as `reference-proxy`, plus
//! `LEAK_BYTES_PER_REQUEST` and `LEAK_FD_EVERY` in the environment.

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
    tests::leak::install(plan);
    let args = reference_proxy::Args::parse();
    match reference_proxy::run(args, tests::leak::with_leak).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("leaky-proxy: {error:#}");
            ExitCode::from(2)
        }
    }
}
