//! The pure pieces of the live metrics: latency buckets, status-class labels, and which fault windows and run
//! phase are current at a point of the load clock.

use load_stats::StatusClass;
use std::time::Duration;

/// Upper bounds (seconds) of the latency and time-to-first-token histograms' classic buckets.
///
/// Why these: a key-router proxy adds single milliseconds (1 ms is the floor: below it loopback jitter
/// dominates); non-streamed answers and first tokens land between 10 and 500 ms, where the usual limits sit
/// (p50 50 ms, p95 100 ms, p99 200 ms), so the buckets are densest there and `histogram_quantile`'s linear
/// interpolation inside a bucket stays within a few ms of the truth near those limits; whole LLM streams run
/// for seconds to minutes, so the range goes on, sparser, to 120 s. Fixed bounds (not per run) so that series
/// of different runs, shards and replicas add up with `sum by (le)`.
pub const LATENCY_BUCKETS_SECONDS: [f64; 33] = [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.125,
    0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 45.0,
    60.0, 120.0,
];

/// [`LATENCY_BUCKETS_SECONDS`] in microseconds, the unit of the run's latency histograms.
pub fn bucket_bounds_us() -> Vec<u64> {
    LATENCY_BUCKETS_SECONDS
        .iter()
        .map(|s| (s * 1_000_000.0).round() as u64)
        .collect()
}

/// The `class` label of a request's status class: the HTTP classes users alert on, 429 apart (rate limiting
/// is often expected), and transport failures folded into a few kinds so the label stays low-cardinality.
pub fn class_label(class: StatusClass) -> &'static str {
    match class {
        StatusClass::Success => "2xx",
        StatusClass::Redirect => "3xx",
        StatusClass::ClientError => "4xx",
        StatusClass::TooManyRequests => "429",
        StatusClass::ServerError => "5xx",
        StatusClass::Timeout => "timeout",
        StatusClass::ConnectRefused | StatusClass::Reset | StatusClass::Other => "connection_error",
        StatusClass::Parse | StatusClass::StreamCut => "protocol_error",
        StatusClass::Informational | StatusClass::InvalidStatus => "other_status",
    }
}

/// A planned fault window on the load clock.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// The window's label (the `window` label of `harness_fault_window_active`).
    pub label: String,
    /// When it opens, since the start of the load.
    pub start: Duration,
    /// When it closes (exclusive).
    pub end: Duration,
}

impl FaultWindow {
    /// Whether the window is open at `at` on the load clock.
    pub fn active_at(&self, at: Duration) -> bool {
        self.start <= at && at < self.end
    }
}

/// Where a run is (the `phase` label of `harness_run_phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Before the load starts (the proxy starting).
    Starting,
    /// Load running, within the leak verdicts' warm-up.
    Warmup,
    /// Load running, after the warm-up.
    Load,
    /// Load over; the proxy kept running for the drain check, results being collected.
    Drain,
    /// Results written.
    Done,
}

impl RunPhase {
    /// Every phase, in order.
    pub const ALL: [RunPhase; 5] = [
        RunPhase::Starting,
        RunPhase::Warmup,
        RunPhase::Load,
        RunPhase::Drain,
        RunPhase::Done,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Warmup => "warmup",
            RunPhase::Load => "load",
            RunPhase::Drain => "drain",
            RunPhase::Done => "done",
        }
    }

    /// The phase at `elapsed` into the load, with a leak warm-up of `warmup`.
    pub fn during_load(elapsed: Duration, warmup: Duration) -> RunPhase {
        if elapsed < warmup {
            RunPhase::Warmup
        } else {
            RunPhase::Load
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_ascend_from_1ms_to_120s_densest_between_10_and_500ms() {
        let b = LATENCY_BUCKETS_SECONDS;
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        assert_eq!((b[0], b[b.len() - 1]), (0.001, 120.0));
        let dense = b.iter().filter(|&&s| (0.01..=0.5).contains(&s)).count();
        let below = b.iter().filter(|&&s| s < 0.01).count();
        let above = b.iter().filter(|&&s| s > 0.5).count();
        assert!(
            dense > below + 8 && dense > above,
            "{dense} {below} {above}"
        );
        for limit in [0.05, 0.1, 0.2] {
            assert!(
                b.contains(&limit),
                "the usual limit {limit}s is a bucket bound"
            );
        }
        assert_eq!(bucket_bounds_us()[..3], [1_000, 2_500, 5_000]);
        assert_eq!(bucket_bounds_us()[b.len() - 1], 120_000_000);
    }

    #[test]
    fn status_classes_map_to_few_labels() {
        let cases = [
            (StatusClass::Success, "2xx"),
            (StatusClass::ClientError, "4xx"),
            (StatusClass::TooManyRequests, "429"),
            (StatusClass::ServerError, "5xx"),
            (StatusClass::Timeout, "timeout"),
            (StatusClass::ConnectRefused, "connection_error"),
            (StatusClass::Reset, "connection_error"),
            (StatusClass::Other, "connection_error"),
            (StatusClass::StreamCut, "protocol_error"),
            (StatusClass::Parse, "protocol_error"),
            (StatusClass::Redirect, "3xx"),
            (StatusClass::InvalidStatus, "other_status"),
            (StatusClass::Informational, "other_status"),
        ];
        for (class, label) in cases {
            assert_eq!(class_label(class), label, "{class:?}");
        }
        let distinct: std::collections::BTreeSet<_> =
            StatusClass::ALL.iter().map(|c| class_label(*c)).collect();
        assert_eq!(distinct.len(), 9);
    }

    #[test]
    fn windows_and_phases_follow_the_load_clock() {
        let s = Duration::from_secs;
        let window = FaultWindow {
            label: "k1 down".into(),
            start: s(2),
            end: s(5),
        };
        let cases = [(s(1), false), (s(2), true), (s(4), true), (s(5), false)];
        for (at, active) in cases {
            assert_eq!(window.active_at(at), active, "{at:?}");
        }
        let phases = [
            (s(0), s(3), RunPhase::Warmup),
            (s(3), s(3), RunPhase::Load),
            (s(9), s(0), RunPhase::Load),
        ];
        for (elapsed, warmup, phase) in phases {
            assert_eq!(RunPhase::during_load(elapsed, warmup), phase);
        }
    }
}
