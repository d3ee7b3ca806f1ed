//! Capacity check used by `bench/mock-vs-nginx.sh`: hold N concurrent streaming (or hanging) requests open
//! against a running mock while probing `GET /v1/models` latency from a separate thread, and report the
//! mock's peak RSS, its CPU per SSE frame and how late frames arrive (gaps between a stream's frames against
//! the configured inter-token delay). Loopback only; bounded by `--hold` and `--streams`.
//!
//! The thread holding the streams runs at a lower OS priority (`renice`) than the probe thread, so that
//! when both share a core the probe measures the mock, not this client's own backlog of stream reads.
//!
//! `cargo run --release -p bench-tools --bin open_streams -- --url http://127.0.0.1:PORT --pid PID --streams 10000 --hold 20s`

use clap::Parser;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    /// Mock address, e.g. 127.0.0.1:8080 (http:// prefix accepted).
    #[arg(long)]
    url: String,
    /// PID of the mock, for RSS sampling.
    #[arg(long)]
    pid: u32,
    /// Concurrent requests to hold open.
    #[arg(long, default_value_t = 10_000)]
    streams: u32,
    /// How long to hold them.
    #[arg(long, default_value = "20s", value_parser = human_duration::parse)]
    hold: Duration,
    /// Request path body kind: `stream` (chat completion SSE) or `hang` (sends `x-mock-fault: hang`).
    #[arg(long, default_value = "stream")]
    mode: String,
    /// The mock's configured inter-token delay (only for reporting lateness).
    #[arg(long, default_value = "50ms", value_parser = human_duration::parse)]
    inter_token: Duration,
}

struct Counters {
    opened: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    /// SSE frames received (each ends with a blank line, `\n\n`).
    frames: AtomicU64,
    /// Streams that got no token frame before the hold ended.
    no_token: AtomicU64,
    /// Set while the probe runs: only then are frame gaps recorded.
    measuring: AtomicBool,
    /// Time between consecutive frames of one stream, in microseconds (frames that arrive in one read,
    /// sent together, count as zero gaps).
    frame_gaps: Mutex<Histogram<u64>>,
    /// How far each stream is behind its schedule when the hold ends, in microseconds.
    lag_at_end: Mutex<Histogram<u64>>,
    /// The mock's inter-token delay, to know each stream's schedule.
    inter_token: Duration,
}

impl Counters {
    fn new(inter_token: Duration) -> anyhow::Result<Self> {
        Ok(Counters {
            opened: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            no_token: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            frame_gaps: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
            lag_at_end: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
            inter_token,
        })
    }

    /// `frames` frames arrived in one read, `gap` after the stream's previous frame.
    fn record_gaps(&self, gap: Duration, frames: u64) {
        if self.measuring.load(Ordering::Relaxed) {
            let mut gaps = self.frame_gaps.lock();
            gaps.saturating_record(gap.as_micros() as u64);
            gaps.saturating_record_n(0, frames.saturating_sub(1));
        }
    }

    /// A stream's first token frame arrived at `first_token`, its last at `last`, `tokens` token frames in
    /// all: how far the last one was behind the schedule of one token per inter-token delay.
    fn record_lag(&self, first_token: Instant, last: Instant, tokens: u64) {
        let on_schedule = self.inter_token * tokens.saturating_sub(1) as u32;
        let lag = (last - first_token).saturating_sub(on_schedule);
        let mut lags = self.lag_at_end.lock();
        lags.saturating_record(lag.as_micros() as u64);
    }
}

