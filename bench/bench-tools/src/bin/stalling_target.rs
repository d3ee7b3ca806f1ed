//! A tiny HTTP/1 target for `bench/open-model-accuracy.sh`: answers every request at once with `200 ok`, or,
//! with `--stall-every`, stops answering for `--stall-for` at the start of each such period — a request that
//! arrives during a stall is held until the stall ends. Stalls start `--stall-phase` after the target starts, so a
//! run started with the target does not begin or end inside one.
//!
//! Why a target of its own: the open-model accuracy check needs a server whose latency is known exactly — about
//! the loopback round trip when it answers, and a stall whose effect on the percentiles follows from arithmetic
//! (a 1 s stall every 10 s holds 10 % of evenly spaced arrivals for 1 s down to 0 s: p95 500 ms, p99 900 ms).
//!
//! `cargo run --release -p bench-tools --bin stalling_target -- --port 18090 --stall-every 10s --stall-for 1s`

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Stalling HTTP target.
#[derive(Parser)]
struct Opts {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 18090)]
    port: u16,
    /// Period of the stalls (none without it).
    #[arg(long, value_parser = human_duration::parse)]
    stall_every: Option<Duration>,
    /// How long each stall lasts.
    #[arg(long, default_value = "1s", value_parser = human_duration::parse)]
    stall_for: Duration,
    /// When the first stall starts, after the target's start.
    #[arg(long, default_value = "5s", value_parser = human_duration::parse)]
    stall_phase: Duration,
}

/// The stall schedule: `stall` long, every `every`, the first `phase` after the start.
#[derive(Clone, Copy)]
struct Stalls {
    every: Option<Duration>,
    stall: Duration,
    phase: Duration,
}

impl Stalls {
    /// When a request arriving `since_start` after the target started may be answered: at once, or at the end
    /// of the stall it arrived in.
    fn answer_at(self, since_start: Duration) -> Duration {
        let Some(every) = self.every.filter(|e| !e.is_zero()) else {
            return since_start;
        };
        let Some(since_first) = since_start.checked_sub(self.phase) else {
            return since_start;
        };
        let into_period = Duration::from_nanos((since_first.as_nanos() % every.as_nanos()) as u64);
        if into_period < self.stall {
            since_start + (self.stall - into_period)
        } else {
            since_start
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
    let started = Instant::now();
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let stalls = Stalls {
            every: opts.stall_every,
            stall: opts.stall_for,
            phase: opts.stall_phase,
        };
        tokio::spawn(async move {
            let service = service_fn(move |_request| async move {
                let at = stalls.answer_at(started.elapsed());
                tokio::time::sleep_until(started + at).await;
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_a_stall_wait_for_its_end() {
        let ms = Duration::from_millis;
        let stalls = Stalls {
            every: Some(ms(10_000)),
            stall: ms(1000),
            phase: ms(5000),
        };
        // (arrival since start) -> answer at
        let cases = [
            (ms(0), ms(0)),
            (ms(4999), ms(4999)),
            (ms(5000), ms(6000)),
            (ms(5400), ms(6000)),
            (ms(6000), ms(6000)),
            (ms(10_000), ms(10_000)),
            (ms(15_100), ms(16_000)),
            (ms(24_999), ms(24_999)),
        ];
        for (arrival, want) in cases {
            assert_eq!(stalls.answer_at(arrival), want, "{arrival:?}");
        }
        let never = Stalls {
            every: None,
            ..stalls
        };
        assert_eq!(never.answer_at(ms(5400)), ms(5400));
    }
}
