//! Thresholds of the leak and growth verdicts, with calibrated defaults.
//!
//! ## Why these defaults
//! - `alpha = 0.01` (one-sided Mann–Kendall, Hamed–Rao corrected): a CI gate must almost never fail a healthy
//!   run; the magnitude and still-growing conditions cut false positives further (see the sensitivity study in
//!   the crate README / `bench/monitor-leak-sensitivity.sh`).
//! - Memory slope limit `max(4 MiB/h, 1 % of baseline per hour)` and at least 1 MiB of growth over the steady
//!   window: the goal is to catch 256 KiB/min (15 MiB/h) in a 10-minute run with room to spare (limit at about a
//!   quarter of that), while allocator and cache noise of a healthy proxy (steps of a few hundred KiB that level
//!   off) stays below it. The relative part keeps multi-GiB processes from failing on growth that is small for
//!   them.
//! - Counts (fds, sockets) `max(60/h, 10 %/h)` with ≥ 5 extra; threads `max(12/h, 10 %/h)` with ≥ 2 extra:
//!   counts are exact, so small absolute growth is meaningful, but pools legitimately breathe with load.
//! - Drain tolerance generous (64 fds/sockets, 8 threads, + 25 % of baseline): HTTP client pools keep idle
//!   upstream connections for ~90 s after load stops; the drain check is for gross retention, the trend test
//!   catches steady leaks.
//! - A sampling gap over 3 intervals makes the run INVALID (never PASS): a stalled monitor may hide a spike.
//! - Gross growth (`gross_growth`): memory that ends ×3 its start level and 256 MiB above it, still rising, is
//!   GROWTH even without a steady window; a warm-up of the proxies this harness targets adds tens of MiB, not a
//!   multiple of the process (see [`super::gross`]).
//! - Load steadiness (`load`): a memory LEAK becomes INCONCLUSIVE when the open sockets' last-quarter median is
//!   over 2× and at least 20 above the second quarter's (memory follows connections; see [`super::load`]).
//!
//! ## What the defaults achieve (synthetic series, `bench/monitor-leak-sensitivity.sh`)
//! 10-minute run (2 min warm-up), 80 MiB process, AR(1) noise (φ 0.9, σ 256 KiB) + jitter + spikes:
//! 256 KiB/min → LEAK in 99 % of 300 runs, 192 KiB/min 81 %, 128 KiB/min 7 % (the 1 MiB `min_growth` over a
//! 6-minute quarter-to-quarter span is the binding limit), clean plateau 0 false LEAK in 2000 runs, GC sawtooth
//! with flat floors 0/500, rising floors (+256 KiB/min) 500/500. A 90-second CI run catches ≥ 4 MiB/min every
//! time; clean 90-second runs are never LEAK (13.6 % INCONCLUSIVE with the noisy model, 0 % with 64 KiB noise).
//! For short CI runs with slower leaks, lower `memory.min_growth`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::load::LoadSteadiness;
use super::series::Metric;

/// Slope limit and minimum growth for one metric. The effective limit is `max(abs_per_hour, rel_per_hour ×
/// baseline)`, so a leak must be material both in absolute terms and relative to the process size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeLimit {
    /// Absolute slope limit, units (bytes or count) per hour.
    pub abs_per_hour: f64,
    /// Relative slope limit, fraction of the baseline per hour (0.01 = 1 %/h).
    pub rel_per_hour: f64,
    /// Growth (last-quarter minus first-quarter median) below which no verdict of LEAK/GROWTH is given.
    pub min_growth: f64,
}

impl SlopeLimit {
    /// The effective limit for a baseline value.
    pub fn limit_per_hour(&self, baseline: f64) -> f64 {
        self.abs_per_hour.max(self.rel_per_hour * baseline.max(0.0))
    }
}

/// How far above the pre-load baseline a count may stay after the drain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainTolerance {
    /// Absolute tolerance (count).
    pub abs: f64,
    /// Relative tolerance, fraction of the baseline.
    pub rel: f64,
}

impl DrainTolerance {
    /// The highest value still "near" the baseline.
    pub fn ceiling(&self, baseline: f64) -> f64 {
        baseline + self.abs.max(self.rel * baseline)
    }
}

/// Hard ceilings on peak values over the whole run (warm-up included). `None` = no ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakLimits {
    /// Peak RSS, bytes.
    pub rss_bytes: Option<u64>,
    /// Peak open fds.
    pub fds: Option<u64>,
    /// Peak threads.
    pub threads: Option<u64>,
}

