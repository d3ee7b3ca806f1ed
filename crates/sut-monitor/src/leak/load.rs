//! "Load not steady": a precondition of a memory LEAK.
//!
//! A healthy proxy's memory follows its open connections: every connection holds buffers, and an allocator keeps
//! the pages of a burst. When the box slows down (or the load generator falls behind and fires its backlog), an
//! open-model load piles up concurrent connections, and the proxy's RSS rises with them — to the end of the
//! window if the slowdown lasts. For a memory-only trend test that is indistinguishable from a leak: on a loaded
//! 2-core box, 4 of 11 clean 10-minute runs were judged LEAK that way (sockets ~10 → 55–132 from the second to
//! the last quarter, RSS +3–4.7 MiB; `sut-monitor/README.md`, "Sensitivity on real processes").
//!
//! So a memory LEAK is only given when the load was steady: when the open sockets (fds when the series has no
//! socket counts) in the last quarter of the steady window are far above the second quarter's — both more than
//! `ratio` × and at least `min_rise` more (calibrated defaults in [`LoadSteadiness`]) — the memory verdict is
//! INCONCLUSIVE instead, naming both figures. Never PASS: a real leak may hide under the shift. Except when the
//! memory was already leaking while the load was steady: the stretch of the steady window before the connections
//! rose ([`steady_until`]) is judged alone with the same rules, and a LEAK there stands (on the recorded runs
//! this kept the 384 and 512 KiB/min leaks of the slowed-down batch). A socket leak itself is judged by the
//! sockets/fds GROWTH verdict, which this check does not touch.

use serde::{Deserialize, Serialize};

use super::series::{phase_points, quarter, Metric};
use super::stats::median;
use crate::monitor::{Phase, ResourceSeries};

/// When the open connections count as "not steady".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSteadiness {
    /// The last-quarter median of open sockets must exceed this multiple of the second-quarter median...
    pub ratio: f64,
    /// ...and be at least this many sockets above it.
    pub min_rise: f64,
}

impl Default for LoadSteadiness {
    /// 2× and +20 sockets. Calibrated on the recorded 10-minute runs at 50 req/s: a healthy proxy's
    /// quarter-to-quarter socket medians wandered within ±15 (10 ↔ 25) on a busy box, while every false LEAK had
    /// 5–13× and +45 or more. Both conditions are needed: 2× of a 3-socket idle pool is noise, and +20 on a
    /// 500-connection pool is too.
    fn default() -> Self {
        Self {
            ratio: 2.0,
            min_rise: 20.0,
        }
    }
}

/// A material rise of the open connections towards the end of the steady window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadShift {
    /// The count that rose: [`Metric::Sockets`], or [`Metric::Fds`] when no socket was ever counted.
    pub metric: Metric,
    /// Median of the second quarter of the steady window.
    pub earlier: f64,
    /// Median of the last quarter.
    pub final_quarter: f64,
}

impl LoadShift {
    /// The rise with both figures: "open sockets rose from 12 to 96 in the final quarter".
    pub fn describe(&self) -> String {
        let what = match self.metric {
            Metric::Fds => "open fds",
            _ => "open sockets",
        };
        format!(
            "{what} rose from {:.0} to {:.0} in the final quarter",
            self.earlier, self.final_quarter
        )
    }

    /// Why a memory rise is not judged a leak, with both figures and what to do.
    pub fn reason(&self) -> String {
        format!(
            "{}; memory that follows connections is not a leak until load is steady — rerun at a steady load / \
             lower rate",
            self.describe()
        )
    }
}

/// The rise of open connections in the steady window's last quarter over its second, when it exceeds `limits`.
pub fn load_shift(series: &ResourceSeries, limits: &LoadSteadiness) -> Option<LoadShift> {
    let (metric, points) = connection_points(series);
    shift_in(metric, &points, limits)
}

/// The steady window's open sockets, or its fds when no socket was ever counted.
fn connection_points(series: &ResourceSeries) -> (Metric, Vec<(f64, f64)>) {
    let sockets = phase_points(series, Metric::Sockets, Phase::Steady);
    if sockets.iter().any(|p| p.1 > 0.0) {
        (Metric::Sockets, sockets)
    } else {
        (
            Metric::Fds,
            phase_points(series, Metric::Fds, Phase::Steady),
        )
    }
}

fn shift_in(metric: Metric, points: &[(f64, f64)], limits: &LoadSteadiness) -> Option<LoadShift> {
    let quarter_median = |q| median(&quarter(points, q).iter().map(|p| p.1).collect::<Vec<_>>());
    let (earlier, final_quarter) = (quarter_median(1)?, quarter_median(3)?);
    let shifted =
        final_quarter > limits.ratio * earlier && final_quarter - earlier >= limits.min_rise;
    shifted.then_some(LoadShift {
        metric,
        earlier,
        final_quarter,
    })
}

