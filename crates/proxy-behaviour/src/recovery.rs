//! Recovery: after a fault window ends (or load drops after a peak), how long until the proxy is back to how it
//! was before — success rate and p95 both at the pre-fault baseline, and staying there.
//!
//! One second of latency is a few hundred requests near a proxy's capacity, and its p95 swings by several times
//! from one second to the next; judging recovery on single seconds against one median second flips between PASS
//! and FAIL on reruns of a correct proxy. So every figure here comes from **merged histograms** of several
//! seconds (each second's latency histogram is kept packed, see [`IntervalPoint::latency`]):
//! - **Baseline**: the last [`RecoveryTolerance::baseline_intervals`] measured seconds that ended by the fault's
//!   start (the load's first second — connection set-up — left out when others remain): merged success rate and
//!   merged p95, plus the spread of their per-second p95s (the middle 80 %: the lowest and highest tenth of the
//!   seconds are left out, at least the extremes when there are ten or more).
//! - **Tolerance**: allowed p95 = max(`p95_factor` × merged baseline p95, the highest per-second p95 of that
//!   middle range) + `p95_slack`; allowed success rate = baseline − `success_rate_drop`. A baseline whose own
//!   seconds reached some p95 is not a failure when the seconds after the fault reach it too.
//! - **Recovered** at the first measured second after the fault from which `stable_windows` back-to-back
//!   windows of `window_intervals` measured seconds each, merged, are all within tolerance. Time to recover is
//!   the end of that first second minus the fault's end.
//! - **INCONCLUSIVE** (never FAIL) when the baseline cannot be judged against: fewer than
//!   `min_baseline_requests` requests, or per-second p95s too far apart (the middle range's high above
//!   `max_baseline_spread` × its low + `p95_slack`: 8-57 ms seconds are, 10-20 ms are not) — with the reason in
//!   words.
//! - **Not recovered** when no such streak starts in the observed seconds; the result says how late a recovery
//!   could still have been confirmed (`confirmable`), so a run too short after the fault is told apart from a
//!   proxy that stayed broken.
//!
//! Seconds without requests carry no evidence and are skipped.

use crate::serde_units::{millis, optional_millis};
use load_stats::{LatencyHistogram, PackedHistogram};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One interval of the run's history (usually one second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The interval's latency histogram, packed (merged over windows by the recovery verdict); `None` when it
    /// was not kept. Not serialized.
    #[serde(skip)]
    pub latency: Option<PackedHistogram>,
}

/// How close to the baseline counts as recovered, and when a baseline is too unsteady to judge against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryTolerance {
    /// How far below the baseline success rate a window may be (absolute, e.g. 0.02 = 2 points).
    pub success_rate_drop: f64,
    /// How many times the merged baseline p95 a window's merged p95 may be.
    pub p95_factor: f64,
    /// Absolute slack added to the allowed p95 (and to the spread limit).
    #[serde(rename = "p95_slack_ms", with = "millis")]
    pub p95_slack: Duration,
    /// Measured seconds merged into one post-fault window.
    pub window_intervals: usize,
    /// Back-to-back healthy windows that make a recovery.
    pub stable_windows: usize,
    /// Most pre-fault seconds (the last ones) in the baseline.
    pub baseline_intervals: usize,
    /// Fewest requests in the baseline for it to be judged against.
    pub min_baseline_requests: u64,
    /// How far apart the baseline's per-second p95s may be for it to be steady enough to judge against: the
    /// middle range's high may be at most this many times its low, plus `p95_slack`.
    pub max_baseline_spread: f64,
}

impl Default for RecoveryTolerance {
    fn default() -> Self {
        RecoveryTolerance {
            success_rate_drop: 0.02,
            p95_factor: 1.5,
            p95_slack: Duration::from_millis(5),
            window_intervals: 3,
            stable_windows: 2,
            baseline_intervals: 10,
            min_baseline_requests: 100,
            max_baseline_spread: 4.0,
        }
    }
}

impl RecoveryTolerance {
    /// Measured seconds a recovery needs after its start to be confirmed.
    pub fn evidence_intervals(&self) -> usize {
        self.window_intervals.max(1) * self.stable_windows.max(1)
    }
}

