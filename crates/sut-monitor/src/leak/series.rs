//! Shaping a metric's steady-phase samples into the points the trend test judges.
//!
//! - Long series are reduced to at most `max_points` bin medians: the statistics are O(n²), and a median per bin
//!   also removes single-sample spikes.
//! - Memory of garbage-collected or arena-recycling processes is a sawtooth: it climbs, drops at each collection,
//!   climbs again. The level (medians) of a sawtooth says little; the **floors** (the value right after each drop,
//!   i.e. what survives a collection) are what grows when live objects leak. `cycle_floors` finds the floors
//!   of a series with at least `MIN_DROPS` sharp drops; the `cycles` module decides which cycles are judged.

use serde::{Deserialize, Serialize};

use super::stats::median;
use crate::monitor::{Phase, ResourceSeries, Sample};

/// A resource judged for leaks (memory) or growth (counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Resident set size of the tree.
    Rss,
    /// Anonymous resident memory (heap) of the tree.
    RssAnon,
    /// Open file descriptors.
    Fds,
    /// Open socket fds (any family; a leaked socket is a leaked fd whatever its TCP state).
    Sockets,
    /// Threads.
    Threads,
}

impl Metric {
    /// Every judged metric, in report order.
    pub const ALL: [Metric; 5] = [
        Metric::Rss,
        Metric::RssAnon,
        Metric::Fds,
        Metric::Sockets,
        Metric::Threads,
    ];

    /// The metric's value in a sample.
    pub fn value(self, sample: &Sample) -> f64 {
        (match self {
            Metric::Rss => sample.rss_bytes,
            Metric::RssAnon => sample.rss_anon_bytes,
            Metric::Fds => sample.fds,
            Metric::Sockets => sample.socket_fds,
            Metric::Threads => sample.threads,
        }) as f64
    }

    /// The `resources.csv` column the metric is read from.
    pub fn column(self) -> &'static str {
        match self {
            Metric::Rss => "rss_bytes",
            Metric::RssAnon => "rss_anon_bytes",
            Metric::Fds => "fds",
            Metric::Sockets => "socket_fds",
            Metric::Threads => "threads",
        }
    }

    /// Memory metrics leak (verdict LEAK); counts grow (verdict GROWTH).
    pub fn is_memory(self) -> bool {
        matches!(self, Metric::Rss | Metric::RssAnon)
    }

    /// Short name, as in the CSV and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::RssAnon => "rss_anon",
            Metric::Fds => "fds",
            Metric::Sockets => "sockets",
            Metric::Threads => "threads",
        }
    }
}

/// `(t_secs, value)` of the samples in `phase`.
pub(crate) fn phase_points(
    series: &ResourceSeries,
    metric: Metric,
    phase: Phase,
) -> Vec<(f64, f64)> {
    series
        .samples
        .iter()
        .filter(|s| s.phase == phase)
        .map(|s| (s.t_secs, metric.value(s)))
        .collect()
}

/// At most `max_points` points: medians of equal-width time bins (each at its mean time). Unchanged when short.
pub(crate) fn bin_medians(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= max_points.max(1) {
        return points.to_vec();
    }
    let width = (last.0 - first.0) / max_points as f64;
    let bin_of = |t: f64| (((t - first.0) / width) as usize).min(max_points - 1);
    points
        .chunk_by(|a, b| bin_of(a.0) == bin_of(b.0))
        .filter_map(|bin| {
            let t = bin.iter().map(|p| p.0).sum::<f64>() / bin.len() as f64;
            Some((t, median(&bin.iter().map(|p| p.1).collect::<Vec<_>>())?))
        })
        .collect()
}

/// Sharp drops needed before a series is treated as a sawtooth.
pub(crate) const MIN_DROPS: usize = 3;

/// A drop must exceed this many robust standard deviations of the sample-to-sample changes...
const DROP_SIGMAS: f64 = 8.0;

/// ...and this many bytes (so page-granular jitter of a quiet process is never a "collection").
const MIN_DROP_BYTES: f64 = 256.0 * 1024.0;

/// The floors of a sawtooth series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CycleFloors {
    /// `(t, value)` of the lowest point of each cycle, from one drop to the next.
    pub floors: Vec<(f64, f64)>,
    /// Median time between drops, seconds.
    pub period_secs: f64,
}

/// Detects a sawtooth (≥ [`MIN_DROPS`] sharp drops) and returns its floors; `None` for other shapes.
pub(crate) fn cycle_floors(points: &[(f64, f64)]) -> Option<CycleFloors> {
    let diffs: Vec<f64> = points.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let center = median(&diffs)?;
    let mad = median(&diffs.iter().map(|d| (d - center).abs()).collect::<Vec<_>>())?;
    let threshold = (DROP_SIGMAS * 1.4826 * mad).max(MIN_DROP_BYTES);
    let drop_ends = collection_drops(&diffs, threshold);
    if drop_ends.len() < MIN_DROPS {
        return None;
    }
    // Each cycle runs from one drop to the next (the last one to the end of the window); its floor is its
    // lowest sample: right after the drop when memory climbs at once, anywhere in a flat low phase otherwise.
    let cycle_ends = drop_ends.iter().skip(1).copied().chain([points.len()]);
    let floors = drop_ends
        .iter()
        .zip(cycle_ends)
        .map(|(&start, end)| {
            points[start..end]
                .iter()
                .copied()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or(points[start])
        })
        .collect();
    let spacings: Vec<f64> = drop_ends
        .windows(2)
        .map(|w| points[w[1]].0 - points[w[0]].0)
        .collect();
    Some(CycleFloors {
        floors,
        period_secs: median(&spacings)?,
    })
}