/// Count SSE frame ends (`\n\n`) across reads; `previous` carries the last byte of the previous read.
fn frame_ends(previous: &mut u8, bytes: &[u8]) -> u64 {
    let mut ends = 0;
    for &byte in bytes {
        ends += u64::from(byte == b'\n' && *previous == b'\n');
        *previous = byte;
    }
    ends
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr: SocketAddr = args
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let counters = Arc::new(Counters::new(args.inter_token)?);
    let deadline = Instant::now() + args.hold;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let holder = {
        let counters = Arc::clone(&counters);
        let (streams, mode) = (args.streams, args.mode.clone());
        std::thread::spawn(move || {
            lower_own_priority();
            runtime.block_on(hold_streams(addr, streams, mode, deadline, counters))
        })
    };
    // Probe once the requests are open (or after a third of the hold), so it measures the steady state.
    let ramp_deadline = Instant::now() + args.hold / 3;
    while counters.opened.load(Ordering::Relaxed) < u64::from(args.streams)
        && Instant::now() < ramp_deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (cpu_before, probe_started) = (cpu_seconds(args.pid), Instant::now());
    let own_cpu_before = cpu_seconds(std::process::id());
    let frames_before = counters.frames.load(Ordering::Relaxed);
    counters.measuring.store(true, Ordering::Relaxed);
    let (latencies, peak_rss_kb) = probe_models(addr, args.pid, deadline)?;
    counters.measuring.store(false, Ordering::Relaxed);
    let seconds = probe_started.elapsed().as_secs_f64();
    let cpu_cores = (cpu_seconds(args.pid) - cpu_before) / seconds;
    let own_cpu_cores = (cpu_seconds(std::process::id()) - own_cpu_before) / seconds;
    let frames_per_sec = (counters.frames.load(Ordering::Relaxed) - frames_before) as f64 / seconds;
    let _ = holder.join();
    report(&args, &counters, latencies, peak_rss_kb);
    println!("mock_cpu_while_probing={cpu_cores:.2} cores (if far below the machine's idle capacity, the mock was starved)");
    println!("client_cpu_while_probing={own_cpu_cores:.2} cores (near 1: this client is saturated, and frame lateness below includes its own)");
    if frames_per_sec > 0.0 {
        println!(
            "sse_frames_per_sec={frames_per_sec:.0} mock_us_per_frame={:.2}",
            cpu_cores * 1e6 / frames_per_sec
        );
        report_gaps(&args, &counters);
    }
    Ok(())
}

/// Frame lateness as the client saw it: the gap between two reads of one stream that completed frames,
/// against the configured inter-token delay (frames played late stretch the gaps; bursts shorten some).
fn report_gaps(args: &Args, counters: &Counters) {
    let gaps = counters.frame_gaps.lock();
    let lags = counters.lag_at_end.lock();
    // p50, p99 and max in milliseconds of a microsecond histogram.
    let ms = |h: &Histogram<u64>| {
        let at = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        (at(0.5), at(0.99), h.max() as f64 / 1e3)
    };
    let (p50, p99, max) = ms(&gaps);
    println!(
        "frame_gap n={} p50={p50:.1}ms p99={p99:.1}ms max={max:.1}ms (inter-token {} ms; due {:.0} frames/s)",
        gaps.len(),
        args.inter_token.as_millis(),
        f64::from(args.streams) / args.inter_token.as_secs_f64().max(1e-6)
    );
    let (p50, p99, max) = ms(&lags);
    println!(
        "behind_schedule streams={} p50={p50:.0}ms p99={p99:.0}ms max={max:.0}ms no_token_yet={} (each stream's last frame against its 1-token-per-inter-token schedule)",
        lags.len(),
        counters.no_token.load(Ordering::Relaxed)
    );
}

