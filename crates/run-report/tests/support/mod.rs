//! A results directory built from real data: load-stats' Recorder/RunStats/writers produce `summary.json` and
//! the Locust history, sut-monitor's CSV writer and leak analysis produce `resources.csv` and the leak report,
//! and run-report's own writer produces `timeline.csv`. The traffic is synthetic (deterministic pseudo-random),
//! with a rate-limit fault window during which 429s, 500s and latency rise.

#![allow(dead_code)]

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use load_stats::locust::HistoryCsvWriter;
use load_stats::summary::Summary;
use load_stats::thresholds::{evaluate_run, Thresholds};
use load_stats::{ErrorClass, Outcome, OutcomeResult, Recorder, RunStats, StreamTiming};
use run_report::input::timeline::{self, FaultWindow};
use sut_monitor::leak::{analyze, LeakConfig};
use sut_monitor::monitor::{Phase, ResourceSeries, Sample};

/// Seconds of load in the fixture run.
pub const RUN_SECS: u64 = 60;
/// The fault window, seconds since start.
pub const FAULT: (f64, f64) = (20.0, 35.0);

/// Deterministic noise in [0, 1).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes a complete results directory into `dir` and returns its summary.
pub fn write_results_dir(dir: &Path) -> Summary {
    std::fs::create_dir_all(dir).unwrap();
    let t0 = SystemTime::now() - Duration::from_secs(RUN_SECS);
    let run = drive_run(dir, t0);
    let results = evaluate_run(&Thresholds::users_targets(), &run);
    let config = serde_json::json!({"name": "nightly-fixture", "seed": 42, "load": {"model": "closed", "users": 20}});
    let mut summary = Summary::from_run(&run, config, results);
    let leak = write_resources(dir, t0);
    summary.leak_report = serde_json::to_value(&leak).unwrap();
    summary.verdict = if summary.thresholds_passed {
        "PASS".into()
    } else {
        "FAIL".into()
    };
    summary.exit_code = if summary.thresholds_passed { 0 } else { 1 };
    summary.verdict_reasons = summary
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.detail.clone())
        .collect();
    summary.engine = engine_figures();
    summary
        .write_json(File::create(dir.join("summary.json")).unwrap())
        .unwrap();
    let windows = [FaultWindow {
        start_s: FAULT.0,
        end_s: Some(FAULT.1),
        label: "k2 rate_limit 100 %".into(),
    }];
    timeline::write(File::create(dir.join("timeline.csv")).unwrap(), &windows).unwrap();
    std::fs::write(dir.join("ledger.json"), LEDGER).unwrap();
    summary
}

/// Number of behaviour verdicts in the fixture, and how many failed.
pub const BEHAVIOUR_VERDICTS: (usize, usize) = (3, 1);

/// What the engine adds: proxy-behaviour verdicts (shape of `proxy_behaviour::BehaviourReport`) and its own figures.
fn engine_figures() -> serde_json::Value {
    serde_json::json!({
        "behaviour": {
            "measurements": {"distribution": {"total_requests": 5650, "fairness": 0.981, "keys": [
                {"key": "k1", "requests": 2100, "share": 0.372, "eligible": true},
                {"key": "k2", "requests": 1500, "share": 0.265, "eligible": true},
                {"key": "k3", "requests": 2050, "share": 0.363, "eligible": true}]}},
            "verdicts": [
                {"check": "fairness", "measured": 0.981, "limit": 0.9, "unit": "ratio", "outcome": "pass", "detail": "Jain's index 0.981 >= 0.9"},
                {"check": "retry_after", "measured": 3.0, "limit": 0.0, "unit": "count", "outcome": "fail", "detail": "3 requests ignored Retry-After (limit 0)"},
                {"check": "recovery", "subject": "k2 rate_limit", "measured": null, "limit": 10000.0, "unit": "ms", "outcome": "skipped", "detail": "no traffic after the window"}
            ]
        },
        "late_sends": 0
    })
}

const LEDGER: &str = r#"{"uptime_ms": 61000, "totals": {"requests": 0, "rate_limited": 0, "retry_after_violations": 0, "faults": 0},
 "keys": {"k1": {"total_requests": 2100, "rate_limited": 0, "retry_after_violations": 0, "faults": {}},
          "k2": {"total_requests": 1500, "rate_limited": 240, "retry_after_violations": 3, "retry_after_races": 17, "retry_window_depths": {"counts": [17, 1, 2, 0, 0, 0]}, "faults": {"rate_limit": 240}},
          "k3": {"total_requests": 2050, "rate_limited": 0, "retry_after_violations": 0, "faults": {}}}}"#;

