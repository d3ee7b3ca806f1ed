//! Recovery: after a fault window ends (or load drops after a peak), how long until the proxy is back to how it
//! was before — success rate and p95 both at the pre-fault baseline, and staying there.
//!
//! The baseline is the **median** of the intervals before the fault (robust to a slow first interval of
//! warm-up or a single GC pause), with tolerances: success rate may be a little lower, p95 a factor higher plus
//! a small absolute slack (a 2 ms baseline p95 would otherwise make 3 ms a failure). Recovery needs
//! `stable_intervals` healthy intervals in a row, so a lucky single second does not count. Intervals without
//! requests carry no evidence and are skipped. Not recovering within the run is a result, not an error.

use crate::serde_units::{millis, optional_millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One interval of the run's history (usually one second).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalPoint {
    /// When the interval ended, from the start of the load.
    #[serde(rename = "end_ms", with = "millis")]
    pub end: Duration,
    /// Client requests completed in the interval.
    pub requests: u64,
    /// Successful share of them (0..=1).
    pub success_rate: f64,
    /// 95th percentile latency of the interval; `None` when nothing was measured.
    #[serde(rename = "p95_ms", default, with = "optional_millis")]
    pub p95: Option<Duration>,
}

/// How close to the baseline counts as recovered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryTolerance {
    /// How far below the baseline success rate an interval may be (absolute, e.g. 0.02 = 2 points).
    pub success_rate_drop: f64,
    /// How many times the baseline p95 an interval's p95 may be.
    pub p95_factor: f64,
    /// Absolute slack added to the allowed p95.
    #[serde(rename = "p95_slack_ms", with = "millis")]
    pub p95_slack: Duration,
    /// Healthy intervals in a row that make a recovery.
    pub stable_intervals: usize,
}

impl Default for RecoveryTolerance {
    fn default() -> Self {
        RecoveryTolerance {
            success_rate_drop: 0.02,
            p95_factor: 1.5,
            p95_slack: Duration::from_millis(5),
            stable_intervals: 2,
        }
    }
}

/// The pre-fault reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Median success rate of the pre-fault intervals.
    pub success_rate: f64,
    /// Median p95 of the pre-fault intervals.
    #[serde(rename = "p95_ms", with = "millis")]
    pub p95: Duration,
    /// How many intervals it was computed from.
    pub intervals: usize,
}

/// What happened after the fault.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// Back to baseline this long after `from` (end of the first interval of the healthy streak).
    Recovered {
        /// Time to recover.
        #[serde(rename = "after_ms", with = "millis")]
        after: Duration,
    },
    /// Not back to baseline by the end of the series.
    NotRecovered {
        /// How long after `from` the series was observed.
        #[serde(rename = "observed_ms", with = "millis")]
        observed: Duration,
    },
    /// No measured interval before the fault, so there is nothing to recover to.
    NoBaseline,
}

/// Recovery after one fault window or load peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Which window or peak.
    pub label: String,
    /// When recovery was measured from (window end or load drop), from the start of the load.
    #[serde(rename = "from_ms", with = "millis")]
    pub from: Duration,
    /// The pre-fault baseline.
    pub baseline: Option<Baseline>,
    /// The result.
    pub outcome: RecoveryOutcome,
}

/// Median success rate and p95 of the measured intervals that ended by `fault_start`.
pub fn baseline(series: &[IntervalPoint], fault_start: Duration) -> Option<Baseline> {
    let before: Vec<&IntervalPoint> = series
        .iter()
        .filter(|p| p.end <= fault_start && p.requests > 0)
        .collect();
    let mut rates: Vec<f64> = before.iter().map(|p| p.success_rate).collect();
    let mut p95s: Vec<Duration> = before.iter().filter_map(|p| p.p95).collect();
    rates.sort_by(f64::total_cmp);
    p95s.sort();
    Some(Baseline {
        success_rate: *median(&rates)?,
        p95: *median(&p95s)?,
        intervals: before.len(),
    })
}