/// Run this thread at nice 10 (via `renice` on its thread id), below the probe thread.
fn lower_own_priority() {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| {
            link.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        });
    let reniced = tid.is_some_and(|tid| {
        std::process::Command::new("renice")
            .args(["-n", "10", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    if !reniced {
        eprintln!("open_streams: could not renice the stream thread; probe latency may include client delays");
    }
}

async fn hold_streams(
    addr: SocketAddr,
    streams: u32,
    mode: String,
    deadline: Instant,
    counters: Arc<Counters>,
) {
    let body = r#"{"model":"gpt-4","messages":[{"role":"user","content":"hold"}],"max_tokens":4000,"stream":true}"#;
    let fault = if mode == "hang" {
        "x-mock-fault: hang\r\n"
    } else {
        ""
    };
    let request = Arc::new(format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer sk-bench\r\n{fault}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..streams {
        if index % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(25)).await; // ramp: stay under the accept backlog
        }
        let (request, counters) = (Arc::clone(&request), Arc::clone(&counters));
        tasks.spawn(async move {
            if hold_one(addr, &request, deadline, &counters).await.is_err() {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn hold_one(
    addr: SocketAddr,
    request: &str,
    deadline: Instant,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    counters.opened.fetch_add(1, Ordering::Relaxed);
    let mut buffer = vec![0u8; 2048];
    let mut previous = 0;
    let mut last_frame: Option<Instant> = None;
    // The preamble (role) frame, then token frames: the schedule starts at the first token frame.
    let (mut frames, mut first_token) = (0u64, None);
    let until = tokio::time::Instant::from_std(deadline);
    // Until the deadline, checked after every read too: a read that is always ready would otherwise keep
    // a starved client reading past it.
    while Instant::now() < deadline {
        match tokio::time::timeout_at(until, stream.read(&mut buffer)).await {
            Err(_) => break,
            Ok(Ok(0)) => return Err(std::io::Error::other("closed before the hold ended")),
            Ok(Ok(n)) => {
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let ends = frame_ends(&mut previous, &buffer[..n]);
                if ends > 0 {
                    let now = Instant::now();
                    if let Some(last) = last_frame.replace(now) {
                        counters.record_gaps(now - last, ends);
                    }
                    frames += ends;
                    if frames >= 2 && first_token.is_none() {
                        first_token = Some(now);
                    }
                }
                counters.frames.fetch_add(ends, Ordering::Relaxed);
            }
            Ok(Err(err)) => return Err(err),
        };
    }
    match (first_token, last_frame) {
        (Some(first_token), Some(last)) => counters.record_lag(first_token, last, frames - 1),
        _ => {
            counters.no_token.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Sequential `GET /v1/models` on one keep-alive connection every 10 ms; also samples the mock's RSS.
fn probe_models(
    addr: SocketAddr,
    pid: u32,
    deadline: Instant,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let request =
        b"GET /v1/models HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer sk-probe\r\n\r\n";
    let (mut latencies, mut peak_rss_kb) = (Vec::new(), 0);
    let mut buffer = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        let started = Instant::now();
        stream.write_all(request)?;
        read_one_response(&mut stream, &mut buffer)?;
        latencies.push(started.elapsed());
        peak_rss_kb = peak_rss_kb.max(rss_kb(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((latencies, peak_rss_kb))
}

fn read_one_response(stream: &mut std::net::TcpStream, buffer: &mut [u8]) -> anyhow::Result<()> {
    let mut received = 0;
    loop {
        let n = stream.read(&mut buffer[received..])?;
        anyhow::ensure!(n > 0, "probe connection closed");
        received += n;
        let text = String::from_utf8_lossy(&buffer[..received]);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(());
            }
        }
    }
}

/// utime + stime of a process, in seconds (assumes the usual 100 clock ticks per second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn report(args: &Args, counters: &Counters, mut latencies: Vec<Duration>, peak_rss_kb: u64) {
    latencies.sort();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "mode={} streams_requested={} opened={} failed={}",
        args.mode,
        args.streams,
        counters.opened.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed)
    );
    println!(
        "stream_bytes_received={}",
        counters.bytes.load(Ordering::Relaxed)
    );
    println!(
        "models_probe n={} p50={:.2}ms p99={:.2}ms max={:.2}ms",
        latencies.len(),
        quantile(0.5).as_secs_f64() * 1e3,
        quantile(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!("mock_peak_rss_mb={:.1}", peak_rss_kb as f64 / 1024.0);
}
