//! Periodic memory: finding the cycles of a series and their floors (minima) and peaks (maxima).
//!
//! Why: a process that allocates and frees a large buffer on a schedule (a batch every 30 s, a cache rebuilt
//! every minute, a collector running on a timer) has a memory series dominated by that cycle. Its level (the
//! samples or their bin medians) swings by the whole cycle amplitude, so the slope of the samples is uncertain
//! by far more than any leak limit and the verdict stays INCONCLUSIVE for hours. One point per cycle takes the
//! cycle out: the **floor** (what survives the cycle: live data, and what grows when memory leaks) and the
//! **peak** (the most the process needs; it grows when each cycle needs more). Each is nearly constant in a
//! healthy process, so a handful of cycles decides.
//!
//! Two detectors, first match wins:
//! 1. **Sharp drops** ([`super::series::cycle_floors`]): a sawtooth of garbage-collection-like climbs and
//!    drops, with irregular periods. Each cycle runs from one drop to the next; only its floor (right after the
//!    drop) is judged, since how high a cycle climbs depends on when the collector ran.
//! 2. **Autocorrelation** ([`periodic_cycles`]): any shape that repeats with a fixed period (a square wave, a
//!    short burst per period, a smooth wave), found as the lag where the autocorrelation of the detrended series
//!    peaks. The series is cut into consecutive windows one period long; a window of exactly one period holds
//!    every phase of the cycle, so its minimum and maximum are the cycle's floor and peak whatever the phase.

use super::series::cycle_floors;
use super::stats::median;

/// One point per cycle of a periodic memory series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cycles {
    /// `(t, value)` of the lowest sample of each cycle.
    pub floors: Vec<(f64, f64)>,
    /// `(t, value)` of the highest sample of each cycle (empty for sawtooth drops, see [`find_cycles`]).
    pub peaks: Vec<(f64, f64)>,
    /// Median cycle length, seconds.
    pub period_secs: f64,
}

/// The autocorrelation at the period must reach this (1 = the cycles repeat exactly)...
const MIN_AUTOCORRELATION: f64 = 0.5;

/// ...and be this much above the lowest autocorrelation at a shorter lag (a wandering level decays slowly
/// and never rises again; a cycle goes out of phase and back).
const MIN_AUTOCORRELATION_SWING: f64 = 0.5;

/// A cycle at least this many samples long (a shorter "period" is sample-to-sample jitter).
const MIN_PERIOD_SAMPLES: usize = 3;

/// The median cycle (peak − floor) must reach this many bytes, so page-granular jitter is never a cycle.
const MIN_AMPLITUDE_BYTES: f64 = 256.0 * 1024.0;

/// The cycles of a memory series, or `None` when it is not periodic with at least `min_cycles` cycles.
pub(crate) fn find_cycles(points: &[(f64, f64)], min_cycles: usize) -> Option<Cycles> {
    drop_cycles(points)
        .filter(|c| c.floors.len() >= min_cycles)
        .or_else(|| periodic_cycles(points, min_cycles))
}

/// Cycles between sharp drops, floor right after each drop. No peaks: when a collection runs depends on the
/// allocation rate and the collector's own heuristics, so the height a cycle reaches before it varies with the
/// cycle's length, not with what the process keeps.
fn drop_cycles(points: &[(f64, f64)]) -> Option<Cycles> {
    let found = cycle_floors(points)?;
    Some(Cycles {
        floors: found.floors,
        peaks: Vec::new(),
        period_secs: found.period_secs,
    })
}

/// Cycles of a fixed period found by autocorrelation: `None` unless the series repeats with a period that fits
/// `min_cycles` times into it and swings by at least [`MIN_AMPLITUDE_BYTES`].
pub(crate) fn periodic_cycles(points: &[(f64, f64)], min_cycles: usize) -> Option<Cycles> {
    let lag = period_lag(points, min_cycles)?;
    let windows: Vec<&[(f64, f64)]> = points.chunks_exact(lag).collect();
    let floors: Vec<(f64, f64)> = windows.iter().filter_map(|w| lowest(w)).collect();
    let peaks: Vec<(f64, f64)> = windows.iter().filter_map(|w| highest(w)).collect();
    let amplitudes: Vec<f64> = floors.iter().zip(&peaks).map(|(f, p)| p.1 - f.1).collect();
    if floors.len() < min_cycles || median(&amplitudes)? < MIN_AMPLITUDE_BYTES {
        return None;
    }
    let spacing = median(
        &points
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .collect::<Vec<_>>(),
    )?;
    Some(Cycles {
        floors,
        peaks,
        period_secs: spacing * lag as f64,
    })
}

/// The period in samples: the shortest lag whose autocorrelation is a local maximum within 10 % of the best
/// one (so a multiple of the period never wins over the period), with the swing of
/// [`MIN_AUTOCORRELATION_SWING`] before it. Lags up to `len / min_cycles`, so `min_cycles` fit.
fn period_lag(points: &[(f64, f64)], min_cycles: usize) -> Option<usize> {
    let max_lag = points.len() / min_cycles.max(2);
    if max_lag < MIN_PERIOD_SAMPLES + 1 {
        return None;
    }
    let acf = autocorrelation(&detrended(points), max_lag + 2)?;
    let candidates: Vec<(usize, f64)> = (MIN_PERIOD_SAMPLES..=max_lag)
        .filter(|&k| acf[k] >= acf[k - 1] && acf[k] >= acf[k + 1])
        .filter(|&k| {
            let trough = acf[1..k].iter().copied().fold(f64::INFINITY, f64::min);
            acf[k] >= MIN_AUTOCORRELATION && acf[k] - trough >= MIN_AUTOCORRELATION_SWING
        })
        .map(|k| (k, acf[k]))
        .collect();
    let best = candidates
        .iter()
        .map(|c| c.1)
        .fold(f64::NEG_INFINITY, f64::max);
    candidates.iter().find(|c| c.1 >= 0.9 * best).map(|c| c.0)
}

/// Residuals from the least-squares line: a leak's ramp would otherwise dominate the autocorrelation.
fn detrended(points: &[(f64, f64)]) -> Vec<f64> {
    let n = points.len() as f64;
    let (mean_t, mean_v) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
    let (cov, var) = points.iter().fold((0.0, 0.0), |(c, v), p| {
        let dt = p.0 - mean_t;
        (c + dt * (p.1 - mean_v), v + dt * dt)
    });
    let slope = if var > 0.0 { cov / var } else { 0.0 };
    points
        .iter()
        .map(|p| p.1 - mean_v - slope * (p.0 - mean_t))
        .collect()
}

/// Autocorrelation at lags `0..lags`, each lag's products averaged over its own overlap (so a lag several
/// periods long is not penalised for its shorter overlap). `None` for a constant series.
fn autocorrelation(values: &[f64], lags: usize) -> Option<Vec<f64>> {
    let n = values.len();
    let variance = values.iter().map(|v| v * v).sum::<f64>() / n as f64;
    if variance <= 0.0 || lags >= n {
        return None;
    }
    Some(
        (0..lags)
            .map(|k| {
                let sum: f64 = values.iter().zip(&values[k..]).map(|(a, b)| a * b).sum();
                sum / (n - k) as f64 / variance
            })
            .collect(),
    )
}

fn lowest(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    points.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))
}

fn highest(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    points.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))
}