/// The middle element (the upper one for an even count: the cautious side for both rates and latencies).
fn median<T>(sorted: &[T]) -> Option<&T> {
    sorted.get(sorted.len() / 2)
}

/// Whether an interval is as good as the baseline within `tolerance`.
fn is_healthy(point: &IntervalPoint, baseline: &Baseline, tolerance: &RecoveryTolerance) -> bool {
    let allowed_p95 = baseline.p95.mul_f64(tolerance.p95_factor.max(1.0)) + tolerance.p95_slack;
    point.success_rate >= baseline.success_rate - tolerance.success_rate_drop
        && point.p95.is_some_and(|p95| p95 <= allowed_p95)
}

/// Recovery from `from` (a fault window's end, or [`load_drop_after_peak`]) against the baseline of the intervals
/// that ended by `fault_start` (the window's start, or when the ramp to the load peak began).
pub fn recovery(
    label: &str,
    series: &[IntervalPoint],
    fault_start: Duration,
    from: Duration,
    tolerance: &RecoveryTolerance,
) -> Recovery {
    let baseline = baseline(series, fault_start);
    let outcome = match &baseline {
        None => RecoveryOutcome::NoBaseline,
        Some(baseline) => first_stable_recovery(series, from, baseline, tolerance),
    };
    Recovery {
        label: label.to_string(),
        from,
        baseline,
        outcome,
    }
}

fn first_stable_recovery(
    series: &[IntervalPoint],
    from: Duration,
    baseline: &Baseline,
    tolerance: &RecoveryTolerance,
) -> RecoveryOutcome {
    let after: Vec<&IntervalPoint> = series
        .iter()
        .filter(|p| p.end > from && p.requests > 0)
        .collect();
    let needed = tolerance.stable_intervals.max(1);
    let mut streak_start: Option<&IntervalPoint> = None;
    let mut streak = 0;
    for point in &after {
        if is_healthy(point, baseline, tolerance) {
            streak_start = streak_start.or(Some(point));
            streak += 1;
            if streak >= needed {
                let first = streak_start.map_or(point.end, |p| p.end);
                return RecoveryOutcome::Recovered {
                    after: first.saturating_sub(from),
                };
            }
        } else {
            (streak_start, streak) = (None, 0);
        }
    }
    let last = series.last().map_or(from, |p| p.end);
    RecoveryOutcome::NotRecovered {
        observed: last.saturating_sub(from),
    }
}

