//! The statistics' memory over a simulated soak, without the network: what `bench/harness-memory.sh` measures,
//! minus connections and request buffers.
//!
//! Replays the harness's once-per-second cycle — `W` worker recorders drained into a fresh delta, merged into
//! the run totals, a per-name latency histogram per interval, the interval closed — for `SECONDS` simulated
//! seconds at `RATE` outcomes per second over `NAMES` failing request names, with heavy-tailed latencies (most
//! around 1 ms, one in 2000 up to 30 s), and prints the process RSS after one simulated minute (or at the end of a shorter run) and at the end.
//!
//! ```text
//! cargo run --release -p bench-tools --bin soak_memory -- [NAMES] [SECONDS] [RATE] [WORKERS]
//! ```

use std::time::{Duration, SystemTime};

use load_stats::{LatencyHistogram, Outcome, OutcomeResult, Recorder, RunStats, StatsDelta};

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (names, seconds, rate, workers) = (arg(1, 500), arg(2, 1800), arg(3, 2000), arg(4, 2));
    let names: Vec<String> = (1..=names).map(|i| format!("models {i}")).collect();
    let mut recorders: Vec<Recorder> = (0..workers).map(|_| Recorder::new()).collect();
    let t0 = SystemTime::now();
    let mut run = RunStats::new(t0);
    let mut latencies = Latencies(0x9E37_79B9_7F4A_7C15);
    let warm = seconds.min(60);
    let mut after_warm_up = 0;
    for second in 1..=seconds {
        for i in 0..rate {
            let outcome = Outcome {
                name: &names[(i % names.len() as u64) as usize],
                method: "GET",
                result: OutcomeResult::Status(200),
                success: false,
                latency: latencies.next(),
                bytes: 100,
                stream: None,
            };
            recorders[(i % workers) as usize].record(&outcome);
        }
        interval(&mut recorders, &mut run, t0 + Duration::from_secs(second));
        if second == warm {
            after_warm_up = rss_kib();
        }
    }
    let end = rss_kib();
    println!(
        "{} names, {seconds} s at {rate}/s, {workers} recorders: RSS after {warm} s {:.1} MiB, at the end {:.1} MiB, \
         growth {:.2} MiB; histograms of the totals {:.1} MiB",
        names.len(),
        after_warm_up as f64 / 1024.0,
        end as f64 / 1024.0,
        (end as f64 - after_warm_up as f64) / 1024.0,
        run.totals().histogram_bytes() as f64 / (1024.0 * 1024.0),
    );
}

/// One tick of the harness's run loop (engine take, run merge, per-name interval latency, close).
fn interval(recorders: &mut [Recorder], run: &mut RunStats, at: SystemTime) {
    let mut delta = StatsDelta::new();
    for recorder in recorders.iter_mut() {
        recorder.drain_into(&mut delta);
    }
    run.merge(&delta);
    let mut latency = LatencyHistogram::new();
    for request in &delta.requests {
        latency.add(&request.latency());
    }
    run.close_interval(at, 0);
}

/// Heavy-tailed latencies from a xorshift generator: 0.5-1.5 ms, one in 2000 stretched up to 20 000x.
struct Latencies(u64);

impl Latencies {
    fn next(&mut self) -> Duration {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let base = 500 + x % 1000;
        let stretch = if (x >> 20).is_multiple_of(2000) {
            1 + (x >> 32) % 20_000
        } else {
            1
        };
        Duration::from_micros(base * stretch)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
