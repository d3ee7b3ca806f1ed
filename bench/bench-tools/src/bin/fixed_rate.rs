//! Fixed-rate (open-loop, wrk2-style) HTTP load client used by `bench/proxy-overhead.sh`.
//!
//! Sends `--rate` requests per second for `--duration` to each `--url`, each on its own schedule slot, and
//! measures latency from the *scheduled* send time, so a slow server cannot hide queueing (no coordinated
//! omission). Several URLs are interleaved request by request (each schedule slot sends to every URL), so
//! "direct" and "through the proxy" are measured at the same moments: on a shared box, a burst of load from other
//! processes hits both alike instead of whichever ran during it. One result line per URL, `target=<index> ...`.
//! Loopback only by intent; bounded by duration and by `--max-in-flight`.
//!
//! `cargo run --release -p bench-tools --bin fixed_rate -- --url http://127.0.0.1:8000/v1/chat/completions --rate 1000 --duration 10s`

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::Semaphore;

/// Fixed-rate load client.
#[derive(Parser)]
struct Opts {
    /// Target URL (POSTed to); repeat to interleave several targets.
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Requests per second, to each URL.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = human_duration::parse)]
    duration: Duration,
    /// Request body (JSON).
    #[arg(
        long,
        default_value = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#
    )]
    body: String,
    /// Bearer token sent with every request.
    #[arg(long, default_value = "sk-bench-client")]
    token: String,
    /// Requests allowed in flight at once; slots beyond it are counted as dropped.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let targets = opts.url.len();
    let tallies: Vec<_> = (0..targets)
        .map(|_| Arc::new(Mutex::new(Tally::default())))
        .collect();
    let slots = Arc::new(Semaphore::new(opts.max_in_flight));
    // One schedule slot per 1/rate: every target gets a request scheduled at that same instant, in an order that
    // rotates from slot to slot, so neither is favoured by being sent first.
    let rate = f64::from(opts.rate.max(1));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (opts.duration.as_secs_f64() * rate) as u64 * targets as u64;
    let start = Instant::now();
    let mut dropped = vec![0u64; targets];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let slot = i / targets as u64;
        let scheduled = start + interval.mul_f64(slot as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let target = ((i + slot) % targets as u64) as usize;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dropped[target] += 1;
            continue;
        };
        let tally = tallies[target].clone();
        let request = client
            .post(&opts.url[target])
            .bearer_auth(&opts.token)
            .header("content-type", "application/json")
            .body(opts.body.clone());
        tasks.spawn(async move {
            let sent = request.send().await;
            let ok = match sent {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            let mut tally = tally.lock();
            if ok {
                tally
                    .latencies_us
                    .push(scheduled.elapsed().as_micros() as u64);
            } else {
                tally.errors += 1;
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    for (target, tally) in tallies.iter().enumerate() {
        let mut tally = tally.lock();
        report(target, &mut tally, dropped[target], elapsed);
    }
    Ok(())
}

/// Prints one target's line: counts, achieved rate and latency percentiles.
fn report(target: usize, tally: &mut Tally, dropped: u64, elapsed: f64) {
    tally.latencies_us.sort_unstable();
    let n = tally.latencies_us.len();
    let pct = |q: f64| {
        if n == 0 {
            return 0.0;
        }
        tally.latencies_us[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0
    };
    println!(
        "target={target} ok={n} errors={} dropped={dropped} achieved_rps={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3}",
        tally.errors,
        n as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
}