/// When load dropped after its peak: the first sample after the (last) maximum with fewer users than the
/// maximum. `samples` are `(time, users)` in time order; `None` when load never dropped.
pub fn load_drop_after_peak(samples: &[(Duration, u32)]) -> Option<Duration> {
    let peak = samples.iter().map(|(_, users)| *users).max()?;
    let last_peak = samples.iter().rposition(|(_, users)| *users == peak)?;
    samples[last_peak..]
        .iter()
        .find(|(_, users)| *users < peak)
        .map(|(at, _)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// One point per second from `(success rate, p95 ms)` pairs; a negative p95 means "no requests".
    fn series(points: &[(f64, i64)]) -> Vec<IntervalPoint> {
        points
            .iter()
            .enumerate()
            .map(|(i, (rate, p95))| IntervalPoint {
                end: s(i as u64 + 1),
                requests: if *p95 < 0 { 0 } else { 100 },
                success_rate: *rate,
                p95: u64::try_from(*p95).ok().map(Duration::from_millis),
            })
            .collect()
    }

    #[test]
    fn baseline_is_the_median_of_measured_pre_fault_intervals() {
        // A slow warm-up second and an empty second do not move the median.
        let points = series(&[
            (1.0, 900),
            (1.0, 20),
            (-1.0, -1),
            (0.99, 22),
            (1.0, 21),
            (0.2, 3000),
        ]);
        let b = baseline(&points, s(5)).unwrap();
        assert_eq!(
            (b.success_rate, b.p95, b.intervals),
            (1.0, Duration::from_millis(22), 4)
        );
        assert_eq!(baseline(&points, s(0)), None);
    }

    #[test]
    fn recovery_table() {
        let tolerance = RecoveryTolerance::default();
        // Baseline: 4 healthy seconds (1.0, 20 ms); fault from 4 s to 6 s; recovery measured from 6 s.
        let healthy = [(1.0, 20); 4];
        let cases: [(&[(f64, i64)], RecoveryOutcome); 6] = [
            // Back immediately: the first two post-fault intervals (ending 7 s, 8 s) are healthy.
            (
                &[(0.5, 900), (0.5, 900), (1.0, 21), (1.0, 22), (1.0, 20)],
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Errors linger 2 s, then a lone good second, a relapse, then stable.
            (
                &[
                    (0.5, 900),
                    (0.5, 900),
                    (0.7, 25),
                    (0.9, 25),
                    (1.0, 20),
                    (0.5, 20),
                    (1.0, 20),
                    (1.0, 20),
                ],
                RecoveryOutcome::Recovered { after: s(5) },
            ),
            // Latency stays high (allowed: 20 × 1.5 + 5 = 35 ms).
            (
                &[(0.5, 900), (0.5, 900), (1.0, 36), (1.0, 40), (1.0, 50)],
                RecoveryOutcome::NotRecovered { observed: s(3) },
            ),
            // Within tolerance counts as recovered.
            (
                &[(0.5, 900), (0.5, 900), (0.985, 35), (0.99, 30)],
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Empty seconds are skipped, neither breaking nor making a streak.
            (
                &[(0.5, 900), (0.5, 900), (1.0, 20), (-1.0, -1), (1.0, 20)],
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Only one healthy interval before the run ends: not stable yet.
            (
                &[(0.5, 900), (0.5, 900), (0.1, 900), (1.0, 20)],
                RecoveryOutcome::NotRecovered { observed: s(2) },
            ),
        ];
        for (after_fault, expected) in cases {
            let points: Vec<(f64, i64)> = healthy.iter().chain(after_fault).copied().collect();
            let result = recovery("k2 outage", &series(&points), s(4), s(6), &tolerance);
            assert_eq!(result.outcome, expected, "{after_fault:?}");
        }
        let no_baseline = recovery(
            "x",
            &series(&[(0.0, 900), (1.0, 20)]),
            s(0),
            s(1),
            &tolerance,
        );
        assert_eq!(no_baseline.outcome, RecoveryOutcome::NoBaseline);
    }

    #[test]
    fn load_drop_table() {
        type Case<'a> = (&'a [(u64, u32)], Option<u64>);
        let cases: [Case; 5] = [
            (&[(0, 10), (1, 200), (2, 200), (3, 50), (4, 10)], Some(3)),
            (&[(0, 10), (1, 200), (2, 10), (3, 200), (4, 20)], Some(4)),
            (&[(0, 10), (1, 50), (2, 200)], None),
            (&[(0, 10)], None),
            (&[], None),
        ];
        for (samples, expected) in cases {
            let samples: Vec<(Duration, u32)> = samples.iter().map(|(t, u)| (s(*t), *u)).collect();
            assert_eq!(
                load_drop_after_peak(&samples),
                expected.map(s),
                "{samples:?}"
            );
        }
    }

    #[test]
    fn results_serialize_with_millisecond_numbers() {
        let result = recovery(
            "w",
            &series(&[(1.0, 20), (1.0, 20), (1.0, 20)]),
            s(1),
            s(1),
            &RecoveryTolerance::default(),
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["outcome"]["outcome"], "recovered");
        assert_eq!(json["outcome"]["after_ms"], 1000.0);
        assert_eq!(json["baseline"]["p95_ms"], 20.0);
        assert_eq!(serde_json::from_value::<Recovery>(json).unwrap(), result);
    }
}