/// Sample indices right after each collection-like drop: a run of consecutive changes below `-threshold` that
/// ends well below where the series was a few samples before the run (a spike returning to its level ends where
/// it started; a collection after a gradual climb ends far below the climb).
fn collection_drops(diffs: &[f64], threshold: f64) -> Vec<usize> {
    let sharp_drop = |i: usize| diffs[i] < -threshold;
    let mut ends = Vec::new();
    let mut i = 0;
    while i < diffs.len() {
        if !sharp_drop(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < diffs.len() && sharp_drop(i + 1) {
            i += 1;
        }
        // Net change from SPIKE_LOOKBACK samples before the run to the sample after it.
        let net: f64 = diffs[start.saturating_sub(SPIKE_LOOKBACK)..=i].iter().sum();
        if net < -threshold {
            ends.push(i + 1);
        }
        i += 1;
    }
    ends
}

/// How many samples before a drop are checked for the sharp rise of a spike.
const SPIKE_LOOKBACK: usize = 3;

/// The points whose time falls in quarter `q` (0..4) of the points' time span.
pub(crate) fn quarter(points: &[(f64, f64)], q: usize) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    let span = last.0 - first.0;
    let lo = first.0 + span * q as f64 / 4.0;
    let hi = first.0 + span * (q + 1) as f64 / 4.0;
    points
        .iter()
        .copied()
        .filter(|p| p.0 >= lo && (p.0 < hi || (q == 3 && p.0 <= hi)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64, i as f64)).collect()
    }

    #[test]
    fn binning_keeps_short_series_and_reduces_long_ones() {
        assert_eq!(bin_medians(&ramp(10), 20), ramp(10));
        let binned = bin_medians(&ramp(1000), 100);
        assert_eq!(binned.len(), 100);
        assert!(binned
            .windows(2)
            .all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1));
        assert!((binned[0].0 - 4.5).abs() < 1e-9 && (binned[0].1 - 4.5).abs() < 1e-9);
        assert!(bin_medians(&[], 10).is_empty());
    }

    #[test]
    fn quarters_split_by_time() {
        let points = ramp(101);
        let sizes: Vec<usize> = (0..4).map(|q| quarter(&points, q).len()).collect();
        assert_eq!(sizes, vec![25, 25, 25, 26]);
        assert_eq!(quarter(&points, 3).last(), Some(&(100.0, 100.0)));
    }

    /// Sawtooth: climbs `rise` bytes per second for `period` s, then falls back to `floor(t)`.
    fn sawtooth(n: usize, period: usize, rise: f64, floor_slope: f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                (
                    i as f64,
                    50e6 + floor_slope * i as f64 + rise * (i % period) as f64,
                )
            })
            .collect()
    }

    #[test]
    fn floors_of_a_sawtooth() {
        let floors = cycle_floors(&sawtooth(600, 60, 200e3, 0.0)).expect("sawtooth detected");
        assert_eq!(floors.floors.len(), 9);
        assert_eq!(floors.period_secs, 60.0);
        assert!(floors.floors.iter().all(|f| (f.1 - 50e6).abs() < 1.0));
        let rising = cycle_floors(&sawtooth(600, 60, 200e3, 4e3)).expect("sawtooth detected");
        assert!(rising.floors.windows(2).all(|w| w[1].1 > w[0].1));
    }

    #[test]
    fn smooth_or_stepped_series_are_not_sawtooth() {
        let smooth: Vec<(f64, f64)> = (0..600)
            .map(|i| (i as f64, 50e6 + 1e3 * i as f64))
            .collect();
        assert_eq!(cycle_floors(&smooth), None);
        // Two drops only (a cache flush now and then) is not a cycle.
        let mut two = smooth.clone();
        for p in &mut two[200..] {
            p.1 -= 5e6;
        }
        for p in &mut two[400..] {
            p.1 -= 5e6;
        }
        assert_eq!(cycle_floors(&two), None);
        // Short spikes (a burst of big buffers, freed a moment later) are not collections.
        let mut spiky = smooth.clone();
        for start in [50, 150, 250, 350, 450] {
            spiky[start].1 += 4e6;
            spiky[start + 100 / 2].1 += 4e6;
            spiky[start + 51].1 += 4e6;
        }
        assert_eq!(cycle_floors(&spiky), None);
        // Page-granular jitter of a quiet process.
        let jitter: Vec<(f64, f64)> = (0..600)
            .map(|i| (i as f64, 50e6 + 4096.0 * (i % 3) as f64))
            .collect();
        assert_eq!(cycle_floors(&jitter), None);
    }

    #[test]
    fn metric_names_and_kinds() {
        let kinds: Vec<(&str, bool)> = Metric::ALL
            .iter()
            .map(|m| (m.name(), m.is_memory()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("rss", true),
                ("rss_anon", true),
                ("fds", false),
                ("sockets", false),
                ("threads", false)
            ]
        );
    }
}
