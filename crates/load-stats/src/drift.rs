//! Latency drift: the first window of a run against the last one (a proxy that slows down over a night).
//!
//! Why windows of merged histograms rather than the history's per-second percentiles: a percentile of
//! percentiles is meaningless; merging the per-interval HDR histograms of each window gives the exact p50/p95
//! of every request that finished in it. The window is `W` long (default one hour, `[thresholds] drift_window`),
//! clipped to a quarter of the run so a short run still compares a beginning with an end that do not overlap.
//! The first window starts with the load (warm-up included — a proxy that is slow while cold and then fine has
//! not drifted upwards); the last one ends at the planned end of the load. An interval belongs to a window when
//! its midpoint lies inside it. A run stopped before its last window began has no drift figures.

use crate::histogram::LatencyHistogram;
use crate::percentiles::us_to_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default drift window: the nightly job's "first hour against last hour".
pub const DEFAULT_DRIFT_WINDOW: Duration = Duration::from_secs(3600);

/// The window used for a run of `run_time`: `configured` (default one hour), at most a quarter of the run.
pub fn drift_window(run_time: Duration, configured: Option<Duration>) -> Duration {
    configured.unwrap_or(DEFAULT_DRIFT_WINDOW).min(run_time / 4)
}

/// Latency of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowLatency {
    /// Window start, seconds since the start of the load.
    pub start_s: f64,
    /// Window end, seconds since the start of the load.
    pub end_s: f64,
    /// Requests that finished in the window.
    pub requests: u64,
    /// Median latency (ms), `None` without requests.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency (ms), `None` without requests.
    pub p95_ms: Option<f64>,
}

/// `latency_drift` in `summary.json`: the first and last windows and how p50/p95 moved between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyDrift {
    /// Window length in seconds.
    pub window_s: f64,
    /// The first window.
    pub first: WindowLatency,
    /// The last window.
    pub last: WindowLatency,
    /// last p95 / first p95 (`None` without data in either window, or a first p95 of 0).
    pub p95_ratio: Option<f64>,
    /// last p95 − first p95 in ms (negative: faster at the end).
    pub p95_diff_ms: Option<f64>,
    /// last p50 / first p50.
    pub p50_ratio: Option<f64>,
    /// last p50 − first p50 in ms.
    pub p50_diff_ms: Option<f64>,
}

/// Collects the first and last windows' histograms from the per-interval histograms of a run, as they close.
#[derive(Debug, Clone)]
pub struct DriftTracker {
    window: Duration,
    run_time: Duration,
    first: LatencyHistogram,
    last: LatencyHistogram,
    reached_last: bool,
}

impl DriftTracker {
    /// A tracker for a load planned to last `run_time`, with windows of `window` (see [`drift_window`]).
    pub fn new(run_time: Duration, window: Duration) -> Self {
        Self {
            window,
            run_time,
            first: LatencyHistogram::new(),
            last: LatencyHistogram::new(),
            reached_last: false,
        }
    }

    /// Adds one closed interval `[start, end)` (times since the start of the load) and its histogram.
    pub fn add_interval(&mut self, start: Duration, end: Duration, latency: &LatencyHistogram) {
        let mid = (start + end) / 2;
        if mid < self.window {
            self.first.add(latency);
        }
        if mid >= self.last_start() {
            self.reached_last = true;
            self.last.add(latency);
        }
    }

    /// The drift, or `None` when the window is empty (a run too short) or the load stopped before the last
    /// window began.
    pub fn drift(&self) -> Option<LatencyDrift> {
        if self.window.is_zero() || !self.reached_last {
            return None;
        }
        let first = window_latency(Duration::ZERO, self.window, &self.first);
        let last = window_latency(self.last_start(), self.run_time, &self.last);
        Some(latency_drift(self.window, first, last))
    }

    fn last_start(&self) -> Duration {
        self.run_time.saturating_sub(self.window)
    }
}

/// p50 and p95 of one window's merged histogram.
pub fn window_latency(
    start: Duration,
    end: Duration,
    histogram: &LatencyHistogram,
) -> WindowLatency {
    let quantile = |q: f64| histogram.quantile_us(q).map(us_to_ms);
    WindowLatency {
        start_s: start.as_secs_f64(),
        end_s: end.as_secs_f64(),
        requests: histogram.count(),
        p50_ms: quantile(0.50),
        p95_ms: quantile(0.95),
    }
}

