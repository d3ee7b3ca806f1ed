//! The readings of every replica at one tick → one [`Sample`] per replica that answered, and the restarts.
//!
//! Pure, so the rules are tested on tables rather than on live servers:
//! - a replica that did not answer (failed scrape, missing from Prometheus's answer) gets **no** sample at that
//!   tick — never zeros — so the hole shows in its timestamps and is judged like a `/proc` gap
//!   ([`crate::monitor::ResourceSeries::gaps_longer_than`]);
//! - a replica whose start time changed restarted: a [`ReplicaRestart`], which makes it CRASHED;
//! - CPU % comes from the CPU-seconds counter's deltas between two answers (a replica's first answer, or its
//!   first after a restart: its lifetime average, when its start time is known);
//! - gauges that no replica ever exported are listed as unavailable, as a platform's missing columns are.

use std::collections::{BTreeMap, BTreeSet};

use super::{Gauge, RemoteReading, REMOTE_UNAVAILABLE_COLUMNS};
use crate::monitor::{Phase, ReplicaRestart, Sample};

/// A start time that moved by more than this (seconds) is a new process.
const START_TIME_TOLERANCE_SECS: f64 = 1e-3;

/// What the replicas answered at one tick: a reading, or why there is none.
pub type TickReadings = BTreeMap<String, Result<RemoteReading, String>>;

/// When a tick happened, and the columns about the monitor itself (the same for every replica).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickContext {
    /// Seconds since the monitor started.
    pub t_secs: f64,
    /// Wall clock, ms since the Unix epoch.
    pub unix_ms: u64,
    /// The phase label.
    pub phase: Phase,
    /// The harness's RSS.
    pub harness_rss_bytes: u64,
    /// The harness's CPU %.
    pub harness_cpu_percent: f64,
    /// The sampling thread's CPU %.
    pub monitor_cpu_percent: f64,
}

/// What one tick produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickOutcome {
    /// One sample per replica that answered, in replica order.
    pub samples: Vec<Sample>,
    /// Replicas whose start time changed since their previous answer.
    pub restarts: Vec<ReplicaRestart>,
    /// Replicas that did not answer, and why.
    pub failures: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct ReplicaState {
    start_time: Option<f64>,
    /// (t_secs, CPU seconds) of the previous answer.
    last_cpu: Option<(f64, f64)>,
}

/// Follows every replica across ticks.
#[derive(Debug, Clone, Default)]
pub struct ReplicaTracker {
    replicas: BTreeMap<String, ReplicaState>,
    seen: BTreeSet<Gauge>,
}

impl ReplicaTracker {
    /// Turns one tick's readings into samples, noting restarts and failures.
    pub fn observe(&mut self, tick: TickContext, readings: &TickReadings) -> TickOutcome {
        let mut outcome = TickOutcome::default();
        for (replica, reading) in readings {
            match reading {
                Ok(reading) => {
                    let state = self.replicas.entry(replica.clone()).or_default();
                    if let Some(restart) = restart_of(replica, state, reading, tick.t_secs) {
                        outcome.restarts.push(restart);
                        state.last_cpu = None;
                    }
                    state.start_time = reading.get(Gauge::StartTime).or(state.start_time);
                    let cpu_percent = cpu_percent(state, reading, tick);
                    self.seen
                        .extend(Gauge::ALL.into_iter().filter(|&g| reading.get(g).is_some()));
                    outcome
                        .samples
                        .push(sample(replica, reading, cpu_percent, tick));
                }
                Err(why) => outcome.failures.push((replica.clone(), why.clone())),
            }
        }
        outcome
    }

    /// The replicas seen so far.
    pub fn replicas(&self) -> impl Iterator<Item = &String> {
        self.replicas.keys()
    }

    /// `resources.csv` columns not filled: what no remote source has, plus gauges no replica exported.
    pub fn unavailable_columns(&self) -> Vec<String> {
        let missing = Gauge::ALL
            .into_iter()
            .filter(|g| !self.seen.contains(g))
            .filter_map(Gauge::column);
        REMOTE_UNAVAILABLE_COLUMNS
            .iter()
            .copied()
            .chain(missing)
            .map(str::to_string)
            .collect()
    }
}

fn restart_of(
    replica: &str,
    state: &ReplicaState,
    reading: &RemoteReading,
    t_secs: f64,
) -> Option<ReplicaRestart> {
    let (before, now) = (state.start_time?, reading.get(Gauge::StartTime)?);
    ((now - before).abs() > START_TIME_TOLERANCE_SECS).then(|| ReplicaRestart {
        replica: replica.to_string(),
        at_secs: t_secs,
        previous_start_unix_secs: before,
        new_start_unix_secs: now,
    })
}

fn cpu_percent(state: &mut ReplicaState, reading: &RemoteReading, tick: TickContext) -> f64 {
    let Some(cpu) = reading.get(Gauge::CpuSeconds) else {
        return 0.0;
    };
    let previous = state.last_cpu.replace((tick.t_secs, cpu));
    match previous {
        Some((t0, cpu0)) if tick.t_secs > t0 && cpu >= cpu0 => {
            (cpu - cpu0) / (tick.t_secs - t0) * 100.0
        }
        _ => {
            let age = state
                .start_time
                .map(|start| tick.unix_ms as f64 / 1000.0 - start)
                .filter(|&age| age > 0.0);
            age.map_or(0.0, |age| cpu / age * 100.0)
        }
    }
}

