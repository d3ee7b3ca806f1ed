//! The per-metric trend verdict over the steady window.
//!
//! LEAK (memory) or GROWTH (counts) only when ALL hold:
//! 1. **significant**: Mann–Kendall one-sided p < `alpha`, variance corrected for autocorrelation (Hamed–Rao);
//! 2. **material**: Theil–Sen slope ≥ the limit (`max(abs, rel × baseline)` per hour) and the series grew by at
//!    least `min_growth` (last-quarter vs first-quarter medians);
//! 3. **still growing**: the rise from the third-quarter median to the last-quarter median, and from the
//!    second-quarter median to the last-quarter median, both per hour, are ≥ `end_rate_of_limit × limit` and
//!    ≥ `end_rate_of_slope × slope` (a linear leak rises at its slope to the end; a decelerating one does not) — a
//!    series that rose and levelled off (warm-up spilling into the window, a cache filling once, a one-time step)
//!    is not a leak. The final quarter's own Theil–Sen slope is reported too, but not used to decide: on a
//!    10-minute run with realistic noise it has a standard error of ~10 MiB/h (a quarter of the points over a
//!    quarter of the span: 8× the whole-window error), so it would miss real leaks; medians of whole quarters
//!    are far steadier and still tell a plateau from a ramp.
//!
//! PASS needs evidence too: either a significant trend that fails 2 or 3, or no significant trend with the upper
//! confidence bound of the slope below the limit (a leak at the limit is ruled out) — over the whole window or
//! over its last half (a one-time step followed by a long flat stretch) — or with even that upper bound unable
//! to produce `min_growth` within the observed window (nothing material could have happened in this run — the
//! report says which). Otherwise INCONCLUSIVE, with a rough steady duration that would suffice (slope
//! uncertainty shrinks like T^-3/2 at a fixed sampling rate).
//!
//! Memory is judged on cycle floors only when there are at least `min_cycles` of them; fewer (one burst released
//! in a few steps looks like three "collections") is judged on the samples, which still carry a usable slope,
//! rather than answering INCONCLUSIVE for lack of floors.
//!
//! Why Hamed–Rao instead of testing 30–60 s medians: binning to medians throws away resolution exactly when CI
//! runs are short (a 90 s run would keep 2–3 points), whereas the variance correction adapts to however much
//! autocorrelation the series actually has. Long series are still binned, but to bound the O(n²) cost
//! (`max_points`), not as the autocorrelation remedy.

use serde::{Deserialize, Serialize};

use super::config::LeakConfig;
use super::cycles::{find_cycles, Cycles};
use super::series::{bin_medians, quarter, Metric};
use super::stats::{median, robust_trend, theil_sen_slope};
use super::Verdict;

/// Which points the trend was judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Every steady sample.
    Samples,
    /// Medians of equal-width time bins (long series).
    BinMedians,
    /// The floors (lowest sample) of each cycle of a periodic series.
    CycleFloors,
    /// The peaks (highest sample) of each cycle of a periodic series.
    CyclePeaks,
}

/// The numbers behind a trend verdict. Slopes are in the metric's unit (bytes or count) per hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendNumbers {
    /// Which points were judged.
    pub basis: Basis,
    /// How many points.
    pub points: usize,
    /// Steady window length, seconds.
    pub window_secs: f64,
    /// Median of the first quarter (the level the relative limit is taken of).
    pub baseline: f64,
    /// Effective slope limit per hour.
    pub limit_per_hour: f64,
    /// Theil–Sen slope per hour.
    pub slope_per_hour: f64,
    /// Confidence interval of the slope per hour `[lower, upper]`.
    pub slope_ci_per_hour: [f64; 2],
    /// Two-sided level of that interval (1 − 2·alpha, so its upper bound is a one-sided 1 − alpha bound).
    pub ci_level: f64,
    /// Mann–Kendall standardised statistic (autocorrelation-corrected).
    pub mann_kendall_z: f64,
    /// One-sided p-value for an upward trend.
    pub p_value: f64,
    /// Hamed–Rao variance inflation factor applied (1 = none).
    pub autocorrelation_factor: f64,
    /// Theil–Sen slope of the final quarter per hour.
    pub final_quarter_slope_per_hour: f64,
    /// Median of the second quarter.
    pub second_quarter_median: f64,
    /// Median of the last quarter.
    pub last_quarter_median: f64,
    /// Rise from the second-quarter median to the last-quarter median, per hour.
    pub q2_to_q4_per_hour: f64,
    /// Rise from the third-quarter median to the last-quarter median, per hour.
    pub q3_to_q4_per_hour: f64,
    /// Confidence interval of the slope over the last half of the window alone, per hour (same level).
    pub last_half_slope_ci_per_hour: [f64; 2],
    /// Last-quarter minus first-quarter median.
    pub growth: f64,
    /// Sawtooth period, seconds, when judged on cycle floors.
    pub cycle_period_secs: Option<f64>,
}

