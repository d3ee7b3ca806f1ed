//! Gross memory growth over the whole run, warm-up included: no statistics, no steady window needed.
//!
//! Why: the trend test only looks at the steady window, and a run whose warm-up covers most of it (a short
//! `-t`, a long configured warm-up) has none, so even a proxy that went from 54 MiB to 500 MiB stays
//! INCONCLUSIVE. Growth that large is not a warm-up: caches and pools fill to a level, they do not multiply the
//! process and keep going. So memory that ends `ratio` times its starting level, at least `min_growth` bytes
//! higher, and still rising over the last quarter of the run is GROWTH whatever the steady window. The defaults
//! (×3 and 256 MiB) are far above what a warm-up does in the proxies this harness targets (tens of MiB), so the
//! check only fires on leaks a glance at the chart would call.

use serde::{Deserialize, Serialize};

use super::config::GrossGrowthLimit;
use super::series::{quarter, Metric};
use super::stats::median;
use super::trend::format_bytes;
use super::Verdict;
use crate::monitor::{Phase, ResourceSeries};

/// The start and end levels are medians of this fraction of the run's samples at either end...
const END_FRACTION: f64 = 0.05;

/// ...and of at least this many samples.
const MIN_END_SAMPLES: usize = 3;

/// "Still rising": the last quarter's median is at least this fraction of the whole growth above the third
/// quarter's (a steady rise puts it a quarter above; a rise that levelled off, about none).
const STILL_RISING_SHARE: f64 = 0.125;

/// Memory growth over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrossGrowthCheck {
    /// PASS, or GROWTH when the memory grew grossly and was still rising.
    pub verdict: Verdict,
    /// Explanation with the numbers (empty for PASS).
    pub reason: String,
    /// Median of the first samples of the run (warm-up included), bytes.
    pub start: f64,
    /// Median of the last samples before the drain, bytes.
    pub end: f64,
    /// Rise of the last-quarter median over the third-quarter median, bytes.
    pub last_quarter_rise: f64,
}

/// Checks a memory metric over the warm-up and steady samples. `None` for counts and for runs too short to
/// have a start and an end level.
pub(crate) fn check_gross_growth(
    series: &ResourceSeries,
    metric: Metric,
    limit: &GrossGrowthLimit,
) -> Option<GrossGrowthCheck> {
    if !metric.is_memory() {
        return None;
    }
    let points: Vec<(f64, f64)> = series
        .samples
        .iter()
        .filter(|s| s.phase != Phase::Drain)
        .map(|s| (s.t_secs, metric.value(s)))
        .collect();
    let take = ((points.len() as f64 * END_FRACTION).ceil() as usize).max(MIN_END_SAMPLES);
    if points.len() < 4 * take {
        return None;
    }
    let level = |p: &[(f64, f64)]| median(&p.iter().map(|p| p.1).collect::<Vec<_>>());
    let start = level(&points[..take])?;
    let end = level(&points[points.len() - take..])?;
    let last_quarter_rise = level(&quarter(&points, 3))? - level(&quarter(&points, 2))?;
    let growth = end - start;
    let gross = end >= limit.ratio * start
        && growth >= limit.min_growth
        && last_quarter_rise >= STILL_RISING_SHARE * growth;
    let (verdict, reason) = if gross {
        let reason = format!(
            "grew from {} to {} over the run, warm-up included (×{:.1}, +{}), and still rising at the end \
             (+{} over the last quarter): more than a warm-up explains (gross growth: ×{} and +{})",
            format_bytes(start),
            format_bytes(end),
            end / start.max(1.0),
            format_bytes(growth),
            format_bytes(last_quarter_rise),
            limit.ratio,
            format_bytes(limit.min_growth)
        );
        (Verdict::Growth, reason)
    } else {
        (Verdict::Pass, String::new())
    };
    Some(GrossGrowthCheck {
        verdict,
        reason,
        start,
        end,
        last_quarter_rise,
    })
}