/// The pre-fault reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Success rate of all the baseline's requests.
    pub success_rate: f64,
    /// p95 of the baseline's merged histogram.
    #[serde(rename = "p95_ms", with = "millis")]
    pub p95: Duration,
    /// Lowest per-second p95 of the baseline.
    #[serde(rename = "second_p95_min_ms", with = "millis")]
    pub second_p95_min: Duration,
    /// Highest per-second p95 of the baseline.
    #[serde(rename = "second_p95_max_ms", with = "millis")]
    pub second_p95_max: Duration,
    /// Low end of the per-second p95s' middle range.
    #[serde(rename = "second_p95_low_ms", with = "millis")]
    pub second_p95_low: Duration,
    /// High end of the per-second p95s' middle range.
    #[serde(rename = "second_p95_high_ms", with = "millis")]
    pub second_p95_high: Duration,
    /// The p95 a post-fault window may have (see the module docs).
    #[serde(rename = "allowed_p95_ms", with = "millis")]
    pub allowed_p95: Duration,
    /// Requests in the baseline.
    pub requests: u64,
    /// How many seconds it was computed from.
    pub intervals: usize,
}

/// What happened after the fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecoveryOutcome {
    /// Back to baseline this long after `from` (end of the first second of the healthy streak).
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
        /// The latest recovery (after `from`) the observed seconds could have confirmed; zero when too few
        /// seconds were observed to confirm any.
        #[serde(rename = "confirmable_ms", with = "millis")]
        confirmable: Duration,
    },
    /// No measured interval before the fault, so there is nothing to recover to.
    NoBaseline,
    /// The baseline cannot be judged against (too unsteady, too few requests, no histograms); `reason` says why.
    Inconclusive {
        /// One line for people.
        reason: String,
    },
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

/// Requests, successes and merged latency of a run of seconds.
struct Merged {
    requests: u64,
    successes: f64,
    latency: LatencyHistogram,
}

impl Merged {
    /// Merges `points`; `Err` when a second with requests has no latency histogram.
    fn of(points: &[&IntervalPoint]) -> Result<Merged, String> {
        let mut merged = Merged {
            requests: 0,
            successes: 0.0,
            latency: LatencyHistogram::aggregate(),
        };
        for point in points {
            let packed = point.latency.as_ref().ok_or_else(|| {
                format!(
                    "no latency histogram kept for the second ending at {:.0} s",
                    point.end.as_secs_f64()
                )
            })?;
            merged.latency.add(&packed.unpack()?);
            merged.requests += point.requests;
            merged.successes += point.success_rate * point.requests as f64;
        }
        Ok(merged)
    }

    fn success_rate(&self) -> f64 {
        if self.requests == 0 {
            1.0
        } else {
            self.successes / self.requests as f64
        }
    }

    fn p95(&self) -> Option<Duration> {
        self.latency.quantile_us(0.95).map(Duration::from_micros)
    }
}

/// The measured seconds of the baseline: the last `baseline_intervals` that ended by `fault_start`, without the
/// load's first second when others remain.
fn baseline_points<'a>(
    series: &'a [IntervalPoint],
    fault_start: Duration,
    tolerance: &RecoveryTolerance,
) -> Vec<&'a IntervalPoint> {
    let first_end = series.first().map(|p| p.end);
    let mut before: Vec<&IntervalPoint> = series
        .iter()
        .filter(|p| p.end <= fault_start && p.requests > 0 && p.p95.is_some())
        .collect();
    if before.len() > 1 && Some(before[0].end) == first_end {
        before.remove(0);
    }
    let keep = tolerance.baseline_intervals.max(1);
    before.split_off(before.len().saturating_sub(keep))
}