/// A metric's trend verdict with its reason and numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendJudgement {
    /// PASS, LEAK (memory), GROWTH (counts) or INCONCLUSIVE.
    pub verdict: Verdict,
    /// One sentence a human can act on.
    pub reason: String,
    /// The statistics (absent when the window was too short to compute them).
    pub numbers: Option<TrendNumbers>,
    /// For INCONCLUSIVE: a steady window (seconds) that would likely suffice.
    pub steady_secs_needed: Option<f64>,
}

const HOUR: f64 = 3600.0;

/// Judges one metric's steady-phase `(t_secs, value)` points.
pub(crate) fn judge(metric: Metric, steady: &[(f64, f64)], config: &LeakConfig) -> TrendJudgement {
    let window = steady.last().map_or(0.0, |l| l.0) - steady.first().map_or(0.0, |f| f.0);
    let min_steady = config.min_steady.as_secs_f64();
    if steady.len() < 2 || window < min_steady {
        let reason =
            format!("steady window {window:.0} s is shorter than the {min_steady:.0} s minimum");
        return inconclusive(reason, None, min_steady);
    }
    let cycles = metric
        .is_memory()
        .then(|| find_cycles(steady, config.min_cycles.max(3)))
        .flatten();
    match cycles {
        Some(cycles) => judge_cycles(metric, cycles, window, config),
        None if steady.len() > config.max_points => {
            let points = bin_medians(steady, config.max_points);
            judge_points(metric, &points, Basis::BinMedians, window, None, config)
        }
        None => judge_points(metric, steady, Basis::Samples, window, None, config),
    }
}

/// Judges the points of one basis, INCONCLUSIVE when there are too few of them.
fn judge_points(
    metric: Metric,
    points: &[(f64, f64)],
    basis: Basis,
    window: f64,
    period: Option<f64>,
    config: &LeakConfig,
) -> TrendJudgement {
    let min_n = match basis {
        Basis::CycleFloors | Basis::CyclePeaks => config.min_cycles,
        Basis::Samples | Basis::BinMedians => config.min_points,
    };
    if points.len() < min_n.max(3) {
        let needed = window * min_n as f64 / points.len().max(1) as f64;
        let reason = format!(
            "only {} points ({basis:?}) in the steady window, {min_n} needed",
            points.len()
        );
        return inconclusive(reason, None, needed.max(config.min_steady.as_secs_f64()));
    }
    let numbers = compute(metric, points, basis, window, period, config);
    decide(metric, numbers, config)
}

/// A periodic memory series is judged on its cycle floors; its cycle peaks can only add a LEAK (peaks that
/// keep rising mean each cycle needs more memory), never turn a decided floor verdict INCONCLUSIVE: peaks
/// carry the cycle's own jitter (a collection that runs a little later peaks higher), floors do not.
fn judge_cycles(
    metric: Metric,
    cycles: Cycles,
    window: f64,
    config: &LeakConfig,
) -> TrendJudgement {
    let period = Some(cycles.period_secs);
    let described = |judgement: TrendJudgement, what: &str| TrendJudgement {
        reason: format!(
            "{what} of a {:.0} s cycle: {}",
            cycles.period_secs, judgement.reason
        ),
        ..judgement
    };
    let floors = bin_medians(&cycles.floors, config.max_points);
    let floors = judge_points(metric, &floors, Basis::CycleFloors, window, period, config);
    if floors.verdict == Verdict::Leak || cycles.peaks.len() < config.min_cycles {
        return described(floors, "floors");
    }
    let peaks = bin_medians(&cycles.peaks, config.max_points);
    let peaks = judge_points(metric, &peaks, Basis::CyclePeaks, window, period, config);
    if peaks.verdict == Verdict::Leak {
        described(peaks, "peaks")
    } else {
        described(floors, "floors")
    }
}

