//! Verdicts per replica and for the total across them, when the series holds several replicas (remote sources).
//!
//! Each replica's series is judged by [`analyze`] exactly as a single process would be, and so is the total (the
//! replicas summed at each tick), so the leak math exists once. Two things only a fleet has are decided here,
//! purely from the series: a replica that **restarted** (its start time changed, see
//! [`crate::source::replicas`]) and a replica that **disappeared** (no sample for more than `max_gap_intervals`
//! while others were still answering) are CRASHED, naming the replica. A replica that stopped answering for a
//! while and came back has a gap in its series, judged INVALID as any sampling gap.

use super::{analyze, LeakConfig, LeakReport, ReplicaReport};
use crate::monitor::{ResourceSeries, Sample};

/// The name of the summed series in reasons.
pub const TOTAL: &str = "total";

/// One series per replica (in order of first appearance), each with its own restart or disappearance as its
/// exit. A series without replica names (older files) is one replica.
pub fn split_by_replica(
    series: &ResourceSeries,
    max_gap_intervals: f64,
) -> Vec<(String, ResourceSeries)> {
    let mut names: Vec<&str> = Vec::new();
    for sample in &series.samples {
        if !names.contains(&sample.replica.as_str()) {
            names.push(&sample.replica);
        }
    }
    let last_answer = series.samples.last().map_or(0.0, |s| s.t_secs);
    let allowed_silence = max_gap_intervals * series.interval_secs;
    names
        .into_iter()
        .map(|name| {
            let mut part = ResourceSeries {
                samples: series.samples.iter().filter(|s| s.replica == name).cloned().collect(),
                replica_restarts: series
                    .replica_restarts
                    .iter()
                    .filter(|r| r.replica == name)
                    .cloned()
                    .collect(),
                ..ResourceSeries::new(series.root_pid, std::time::Duration::ZERO)
            };
            part.interval_secs = series.interval_secs;
            part.unavailable_columns = series.unavailable_columns.clone();
            part.exited_at_secs = series.exited_at_secs;
            part.exit_reason = series.exit_reason.clone();
            let last_own = part.samples.last().map_or(0.0, |s| s.t_secs);
            if let Some(restart) = part.replica_restarts.first() {
                part.exited_at_secs = Some(restart.at_secs);
                part.exit_reason = Some(format!(
                    "replica {name} restarted: its process start time changed from {:.0} to {:.0} (seen {:.1} s after monitoring started)",
                    restart.previous_start_unix_secs, restart.new_start_unix_secs, restart.at_secs
                ));
            } else if last_answer - last_own > allowed_silence {
                part.exited_at_secs = Some(last_own);
                part.exit_reason = Some(format!(
                    "replica {name} disappeared: no answer after {last_own:.1} s while other replicas answered until {last_answer:.1} s"
                ));
            }
            (name.to_string(), part)
        })
        .collect()
}

/// The replicas summed at each tick where every replica that was present then (between its first and last
/// sample) answered; other ticks are left out, so a failed scrape is a gap in the total too.
pub fn total_across_replicas(
    series: &ResourceSeries,
    replicas: &[(String, ResourceSeries)],
) -> ResourceSeries {
    let span = |part: &ResourceSeries| {
        let first = part.samples.first().map_or(f64::INFINITY, |s| s.t_secs);
        (
            first,
            part.samples.last().map_or(f64::NEG_INFINITY, |s| s.t_secs),
        )
    };
    let spans: Vec<(f64, f64)> = replicas.iter().map(|(_, part)| span(part)).collect();
    let mut total = ResourceSeries {
        samples: Vec::new(),
        ..series.clone()
    };
    total.replica_restarts.clear();
    for tick in series.samples.chunk_by(|a, b| a.t_secs == b.t_secs) {
        let t = tick[0].t_secs;
        let present = spans
            .iter()
            .filter(|(first, last)| *first <= t && t <= *last)
            .count();
        if tick.len() == present {
            total.samples.push(sum_of_tick(tick));
        }
    }
    total
}

