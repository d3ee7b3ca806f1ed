//! Drain and peak checks: exact counts, no statistics.
//!
//! After load stops, fds, sockets and threads should fall back near their pre-load baseline (the monitor's first
//! sample, taken before any load) within a timeout: a proxy that keeps a socket per finished request, or a thread
//! per past burst, shows it here even if the steady trend was too small to call. Memory is not drain-checked:
//! allocators rarely return freed memory to the OS. Peak ceilings are the hard limits of a scenario.

use serde::{Deserialize, Serialize};

use super::config::LeakConfig;
use super::series::Metric;
use super::Verdict;
use crate::monitor::{Phase, ResourceSeries};

/// Whether a count came back near its baseline after the load stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainCheck {
    /// PASS (returned), GROWTH (did not within the timeout), INCONCLUSIVE (drain observed too briefly).
    pub verdict: Verdict,
    /// Explanation with the numbers.
    pub reason: String,
    /// Pre-load value (first sample).
    pub baseline: f64,
    /// Highest value still counted as "near baseline".
    pub ceiling: f64,
    /// Seconds after the drain started when the value was first at or below the ceiling.
    pub returned_after_secs: Option<f64>,
    /// Last value seen within the timeout.
    pub last_value: f64,
    /// Seconds of drain observed (capped at the timeout).
    pub observed_secs: f64,
}

/// Checks one count metric's drain. `None` when the metric is not drain-checked, the series has no drain phase,
/// or no pre-load sample exists (monitor attached mid-load).
pub(crate) fn check_drain(
    series: &ResourceSeries,
    metric: Metric,
    config: &LeakConfig,
) -> Option<DrainCheck> {
    let tolerance = config.drain_tolerance(metric)?;
    let first = series
        .samples
        .first()
        .filter(|s| s.phase == Phase::WarmUp)?;
    let drain: Vec<(f64, f64)> = series
        .samples
        .iter()
        .filter(|s| s.phase == Phase::Drain)
        .map(|s| (s.t_secs, metric.value(s)))
        .collect();
    let start = drain.first()?.0;
    let timeout = config.drain_timeout.as_secs_f64();
    let within: Vec<(f64, f64)> = drain
        .into_iter()
        .filter(|p| p.0 - start <= timeout)
        .collect();
    let baseline = metric.value(first);
    let ceiling = tolerance.ceiling(baseline);
    let returned_after_secs = within.iter().find(|p| p.1 <= ceiling).map(|p| p.0 - start);
    let last_value = within.last().map_or(baseline, |p| p.1);
    let observed_secs = within.last().map_or(0.0, |p| p.0 - start);
    let name = metric.name();
    let (verdict, reason) = match returned_after_secs {
        Some(after) => (Verdict::Pass, format!("{name} back to ≤ {ceiling:.0} (baseline {baseline:.0}) after {after:.0} s")),
        // A sampling interval of slack: the last sample within the timeout lands up to one interval early.
        None if observed_secs + series.interval_secs < timeout => (
            Verdict::Inconclusive,
            format!("{name} still {last_value:.0} > {ceiling:.0} but the drain was observed only {observed_secs:.0} s of {timeout:.0} s"),
        ),
        None => (
            Verdict::Growth,
            format!("{name} stayed at {last_value:.0}, above {ceiling:.0} (baseline {baseline:.0}), {timeout:.0} s after load stopped"),
        ),
    };
    Some(DrainCheck {
        verdict,
        reason,
        baseline,
        ceiling,
        returned_after_secs,
        last_value,
        observed_secs,
    })
}

/// A metric's peak against its hard ceiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakCheck {
    /// Highest value over the whole series.
    pub peak: f64,
    /// The ceiling, if configured.
    pub limit: Option<f64>,
    /// Whether the peak went over the ceiling.
    pub exceeded: bool,
}

/// Peak of a metric over all samples and its configured ceiling (RSS, fds, threads have ceilings).
pub(crate) fn check_peak(
    series: &ResourceSeries,
    metric: Metric,
    config: &LeakConfig,
) -> PeakCheck {
    let peak = series
        .samples
        .iter()
        .map(|s| metric.value(s))
        .fold(0.0, f64::max);
    let limit = match metric {
        Metric::Rss => config.peak.rss_bytes,
        Metric::Fds => config.peak.fds,
        Metric::Threads => config.peak.threads,
        Metric::RssAnon | Metric::Sockets => None,
    }
    .map(|l| l as f64);
    PeakCheck {
        peak,
        limit,
        exceeded: limit.is_some_and(|l| peak > l),
    }
}