fn inconclusive(reason: String, numbers: Option<TrendNumbers>, needed: f64) -> TrendJudgement {
    TrendJudgement {
        verdict: Verdict::Inconclusive,
        reason,
        numbers,
        steady_secs_needed: Some(needed.ceil()),
    }
}

fn compute(
    metric: Metric,
    points: &[(f64, f64)],
    basis: Basis,
    window_secs: f64,
    cycle_period_secs: Option<f64>,
    config: &LeakConfig,
) -> TrendNumbers {
    let ci_level = (1.0 - 2.0 * config.alpha).clamp(0.5, 0.999);
    let (estimate, mk) = robust_trend(points, ci_level).unzip();
    let (slope, lower, upper) = estimate.map_or((0.0, 0.0, 0.0), |e| (e.slope, e.lower, e.upper));
    let (z, p_value, factor) = mk.map_or((0.0, 1.0, 1.0), |mk| {
        (mk.z, mk.p_up, mk.autocorrelation_factor)
    });
    let last_half = robust_trend(&points[points.len() / 2..], ci_level)
        .map_or([0.0, f64::INFINITY], |(e, _)| {
            [e.lower * HOUR, e.upper * HOUR]
        });
    let quarter_median =
        |q| median(&quarter(points, q).iter().map(|p| p.1).collect::<Vec<_>>()).unwrap_or(0.0);
    let baseline = quarter_median(0);
    let last_quarter = quarter(points, 3);
    let final_points = if last_quarter.len() >= 3 {
        last_quarter
    } else {
        points[points.len() * 3 / 4..].to_vec()
    };
    let span = points.last().map_or(0.0, |l| l.0) - points.first().map_or(0.0, |f| f.0);
    let rise_per_hour = |from: usize| {
        let quarters_apart = (3 - from) as f64;
        if span > 0.0 {
            (quarter_median(3) - quarter_median(from)) / (span * quarters_apart / 4.0) * HOUR
        } else {
            0.0
        }
    };
    TrendNumbers {
        basis,
        points: points.len(),
        window_secs,
        baseline,
        limit_per_hour: config.limit(metric).limit_per_hour(baseline),
        slope_per_hour: slope * HOUR,
        slope_ci_per_hour: [lower * HOUR, upper * HOUR],
        ci_level,
        mann_kendall_z: z,
        p_value,
        autocorrelation_factor: factor,
        final_quarter_slope_per_hour: theil_sen_slope(&final_points).unwrap_or(0.0) * HOUR,
        second_quarter_median: quarter_median(1),
        last_quarter_median: quarter_median(3),
        q2_to_q4_per_hour: rise_per_hour(1),
        q3_to_q4_per_hour: rise_per_hour(2),
        last_half_slope_ci_per_hour: last_half,
        growth: quarter_median(3) - baseline,
        cycle_period_secs,
    }
}

fn decide(metric: Metric, n: TrendNumbers, config: &LeakConfig) -> TrendJudgement {
    let verdict = if n.p_value < config.alpha {
        Some(significant_trend(metric, &n, config))
    } else {
        no_significant_trend(metric, &n, config)
    };
    match verdict {
        Some((verdict, reason)) => TrendJudgement {
            verdict,
            reason,
            numbers: Some(n),
            steady_secs_needed: None,
        },
        None => {
            let needed = steady_secs_needed(&n);
            let reason = format!(
                "no significant trend, but too short or noisy to rule out the {} limit (slope up to {}); \
                 a steady window of ~{needed:.0} s would do",
                Unit::of(metric).rate(n.limit_per_hour),
                Unit::of(metric).rate(n.slope_ci_per_hour[1])
            );
            inconclusive(reason, Some(n), needed)
        }
    }
}