fn drive_run(dir: &Path, t0: SystemTime) -> RunStats {
    let mut run = RunStats::new(t0);
    let mut history =
        HistoryCsvWriter::new(File::create(dir.join("results_stats_history.csv")).unwrap())
            .unwrap();
    let mut recorder = Recorder::new();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for second in 1..=RUN_SECS {
        let users = (second * 2).min(20) as u32;
        let in_fault = (FAULT.0..FAULT.1).contains(&(second as f64));
        let requests = users * 5 + (noise.next() * 12.0) as u32;
        for _ in 0..requests {
            record_one(&mut recorder, &mut noise, in_fault);
        }
        run.merge(&recorder.take());
        let row = run.close_interval(t0 + Duration::from_secs(second), users);
        history.write_row(&row).unwrap();
    }
    run
}

fn record_one(recorder: &mut Recorder, noise: &mut Noise, in_fault: bool) {
    let base = if in_fault { 60.0 } else { 18.0 };
    let latency = Duration::from_micros(((base + noise.next() * base) * 1000.0) as u64);
    let roll = noise.next();
    let streamed = roll < 0.4;
    let (result, success) = match roll {
        r if in_fault && r > 0.80 => (OutcomeResult::Status(429), false),
        r if in_fault && r > 0.77 => (OutcomeResult::Status(500), false),
        r if r > 0.997 => (
            OutcomeResult::Error(ErrorClass::Timeout, "no response within 30s"),
            false,
        ),
        _ => (OutcomeResult::Status(200), true),
    };
    let stream = streamed.then(|| StreamTiming {
        ttfb: latency / 4,
        ttft: Some(latency / 3),
        chunks: 12,
        max_gap: Duration::from_millis(4),
    });
    if streamed {
        recorder.record_chunk_gap("chat stream", Duration::from_millis(2));
    }
    let name = if streamed {
        "chat stream"
    } else {
        "chat basic"
    };
    recorder.record(&Outcome {
        name,
        method: "POST",
        result,
        success,
        latency,
        bytes: 420,
        stream,
    });
}

/// One sample per second from 5 s before the load to 5 s after, with a slow RSS rise during steady load.
fn write_resources(dir: &Path, t0: SystemTime) -> sut_monitor::leak::LeakReport {
    let start_ms = t0.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut noise = Noise(7);
    let samples: Vec<Sample> = (-5i64..=(RUN_SECS as i64 + 5))
        .map(|t| {
            let phase = match t {
                ..10 => Phase::WarmUp,
                10..=60 => Phase::Steady,
                _ => Phase::Drain,
            };
            let load = if (0..=60).contains(&t) { 1.0 } else { 0.0 };
            let rss = 38.0 * 1048576.0 + (t.max(0) as f64) * 20_000.0 + noise.next() * 300_000.0;
            Sample {
                unix_ms: (start_ms as i64 + t * 1000) as u64,
                t_secs: (t + 5) as f64,
                phase,
                processes: 1,
                rss_bytes: rss as u64,
                rss_anon_bytes: (rss * 0.6) as u64,
                vsize_bytes: 900 * 1048576,
                cpu_percent: 5.0 + load * (60.0 + noise.next() * 10.0),
                threads: 9,
                fds: 20 + (load * 40.0) as u64,
                tcp_sockets: 3 + (load * 40.0) as u64,
                socket_fds: 3 + (load * 40.0) as u64,
                tcp_established: (load * 40.0) as u64,
                tcp_close_wait: 0,
                tcp_listen: 2,
                tcp_other: 1,
                harness_rss_bytes: 30 * 1048576 + t.max(0) as u64 * 10_000,
                harness_cpu_percent: 20.0 * load + noise.next() * 3.0,
                monitor_cpu_percent: 0.2,
                replica: "proxy".into(),
            }
        })
        .collect();
    sut_monitor::resources_csv::write_samples(
        File::create(dir.join("resources.csv")).unwrap(),
        &samples,
    )
    .unwrap();
    let series = ResourceSeries {
        root_pid: 4242,
        interval_secs: 1.0,
        samples,
        exited_at_secs: None,
        unavailable_columns: Vec::new(),
        replica_restarts: Vec::new(),
        exit_reason: None,
    };
    analyze(&series, &LeakConfig::default())
}