/// Ratios and differences of p50 and p95 between two windows (pure).
pub fn latency_drift(window: Duration, first: WindowLatency, last: WindowLatency) -> LatencyDrift {
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    LatencyDrift {
        window_s: window.as_secs_f64(),
        p95_ratio: ratio(first.p95_ms, last.p95_ms),
        p95_diff_ms: diff(first.p95_ms, last.p95_ms),
        p50_ratio: ratio(first.p50_ms, last.p50_ms),
        p50_diff_ms: diff(first.p50_ms, last.p50_ms),
        first,
        last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A histogram of `n` requests at `ms` each.
    fn histogram(ms: u64, n: u64) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for _ in 0..n {
            h.record(Duration::from_millis(ms));
        }
        h
    }

    #[test]
    fn window_is_an_hour_clipped_to_a_quarter_of_the_run() {
        let h = Duration::from_secs(3600);
        let cases = [
            (8 * h, None, h),
            (2 * h, None, h / 2),
            (Duration::from_secs(20), None, Duration::from_secs(5)),
            (
                8 * h,
                Some(Duration::from_secs(600)),
                Duration::from_secs(600),
            ),
            (Duration::from_secs(40), Some(h), Duration::from_secs(10)),
        ];
        for (run, configured, want) in cases {
            assert_eq!(
                drift_window(run, configured),
                want,
                "{run:?} {configured:?}"
            );
        }
    }

    #[test]
    fn a_known_drift_is_measured_from_the_windows_only() {
        // 40 one-second intervals, window 10 s: 10 ms in the first 10 s, 50 ms in between, 30 ms in the last 10 s.
        let mut tracker = DriftTracker::new(Duration::from_secs(40), Duration::from_secs(10));
        for s in 0..40u64 {
            let ms = match s {
                0..=9 => 10,
                30..=39 => 30,
                _ => 50,
            };
            let (start, end) = (Duration::from_secs(s), Duration::from_secs(s + 1));
            tracker.add_interval(start, end, &histogram(ms, 100));
        }
        let d = tracker.drift().expect("drift");
        assert_eq!((d.first.requests, d.last.requests), (1000, 1000));
        assert_eq!((d.first.start_s, d.first.end_s), (0.0, 10.0));
        assert_eq!((d.last.start_s, d.last.end_s), (30.0, 40.0));
        let (p95_first, p95_last) = (d.first.p95_ms.unwrap(), d.last.p95_ms.unwrap());
        assert!((p95_first - 10.0).abs() < 0.1, "{p95_first}");
        assert!((p95_last - 30.0).abs() < 0.1, "{p95_last}");
        assert!((d.p95_ratio.unwrap() - 3.0).abs() < 0.05, "{d:?}");
        assert!((d.p95_diff_ms.unwrap() - 20.0).abs() < 0.1, "{d:?}");
        assert!((d.p50_ratio.unwrap() - 3.0).abs() < 0.05, "{d:?}");
    }

    #[test]
    fn a_mixed_window_uses_the_merged_histogram_not_an_average_of_percentiles() {
        // First window: 9 intervals of 100 fast requests and one of 100 slow ones → p95 is the slow value
        // (95 % of 1000 lands in the slow tail only if merged: 900 fast + 100 slow → p95 = slow).
        let mut tracker = DriftTracker::new(Duration::from_secs(40), Duration::from_secs(10));
        for s in 0..40u64 {
            let ms = if s == 3 { 200 } else { 10 };
            let (start, end) = (Duration::from_secs(s), Duration::from_secs(s + 1));
            tracker.add_interval(start, end, &histogram(ms, 100));
        }
        let d = tracker.drift().expect("drift");
        assert!((d.first.p95_ms.unwrap() - 200.0).abs() < 1.0, "{d:?}");
        assert!((d.last.p95_ms.unwrap() - 10.0).abs() < 0.1, "{d:?}");
        assert!(d.p95_diff_ms.unwrap() < -180.0, "{d:?}");
    }

    #[test]
    fn no_drift_without_a_last_window_or_data() {
        let mut stopped_early = DriftTracker::new(Duration::from_secs(40), Duration::from_secs(10));
        for s in 0..20u64 {
            let (start, end) = (Duration::from_secs(s), Duration::from_secs(s + 1));
            stopped_early.add_interval(start, end, &histogram(10, 10));
        }
        assert_eq!(stopped_early.drift(), None);
        assert_eq!(
            DriftTracker::new(Duration::ZERO, Duration::ZERO).drift(),
            None
        );
        let mut empty_first = DriftTracker::new(Duration::from_secs(40), Duration::from_secs(10));
        let (start, end) = (Duration::from_secs(35), Duration::from_secs(36));
        empty_first.add_interval(start, end, &histogram(10, 10));
        let d = empty_first.drift().expect("a last window");
        assert_eq!(
            (d.first.requests, d.p95_ratio, d.p95_diff_ms),
            (0, None, None)
        );
    }
}