/// A significant upward trend: LEAK/GROWTH if material and still growing, else PASS with the reason.
fn significant_trend(metric: Metric, n: &TrendNumbers, config: &LeakConfig) -> (Verdict, String) {
    let (unit, limit) = (Unit::of(metric), n.limit_per_hour);
    let min_growth = config.limit(metric).min_growth;
    let material = n.slope_per_hour >= limit && n.growth >= min_growth;
    let needed_rate =
        (config.end_rate_of_limit * limit).max(config.end_rate_of_slope * n.slope_per_hour);
    let still_growing = n.q3_to_q4_per_hour >= needed_rate && n.q2_to_q4_per_hour >= needed_rate;
    if !material {
        let reason = format!(
            "slight trend {}, below the {} limit or under {} total",
            unit.rate(n.slope_per_hour),
            unit.rate(limit),
            unit.amount(min_growth)
        );
        return (Verdict::Pass, reason);
    }
    if !still_growing {
        let reason = format!(
            "rose {} then levelled off (third to last quarter {}, second to last quarter {}; a leak keeps rising)",
            unit.amount(n.growth),
            unit.rate(n.q3_to_q4_per_hour),
            unit.rate(n.q2_to_q4_per_hour)
        );
        return (Verdict::Pass, reason);
    }
    let verdict = if metric.is_memory() {
        Verdict::Leak
    } else {
        Verdict::Growth
    };
    let reason = format!(
        "rising {} (CI {} .. {}, p={:.1e}) above the {} limit, still rising at the end ({} from the third to \
         the last quarter)",
        unit.rate(n.slope_per_hour),
        unit.rate(n.slope_ci_per_hour[0]),
        unit.rate(n.slope_ci_per_hour[1]),
        n.p_value,
        unit.rate(limit),
        unit.rate(n.q3_to_q4_per_hour)
    );
    (verdict, reason)
}

/// No significant trend: PASS when a leak at the limit is ruled out (whole window, last half, or in absolute
/// growth over this window); `None` (INCONCLUSIVE) otherwise.
fn no_significant_trend(
    metric: Metric,
    n: &TrendNumbers,
    config: &LeakConfig,
) -> Option<(Verdict, String)> {
    let (unit, limit, p) = (Unit::of(metric), n.limit_per_hour, n.p_value);
    let [_, upper] = n.slope_ci_per_hour;
    let reason = if upper < limit {
        format!(
            "no significant trend (p={p:.2}); growth faster than {} ruled out",
            unit.rate(upper)
        )
    } else if n.last_half_slope_ci_per_hour[1] < limit {
        format!(
            "no significant trend (p={p:.2}), and flat over the last half: growth faster than {} ruled out there",
            unit.rate(n.last_half_slope_ci_per_hour[1])
        )
    } else if upper * n.window_secs / HOUR < config.limit(metric).min_growth {
        format!(
            "no material growth in this {:.0} s window (a leak slower than {} cannot be ruled out this short)",
            n.window_secs,
            unit.rate(upper)
        )
    } else {
        return None;
    };
    Some((Verdict::Pass, reason))
}

/// Steady window at which the slope's confidence half-width would drop to 80 % of the limit, assuming it shrinks
/// like T^-3/2 (fixed sampling rate, stationary noise). Rough by design; at least 25 % longer than now.
fn steady_secs_needed(n: &TrendNumbers) -> f64 {
    let half_width = (n.slope_ci_per_hour[1] - n.slope_ci_per_hour[0]) / 2.0;
    let target = 0.8 * n.limit_per_hour;
    let factor = if target > 0.0 {
        (half_width / target).powf(2.0 / 3.0)
    } else {
        2.0
    };
    (n.window_secs * factor.max(1.25)).ceil()
}

/// Formats amounts and rates in the metric's unit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    Bytes,
    Count,
}

impl Unit {
    pub fn of(metric: Metric) -> Self {
        if metric.is_memory() {
            Unit::Bytes
        } else {
            Unit::Count
        }
    }

    pub fn amount(self, value: f64) -> String {
        match self {
            Unit::Count => format!("{value:.1}"),
            Unit::Bytes => format_bytes(value),
        }
    }

    pub fn rate(self, per_hour: f64) -> String {
        format!("{}/h", self.amount(per_hour))
    }
}

/// Bytes with a binary unit, e.g. `15.0 MiB`, `-512.0 KiB`.
pub fn format_bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}