/// When the load was still steady: the time of the first sample from the third quarter on whose connections are
/// over halfway from the second-quarter level to the shift's threshold — provided the steady window up to then
/// shows no shift of its own. `None` when there is no such steady stretch. A real leak already visible before
/// the load rose can then still be judged on that stretch alone (see [`super::analyze`]).
pub fn steady_until(
    series: &ResourceSeries,
    shift: &LoadShift,
    limits: &LoadSteadiness,
) -> Option<f64> {
    let (metric, points) = connection_points(series);
    let threshold = (limits.ratio * shift.earlier).max(shift.earlier + limits.min_rise);
    let bar = (shift.earlier + threshold) / 2.0;
    let third_quarter = quarter(&points, 2).first()?.0;
    let onset = points.iter().find(|p| p.0 >= third_quarter && p.1 > bar)?.0;
    let before: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 < onset).collect();
    shift_in(metric, &before, limits).is_none().then_some(onset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::synthetic::{build, Run};

    /// A 10-minute run (2 min warm-up, 8 min steady) whose sockets are `q2` in the first three quarters of the
    /// steady window and `q4` in the last; fds = sockets + 9 unless `fds_only`.
    fn run_with_sockets(q2: u64, q4: u64, fds_only: bool) -> ResourceSeries {
        let run = Run::TEN_MINUTES;
        let rss = vec![64.0 * 1024.0 * 1024.0; run.len()];
        let counts = move |t: f64| {
            let sockets = if t >= (run.warmup + run.steady * 3 / 4) as f64 {
                q4
            } else {
                q2
            };
            (sockets + 9, if fds_only { 0 } else { sockets }, 8)
        };
        build(run, &rss, counts, &mut crate::leak::synthetic::rng(1))
    }

    #[test]
    fn shift_needs_both_the_ratio_and_the_absolute_rise() {
        // (q2 sockets, q4 sockets, fds only, expected (metric, earlier, final) or None)
        let cases = [
            (10, 96, false, Some((Metric::Sockets, 10.0, 96.0))),
            (10, 55, false, Some((Metric::Sockets, 10.0, 55.0))),
            (10, 30, false, Some((Metric::Sockets, 10.0, 30.0))),
            (10, 25, false, None),   // +15: breathing
            (3, 12, false, None),    // 4× of a tiny pool
            (400, 500, false, None), // +100 on a big pool
            (20, 20, false, None),
            (60, 10, false, None), // falling is not a shift
            (10, 96, true, Some((Metric::Fds, 19.0, 105.0))),
        ];
        for (q2, q4, fds_only, want) in cases {
            let got = load_shift(
                &run_with_sockets(q2, q4, fds_only),
                &LoadSteadiness::default(),
            )
            .map(|s| (s.metric, s.earlier, s.final_quarter));
            assert_eq!(got, want, "sockets {q2} -> {q4}, fds only {fds_only}");
        }
    }

    #[test]
    fn reason_names_both_figures() {
        let shift = LoadShift {
            metric: Metric::Sockets,
            earlier: 12.0,
            final_quarter: 96.0,
        };
        let reason = shift.reason();
        assert!(
            reason.starts_with("open sockets rose from 12 to 96 in the final quarter"),
            "{reason}"
        );
        assert!(reason.contains("steady load"), "{reason}");
    }

    #[test]
    fn steady_stretch_ends_where_the_connections_rose() {
        // Sockets 10, then from t = 480 (the last steady quarter) 96.
        let limits = LoadSteadiness::default();
        let series = run_with_sockets(10, 96, false);
        let shift = load_shift(&series, &limits).expect("shift");
        let onset = steady_until(&series, &shift, &limits).expect("steady stretch");
        assert!((480.0..481.0).contains(&onset), "{onset}");
        // Connections climbing all along (0 -> 200 over the steady window): no steady stretch before the onset.
        let mut climbing = series.clone();
        for s in &mut climbing.samples {
            s.socket_fds = ((s.t_secs - 120.0) / 2.4).max(0.0) as u64;
        }
        let shift = load_shift(&climbing, &limits).expect("shift");
        assert_eq!(steady_until(&climbing, &shift, &limits), None);
    }

    #[test]
    fn empty_series_has_no_shift() {
        let series = ResourceSeries::new(1, std::time::Duration::from_secs(1));
        assert_eq!(load_shift(&series, &LoadSteadiness::default()), None);
    }
}