/// Memory growth over the whole run (warm-up included) that is GROWTH without any steady window: the end level
/// at least `ratio` times the start level and at least `min_growth` bytes above it, still rising at the end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrossGrowthLimit {
    /// End level over start level (3.0 = tripled). `inf` switches the check off.
    pub ratio: f64,
    /// End level minus start level, bytes.
    pub min_growth: f64,
}

/// Everything the verdicts depend on. Deserializes from TOML/JSON with defaults for missing fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeakConfig {
    /// One-sided significance level of the trend test.
    pub alpha: f64,
    /// Shortest steady window that can be judged.
    #[serde(with = "human_duration::serde::required")]
    pub min_steady: Duration,
    /// Fewest judged points (after binning) for a trend test.
    pub min_points: usize,
    /// Fewest cycle floors for judging a sawtooth series.
    pub min_cycles: usize,
    /// Long series are reduced to this many bin medians (bounds the O(n²) statistics).
    pub max_points: usize,
    /// "Still growing" needs the end-of-window rises (third→last and second→last quarter medians) to reach this
    /// fraction of the limit...
    pub end_rate_of_limit: f64,
    /// ...and this fraction of the whole-window slope (a decelerating rise or an early step is not a leak).
    pub end_rate_of_slope: f64,
    /// A gap between samples longer than this many intervals makes the run INVALID.
    pub max_gap_intervals: f64,
    /// Limits for RSS and RssAnon.
    pub memory: SlopeLimit,
    /// Limits for open fds.
    pub fds: SlopeLimit,
    /// Limits for open socket fds.
    pub sockets: SlopeLimit,
    /// Limits for threads.
    pub threads: SlopeLimit,
    /// Hard peak ceilings.
    pub peak: PeakLimits,
    /// Time after the drain phase starts within which counts must be back near baseline.
    #[serde(with = "human_duration::serde::required")]
    pub drain_timeout: Duration,
    /// Drain tolerance for fds and sockets.
    pub drain_fds: DrainTolerance,
    /// Drain tolerance for threads.
    pub drain_threads: DrainTolerance,
    /// When the open connections rose too much for a memory rise to be judged a leak.
    pub load: LoadSteadiness,
    /// Memory growth over the whole run too large for any warm-up.
    pub gross_growth: GrossGrowthLimit,
}

impl Default for LeakConfig {
    fn default() -> Self {
        const MIB: f64 = 1024.0 * 1024.0;
        let counts = SlopeLimit {
            abs_per_hour: 60.0,
            rel_per_hour: 0.10,
            min_growth: 5.0,
        };
        Self {
            alpha: 0.01,
            min_steady: Duration::from_secs(30),
            min_points: 12,
            min_cycles: 6,
            max_points: 120,
            end_rate_of_limit: 0.5,
            end_rate_of_slope: 0.3,
            max_gap_intervals: 3.0,
            memory: SlopeLimit {
                abs_per_hour: 4.0 * MIB,
                rel_per_hour: 0.01,
                min_growth: MIB,
            },
            fds: counts,
            sockets: counts,
            threads: SlopeLimit {
                abs_per_hour: 12.0,
                rel_per_hour: 0.10,
                min_growth: 2.0,
            },
            peak: PeakLimits::default(),
            drain_timeout: Duration::from_secs(30),
            drain_fds: DrainTolerance {
                abs: 64.0,
                rel: 0.25,
            },
            drain_threads: DrainTolerance {
                abs: 8.0,
                rel: 0.25,
            },
            load: LoadSteadiness::default(),
            gross_growth: GrossGrowthLimit {
                ratio: 3.0,
                min_growth: 256.0 * MIB,
            },
        }
    }
}