fn sample(replica: &str, reading: &RemoteReading, cpu_percent: f64, tick: TickContext) -> Sample {
    let count = |gauge: Gauge| reading.get(gauge).map_or(0, |v| v.max(0.0).round() as u64);
    Sample {
        unix_ms: tick.unix_ms,
        t_secs: tick.t_secs,
        phase: tick.phase,
        processes: 1,
        rss_bytes: count(Gauge::Rss),
        rss_anon_bytes: 0,
        vsize_bytes: count(Gauge::Vsize),
        cpu_percent,
        threads: count(Gauge::Threads),
        fds: count(Gauge::OpenFds),
        socket_fds: 0,
        tcp_sockets: 0,
        tcp_established: 0,
        tcp_close_wait: 0,
        tcp_listen: 0,
        tcp_other: 0,
        harness_rss_bytes: tick.harness_rss_bytes,
        harness_cpu_percent: tick.harness_cpu_percent,
        monitor_cpu_percent: tick.monitor_cpu_percent,
        replica: replica.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(t_secs: f64) -> TickContext {
        TickContext {
            t_secs,
            unix_ms: 1_000_000 + (t_secs * 1000.0) as u64,
            phase: Phase::Steady,
            harness_rss_bytes: 0,
            harness_cpu_percent: 0.0,
            monitor_cpu_percent: 0.0,
        }
    }

    fn ok(rss: f64, cpu: f64, start: f64) -> Result<RemoteReading, String> {
        Ok(RemoteReading::of(&[
            (Gauge::Rss, rss),
            (Gauge::CpuSeconds, cpu),
            (Gauge::StartTime, start),
        ]))
    }

    /// (replica readings at t = 0, 1, 2, ...) → per tick: (replica, rss, cpu %) samples, restarted replicas,
    /// failed replicas.
    #[test]
    fn ticks_become_samples_restarts_and_gaps() {
        type Step = (
            Vec<(&'static str, Result<RemoteReading, String>)>,
            Vec<(&'static str, u64, f64)>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let steps: Vec<Step> = vec![
            // First answers: CPU % is the lifetime average (start time 990 s, now 1000 s: 1 s of CPU = 10 %).
            (
                vec![("a", ok(100.0, 1.0, 990.0)), ("b", ok(200.0, 0.0, 995.0))],
                vec![("a", 100, 10.0), ("b", 200, 0.0)],
                vec![],
                vec![],
            ),
            // Deltas: a used 0.5 s in 1 s; b failed: no sample, never a zero.
            (
                vec![
                    ("a", ok(110.0, 1.5, 990.0)),
                    ("b", Err("connection refused".into())),
                ],
                vec![("a", 110, 50.0)],
                vec![],
                vec!["b"],
            ),
            // b is back after a gap (delta over 2 s); a restarted: new start time, counter reset.
            (
                vec![("a", ok(50.0, 0.1, 1001.5)), ("b", ok(210.0, 1.0, 995.0))],
                vec![("a", 50, 0.1 / 0.5 * 100.0), ("b", 210, 50.0)],
                vec!["a"],
                vec![],
            ),
        ];
        let mut tracker = ReplicaTracker::default();
        for (t, (readings, want_samples, want_restarts, want_failures)) in
            steps.into_iter().enumerate()
        {
            let readings: TickReadings = readings
                .into_iter()
                .map(|(r, v)| (r.to_string(), v))
                .collect();
            let out = tracker.observe(tick(t as f64), &readings);
            let got: Vec<(&str, u64, f64)> = out
                .samples
                .iter()
                .map(|s| {
                    (
                        s.replica.as_str(),
                        s.rss_bytes,
                        (s.cpu_percent * 1000.0).round() / 1000.0,
                    )
                })
                .collect();
            assert_eq!(got, want_samples, "tick {t}");
            let restarted: Vec<&str> = out.restarts.iter().map(|r| r.replica.as_str()).collect();
            assert_eq!(restarted, want_restarts, "tick {t}");
            let failed: Vec<&str> = out.failures.iter().map(|f| f.0.as_str()).collect();
            assert_eq!(failed, want_failures, "tick {t}");
        }
    }

    #[test]
    fn gauges_never_exported_are_unavailable() {
        let mut tracker = ReplicaTracker::default();
        let readings: TickReadings = [(
            "a".to_string(),
            Ok(RemoteReading::of(&[
                (Gauge::Rss, 1.0),
                (Gauge::OpenFds, 3.0),
            ])),
        )]
        .into();
        tracker.observe(tick(0.0), &readings);
        let missing = tracker.unavailable_columns();
        for column in ["threads", "vsize_bytes", "rss_anon_bytes", "tcp_close_wait"] {
            assert!(missing.iter().any(|c| c == column), "{column}: {missing:?}");
        }
        for column in ["rss_bytes", "fds"] {
            assert!(
                !missing.iter().any(|c| c == column),
                "{column}: {missing:?}"
            );
        }
    }
}