/// The baseline of the seconds before `fault_start`: `None` without any measured second, `Err` (with the
/// baseline when it could be computed) when it cannot be judged against.
pub fn baseline(
    series: &[IntervalPoint],
    fault_start: Duration,
    tolerance: &RecoveryTolerance,
) -> Option<Result<Baseline, (Option<Baseline>, String)>> {
    let points = baseline_points(series, fault_start, tolerance);
    if points.is_empty() {
        return None;
    }
    let merged = match Merged::of(&points) {
        Ok(merged) => merged,
        Err(reason) => return Some(Err((None, reason))),
    };
    let mut p95s: Vec<Duration> = points.iter().filter_map(|p| p.p95).collect();
    p95s.sort();
    let trim = p95s.len() / 10;
    let (low, high) = (p95s[trim], p95s[p95s.len() - 1 - trim]);
    let p95 = merged.p95().unwrap_or_default();
    let baseline = Baseline {
        success_rate: merged.success_rate(),
        p95,
        second_p95_min: p95s[0],
        second_p95_max: p95s[p95s.len() - 1],
        second_p95_low: low,
        second_p95_high: high,
        allowed_p95: p95.mul_f64(tolerance.p95_factor.max(1.0)).max(high) + tolerance.p95_slack,
        requests: merged.requests,
        intervals: points.len(),
    };
    Some(match unjudgeable(&baseline, tolerance) {
        Some(reason) => Err((Some(baseline), reason)),
        None => Ok(baseline),
    })
}

/// Why a baseline cannot be judged against, if it cannot.
fn unjudgeable(baseline: &Baseline, tolerance: &RecoveryTolerance) -> Option<String> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if baseline.requests < tolerance.min_baseline_requests {
        return Some(format!(
            "baseline had only {} requests over {} s (at least {} needed to judge recovery)",
            baseline.requests, baseline.intervals, tolerance.min_baseline_requests
        ));
    }
    let spread_limit = baseline
        .second_p95_low
        .mul_f64(tolerance.max_baseline_spread.max(1.0))
        + tolerance.p95_slack;
    (baseline.second_p95_high > spread_limit).then(|| {
        format!(
            "baseline p95 ranged {:.0}-{:.0} ms over {} s (middle range {:.0}-{:.0} ms, more than {}x apart): \
             too unsteady to judge recovery against",
            ms(baseline.second_p95_min),
            ms(baseline.second_p95_max),
            baseline.intervals,
            ms(baseline.second_p95_low),
            ms(baseline.second_p95_high),
            tolerance.max_baseline_spread
        )
    })
}

/// Recovery from `from` (a fault window's end, or [`load_drop_after_peak`]) against the baseline of the seconds
/// that ended by `fault_start` (the window's start, or when the ramp to the load peak began).
pub fn recovery(
    label: &str,
    series: &[IntervalPoint],
    fault_start: Duration,
    from: Duration,
    tolerance: &RecoveryTolerance,
) -> Recovery {
    let (baseline, outcome) = match baseline(series, fault_start, tolerance) {
        None => (None, RecoveryOutcome::NoBaseline),
        Some(Err((baseline, reason))) => (baseline, RecoveryOutcome::Inconclusive { reason }),
        Some(Ok(baseline)) => (
            Some(baseline),
            first_stable_recovery(series, from, &baseline, tolerance),
        ),
    };
    Recovery {
        label: label.to_string(),
        from,
        baseline,
        outcome,
    }
}