/// A leak setting out of its range; names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidLeakConfig {
    /// The field, e.g. `alpha` or `fds` (a per-metric limit table).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl LeakConfig {
    /// The slope limit for a metric.
    pub fn limit(&self, metric: Metric) -> &SlopeLimit {
        match metric {
            Metric::Rss | Metric::RssAnon => &self.memory,
            Metric::Fds => &self.fds,
            Metric::Sockets => &self.sockets,
            Metric::Threads => &self.threads,
        }
    }

    /// Checks the values make sense; the error names the field.
    pub fn validate(&self) -> Result<(), InvalidLeakConfig> {
        let limits = [
            ("memory", &self.memory),
            ("fds", &self.fds),
            ("sockets", &self.sockets),
            ("threads", &self.threads),
        ];
        let checks: Vec<(bool, &'static str, String)> = vec![
            (
                self.alpha > 0.0 && self.alpha < 0.5,
                "alpha",
                format!("must be in (0, 0.5), got {}", self.alpha),
            ),
            (
                self.min_points >= 3,
                "min_points",
                format!("must be at least 3, got {}", self.min_points),
            ),
            (
                self.min_cycles >= 3,
                "min_cycles",
                format!("must be at least 3, got {}", self.min_cycles),
            ),
            (
                self.max_points >= self.min_points,
                "max_points",
                format!(
                    "({}) must be at least min_points ({})",
                    self.max_points, self.min_points
                ),
            ),
            (
                self.max_gap_intervals >= 1.0,
                "max_gap_intervals",
                format!("must be at least 1, got {}", self.max_gap_intervals),
            ),
            (
                self.load.ratio >= 1.0
                    && self.load.min_rise >= 0.0
                    && self.load.min_rise.is_finite(),
                "load",
                format!(
                    "ratio must be at least 1 and min_rise finite and >= 0, got {} and {}",
                    self.load.ratio, self.load.min_rise
                ),
            ),
            (
                self.gross_growth.ratio >= 1.0
                    && self.gross_growth.min_growth >= 0.0
                    && self.gross_growth.min_growth.is_finite(),
                "gross_growth",
                format!(
                    "ratio must be at least 1 and min_growth finite and >= 0, got {} and {}",
                    self.gross_growth.ratio, self.gross_growth.min_growth
                ),
            ),
        ];
        let limit_checks = limits.iter().map(|(name, l)| {
            let ok = [l.abs_per_hour, l.rel_per_hour, l.min_growth]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0);
            (
                ok,
                *name,
                "abs_per_hour, rel_per_hour and min_growth must be finite and >= 0".to_string(),
            )
        });
        match checks.into_iter().chain(limit_checks).find(|(ok, ..)| !ok) {
            Some((_, field, problem)) => Err(InvalidLeakConfig { field, problem }),
            None => Ok(()),
        }
    }

    /// The drain tolerance for a count metric (`None` for memory, which allocators rarely give back).
    pub fn drain_tolerance(&self, metric: Metric) -> Option<&DrainTolerance> {
        match metric {
            Metric::Rss | Metric::RssAnon => None,
            Metric::Fds | Metric::Sockets => Some(&self.drain_fds),
            Metric::Threads => Some(&self.drain_threads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_limit_is_the_larger_of_absolute_and_relative() {
        let limit = SlopeLimit {
            abs_per_hour: 100.0,
            rel_per_hour: 0.1,
            min_growth: 0.0,
        };
        for (baseline, want) in [(0.0, 100.0), (500.0, 100.0), (5000.0, 500.0), (-1.0, 100.0)] {
            assert_eq!(limit.limit_per_hour(baseline), want, "{baseline}");
        }
        let tol = DrainTolerance {
            abs: 8.0,
            rel: 0.25,
        };
        assert_eq!((tol.ceiling(10.0), tol.ceiling(100.0)), (18.0, 125.0));
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() {
        let text = toml::to_string(&LeakConfig::default()).expect("serializes");
        assert!(text.contains("min_steady = \"30s\""), "{text}");
        let back: LeakConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back, LeakConfig::default());
        let partial: LeakConfig =
            toml::from_str("alpha = 0.05\ndrain_timeout = \"2m\"").expect("partial");
        assert_eq!(
            (partial.alpha, partial.drain_timeout),
            (0.05, Duration::from_secs(120))
        );
        let err = toml::from_str::<LeakConfig>("alpah = 0.05").expect_err("typo");
        assert!(err.to_string().contains("alpah"), "{err}");
        assert_eq!(LeakConfig::default().validate(), Ok(()));
        let bad = LeakConfig {
            alpha: 0.7,
            ..LeakConfig::default()
        };
        assert!(bad.validate().is_err_and(|e| e.field == "alpha"));
        let mut bad = LeakConfig::default();
        bad.fds.abs_per_hour = -1.0;
        assert!(bad.validate().is_err_and(|e| e.field == "fds"));
        let mut bad = LeakConfig::default();
        bad.gross_growth.ratio = 0.5;
        assert!(bad.validate().is_err_and(|e| e.field == "gross_growth"));
        let off: LeakConfig =
            toml::from_str("[gross_growth]\nratio = inf\nmin_growth = 0.0").expect("off");
        assert_eq!(off.validate(), Ok(()));
        let mut bad = LeakConfig::default();
        bad.load.ratio = 0.5;
        assert!(bad.validate().is_err_and(|e| e.field == "load"));
        let load: LeakConfig =
            toml::from_str("[load]\nratio = 3.0\nmin_rise = 50.0").expect("load");
        assert_eq!((load.load.ratio, load.load.min_rise), (3.0, 50.0));
        let err = toml::from_str::<LeakConfig>("min_steady = \"soon\"").expect_err("bad duration");
        assert!(err.to_string().contains("soon"), "{err}");
    }
}