/// One tick's samples (one per replica, at least one) summed into one, named [`TOTAL`].
pub fn sum_of_tick(tick: &[Sample]) -> Sample {
    let mut total = Sample {
        replica: TOTAL.into(),
        ..tick[0].clone()
    };
    for s in &tick[1..] {
        total.processes += s.processes;
        total.rss_bytes += s.rss_bytes;
        total.rss_anon_bytes += s.rss_anon_bytes;
        total.vsize_bytes += s.vsize_bytes;
        total.cpu_percent += s.cpu_percent;
        total.threads += s.threads;
        total.fds += s.fds;
        total.socket_fds += s.socket_fds;
        total.tcp_sockets += s.tcp_sockets;
        total.tcp_established += s.tcp_established;
        total.tcp_close_wait += s.tcp_close_wait;
        total.tcp_listen += s.tcp_listen;
        total.tcp_other += s.tcp_other;
    }
    total
}

/// Judges every replica and the total. With one replica the report is that replica's, as [`analyze`] gives it.
/// With several, the report's metrics are the total's, its verdict the worst of the total's and every
/// replica's (CRASHED, INVALID, LEAK, GROWTH, INCONCLUSIVE, PASS), its reasons the total's and each replica's
/// prefixed with the replica's name, and `replicas` holds each replica's full report.
pub fn analyze_replicas(series: &ResourceSeries, config: &LeakConfig) -> LeakReport {
    let parts = split_by_replica(series, config.max_gap_intervals);
    if parts.len() <= 1 {
        return parts.first().map_or_else(
            || analyze(series, config),
            |(_, part)| analyze(part, config),
        );
    }
    let mut report = analyze(&total_across_replicas(series, &parts), config);
    report.reasons = report
        .reasons
        .into_iter()
        .map(|r| format!("{TOTAL}: {r}"))
        .collect();
    for (replica, part) in &parts {
        let own = analyze(part, config);
        if own.verdict.severity() > report.verdict.severity() {
            report.verdict = own.verdict;
        }
        report.reasons.extend(
            own.reasons
                .iter()
                .filter(|r| !r.ends_with(super::NOT_AVAILABLE))
                .map(|r| format!("replica {replica}: {r}")),
        );
        report.replicas.push(ReplicaReport {
            replica: replica.clone(),
            report: own,
        });
    }
    if let Some(first) = report.reasons.first_mut() {
        if let Some(stripped) = first.strip_prefix(&format!("{TOTAL}: ")) {
            if stripped.ends_with(super::NOT_AVAILABLE) {
                *first = stripped.to_string();
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::synthetic::sample;
    use crate::leak::Verdict;
    use crate::monitor::{Phase, ReplicaRestart};

    const MIB: f64 = 1024.0 * 1024.0;

    /// Replicas `a`, `b`, `c` sampled every second for `secs` (warm-up the first 10 s); `rss(replica, t)` gives
    /// the memory, `None` = no answer at that tick.
    fn fleet(secs: usize, rss: impl Fn(&str, f64) -> Option<f64>) -> ResourceSeries {
        let mut series = ResourceSeries::new(0, std::time::Duration::from_secs(1));
        for i in 0..secs {
            let t = i as f64;
            let phase = if t < 10.0 {
                Phase::WarmUp
            } else {
                Phase::Steady
            };
            for name in ["a", "b", "c"] {
                if let Some(level) = rss(name, t) {
                    let mut s = sample(t, phase, level, 20, 5, 8);
                    s.replica = name.into();
                    series.samples.push(s);
                }
            }
        }
        series
    }

    fn verdicts(report: &LeakReport) -> Vec<(String, Verdict)> {
        report
            .replicas
            .iter()
            .map(|r| (r.replica.clone(), r.report.verdict))
            .collect()
    }

    fn flat(t: f64) -> f64 {
        // Deterministic wobble so the trend test has ties broken, not a constant.
        50.0 * MIB + ((t * 7.0) % 5.0) * 1024.0
    }

    #[test]
    fn each_replica_gets_its_own_verdict_and_the_total_its_own() {
        type Case = (
            &'static str,
            fn(&str, f64) -> Option<f64>,
            Verdict,
            [Verdict; 3],
        );
        let cases: [Case; 3] = [
            (
                "all flat",
                |_, t| Some(flat(t)),
                Verdict::Pass,
                [Verdict::Pass; 3],
            ),
            (
                "a and b keep 1 MiB/s",
                |r, t| Some(flat(t) + if r == "c" { 0.0 } else { t * MIB }),
                Verdict::Leak,
                [Verdict::Leak, Verdict::Leak, Verdict::Pass],
            ),
            (
                "c stops answering at 40 s",
                |r, t| (r != "c" || t < 40.0).then(|| flat(t)),
                Verdict::Crashed,
                [Verdict::Pass, Verdict::Pass, Verdict::Crashed],
            ),
        ];
        for (name, rss, overall, per_replica) in cases {
            let report = analyze_replicas(&fleet(90, rss), &LeakConfig::default());
            assert_eq!(report.verdict, overall, "{name}: {:?}", report.reasons);
            let want: Vec<(String, Verdict)> = ["a", "b", "c"]
                .iter()
                .map(|r| r.to_string())
                .zip(per_replica)
                .collect();
            assert_eq!(verdicts(&report), want, "{name}: {:?}", report.reasons);
        }
    }

    #[test]
    fn restarts_crash_and_gaps_invalidate_the_named_replica() {
        let mut restarted = fleet(90, |_, t| Some(flat(t)));
        restarted.replica_restarts.push(ReplicaRestart {
            replica: "b".into(),
            at_secs: 50.0,
            previous_start_unix_secs: 1000.0,
            new_start_unix_secs: 1049.0,
        });
        let gap = fleet(90, |r, t| {
            (r != "a" || !(30.0..40.0).contains(&t)).then(|| flat(t))
        });
        let cases = [
            (
                &restarted,
                Verdict::Crashed,
                "b",
                Verdict::Crashed,
                "replica b: replica b restarted",
            ),
            (
                &gap,
                Verdict::Invalid,
                "a",
                Verdict::Invalid,
                "replica a: 1 sampling gap(s)",
            ),
        ];
        for (series, overall, replica, replica_verdict, reason) in cases {
            let report = analyze_replicas(series, &LeakConfig::default());
            assert_eq!(report.verdict, overall, "{:?}", report.reasons);
            let own = report
                .replicas
                .iter()
                .find(|r| r.replica == replica)
                .expect(replica);
            assert_eq!(own.report.verdict, replica_verdict);
            assert!(
                report.reasons.iter().any(|r| r.starts_with(reason)),
                "{reason}: {:?}",
                report.reasons
            );
        }
    }

    #[test]
    fn the_total_sums_only_ticks_where_every_present_replica_answered() {
        let series = fleet(5, |r, t| (r != "a" || t != 2.0).then_some(MIB));
        let parts = split_by_replica(&series, 3.0);
        let total = total_across_replicas(&series, &parts);
        let got: Vec<(f64, u64)> = total
            .samples
            .iter()
            .map(|s| (s.t_secs, s.rss_bytes))
            .collect();
        let m = MIB as u64;
        assert_eq!(
            got,
            [(0.0, 3 * m), (1.0, 3 * m), (3.0, 3 * m), (4.0, 3 * m)]
        );
    }

    #[test]
    fn one_replica_is_judged_as_before() {
        let series = fleet(90, |r, t| (r == "a").then(|| flat(t)));
        let report = analyze_replicas(&series, &LeakConfig::default());
        assert!(report.replicas.is_empty());
        assert_eq!(report, analyze(&series, &LeakConfig::default()));
    }
}