/// Whether the merged seconds are as good as the baseline within the tolerance.
fn is_healthy(
    window: &[&IntervalPoint],
    baseline: &Baseline,
    tolerance: &RecoveryTolerance,
) -> Result<bool, String> {
    let merged = Merged::of(window)?;
    Ok(
        merged.success_rate() >= baseline.success_rate - tolerance.success_rate_drop
            && merged.p95().is_some_and(|p95| p95 <= baseline.allowed_p95),
    )
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
    let width = tolerance.window_intervals.max(1);
    let needed = tolerance.evidence_intervals();
    let last_start = (after.len() + 1).checked_sub(needed);
    for start in 0..last_start.unwrap_or(0) {
        let streak = (0..tolerance.stable_windows.max(1)).map(|k| {
            let first = start + k * width;
            is_healthy(&after[first..first + width], baseline, tolerance)
        });
        match streak
            .collect::<Result<Vec<bool>, String>>()
            .map(|w| w.iter().all(|h| *h))
        {
            Ok(true) => {
                return RecoveryOutcome::Recovered {
                    after: after[start].end.saturating_sub(from),
                }
            }
            Ok(false) => {}
            Err(reason) => return RecoveryOutcome::Inconclusive { reason },
        }
    }
    let last = series.last().map_or(from, |p| p.end);
    RecoveryOutcome::NotRecovered {
        observed: last.saturating_sub(from),
        confirmable: last_start
            .filter(|n| *n > 0)
            .map_or(Duration::ZERO, |n| after[n - 1].end.saturating_sub(from)),
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

    /// One second of `requests` requests whose p95 is `p95_ms`: 90 % of them at half that, 10 % at it.
    fn second(end: u64, requests: u64, success_rate: f64, p95_ms: f64) -> IntervalPoint {
        let mut latency = LatencyHistogram::aggregate();
        let p95_us = (p95_ms * 1000.0) as u64;
        for i in 0..requests {
            latency.record_us(if i % 10 == 0 { p95_us } else { p95_us / 2 });
        }
        IntervalPoint {
            end: s(end),
            requests,
            success_rate,
            p95: latency.quantile_us(0.95).map(Duration::from_micros),
            latency: Some(latency.pack()),
        }
    }

    /// One point per second from `(success rate, p95 ms)` pairs; a negative p95 means "no requests".
    fn series(points: &[(f64, f64)]) -> Vec<IntervalPoint> {
        points
            .iter()
            .enumerate()
            .map(|(i, (rate, p95))| {
                let end = i as u64 + 1;
                if *p95 < 0.0 {
                    IntervalPoint {
                        end: s(end),
                        requests: 0,
                        success_rate: 1.0,
                        p95: None,
                        latency: None,
                    }
                } else {
                    second(end, 100, *rate, *p95)
                }
            })
            .collect()
    }

    /// A slow warm-up second, then ten steady seconds (1.0, 20 ms), then two fault seconds: the fault is from
    /// 11 s to 13 s.
    fn before_and_fault() -> Vec<(f64, f64)> {
        let mut points = vec![(1.0, 900.0)];
        points.extend([(1.0, 20.0); 10]);
        points.extend([(0.5, 900.0); 2]);
        points
    }

    #[test]
    fn baseline_merges_the_pre_fault_seconds_without_the_warm_up() {
        let mut points = before_and_fault();
        points.insert(4, (-1.0, -1.0));
        let tolerance = RecoveryTolerance::default();
        let b = baseline(&series(&points), s(12), &tolerance)
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.success_rate, b.p95, b.intervals, b.requests),
            (1.0, Duration::from_millis(20), 10, 1000)
        );
        // 1.5 × 20 ms + 5 ms.
        assert_eq!(b.allowed_p95, Duration::from_millis(35));
        assert_eq!(baseline(&series(&points), s(0), &tolerance), None);
    }

    const NOISY: [(f64, f64); 10] = [
        (1.0, 8.0),
        (1.0, 10.0),
        (1.0, 12.0),
        (1.0, 12.0),
        (1.0, 13.0),
        (1.0, 14.0),
        (1.0, 15.0),
        (1.0, 18.0),
        (1.0, 20.0),
        (1.0, 25.0),
    ];
    const UNSTEADY: [(f64, f64); 10] = [
        (1.0, 12.0),
        (1.0, 8.0),
        (1.0, 57.0),
        (1.0, 11.0),
        (1.0, 9.0),
        (1.0, 45.0),
        (1.0, 12.5),
        (1.0, 30.0),
        (1.0, 13.0),
        (1.0, 18.0),
    ];

    #[test]
    fn recovery_table() {
        let tolerance = RecoveryTolerance::default();
        let steady = [(1.0, 20.0); 10];
        let not_recovered = |observed, confirmable| RecoveryOutcome::NotRecovered {
            observed: s(observed),
            confirmable: s(confirmable),
        };
        // (pre-fault seconds after the warm-up, seconds after the fault ended at 13 s, expected outcome)
        let slow: Vec<(f64, f64)> = [(1.0, 200.0); 15]
            .into_iter()
            .chain([(1.0, 20.0); 6])
            .collect();
        type Case<'a> = (&'a [(f64, f64)], Vec<(f64, f64)>, RecoveryOutcome);
        let cases: Vec<Case> = vec![
            // Back immediately: six steady seconds from the first one after the fault.
            (
                &steady,
                vec![(1.0, 20.0); 6],
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // A real slow recovery: 15 s at 10x the baseline p95, then steady. Takes 16 s (a FAIL at 5 s).
            (&steady, slow, RecoveryOutcome::Recovered { after: s(16) }),
            // Latency stays high (allowed 1.5 × 20 + 5 = 35 ms).
            (&steady, vec![(1.0, 40.0); 10], not_recovered(10, 5)),
            // Errors linger: a window holding the 0.5 second is below 0.98 merged; from the third second on
            // every window is clean.
            (
                &steady,
                [(1.0, 20.0), (0.5, 20.0)]
                    .into_iter()
                    .chain([(1.0, 20.0); 7])
                    .collect(),
                RecoveryOutcome::Recovered { after: s(3) },
            ),
            // Within tolerance counts as recovered.
            (
                &steady,
                vec![(0.985, 35.0); 6],
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Empty seconds are skipped, neither breaking nor making a streak.
            (
                &steady,
                [(1.0, 20.0), (-1.0, -1.0)]
                    .into_iter()
                    .chain([(1.0, 20.0); 5])
                    .collect(),
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Too few seconds after the fault to confirm anything: not recovered, nothing confirmable.
            (&steady, vec![(1.0, 20.0); 3], not_recovered(3, 0)),
            // A noisy but steady-enough baseline (8-25 ms per second, merged 14 ms): allowed is its middle
            // range's high (20 ms) + 5 ms, so seconds after the fault that look like the ones before pass,
            // where a median second (13 ms × 1.5 + 5 ms) would have failed on the 25 ms seconds.
            (
                &NOISY,
                [25.0, 8.0, 20.0, 12.0, 18.0, 10.0, 15.0, 13.0]
                    .map(|p| (1.0, p))
                    .to_vec(),
                RecoveryOutcome::Recovered { after: s(1) },
            ),
            // Replay of an unsteady baseline near capacity: its seconds ranged 8-57 ms; judging recovery
            // against it would be a coin toss, so it is inconclusive, never a failure.
            (
                &UNSTEADY,
                vec![(1.0, 40.0); 10],
                RecoveryOutcome::Inconclusive {
                    reason:
                        "baseline p95 ranged 8-57 ms over 10 s (middle range 9-45 ms, more than 4x \
                             apart): too unsteady to judge recovery against"
                            .into(),
                },
            ),
        ];
        for (before, after_fault, expected) in cases {
            let mut points = vec![(1.0, 900.0)];
            points.extend_from_slice(before);
            points.extend([(0.5, 900.0); 2]);
            points.extend(after_fault.iter().copied());
            let result = recovery("k2 outage", &series(&points), s(11), s(13), &tolerance);
            assert_eq!(result.outcome, expected, "{before:?} then {after_fault:?}");
        }
        let no_baseline = recovery(
            "x",
            &series(&[(0.0, 900.0), (1.0, 20.0)]),
            s(0),
            s(1),
            &tolerance,
        );
        assert_eq!(no_baseline.outcome, RecoveryOutcome::NoBaseline);
    }

    #[test]
    fn thin_or_histogramless_baselines_are_inconclusive() {
        let tolerance = RecoveryTolerance::default();
        let thin: Vec<IntervalPoint> = (1..=20).map(|t| second(t, 5, 1.0, 20.0)).collect();
        let result = recovery("thin", &thin, s(11), s(13), &tolerance);
        assert_eq!(
            result.outcome,
            RecoveryOutcome::Inconclusive {
                reason: "baseline had only 50 requests over 10 s (at least 100 needed to judge recovery)"
                    .into()
            }
        );
        let mut bare = series(&before_and_fault());
        bare[5].latency = None;
        let result = recovery("bare", &bare, s(11), s(13), &tolerance);
        assert!(
            matches!(&result.outcome, RecoveryOutcome::Inconclusive { reason } if reason.contains("ending at 6 s")),
            "{result:?}"
        );
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
        let mut points = before_and_fault();
        points.extend([(1.0, 20.0); 6]);
        let result = recovery(
            "w",
            &series(&points),
            s(11),
            s(13),
            &RecoveryTolerance::default(),
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["outcome"]["outcome"], "recovered");
        assert_eq!(json["outcome"]["after_ms"], 1000.0);
        assert_eq!(json["baseline"]["p95_ms"], 20.0);
        assert_eq!(json["baseline"]["allowed_p95_ms"], 35.0);
        assert_eq!(serde_json::from_value::<Recovery>(json).unwrap(), result);
    }
}
