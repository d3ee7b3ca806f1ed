//! Prometheus text exposition at `/metrics`: requests by key/route/status and faults by kind (both read from
//! the ledger, so the two never disagree) plus a handler-latency histogram per route.

use crate::ledger::LedgerSnapshot;
use crate::route::Route;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Time from request arrival to response head, per route.
#[derive(Default)]
pub(crate) struct LatencyHistograms {
    routes: [Histogram; Route::ALL.len()],
}

impl LatencyHistograms {
    pub(crate) fn observe(&self, route: Route, elapsed: Duration) {
        let histogram = &self.routes[route.index()];
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        for histogram in &self.routes {
            histogram
                .buckets
                .iter()
                .chain([&histogram.count, &histogram.sum_micros])
                .for_each(|c| c.store(0, Ordering::Relaxed));
        }
    }
}

/// Render the exposition text.
pub(crate) fn render(
    ledger: &LedgerSnapshot,
    latency: &LatencyHistograms,
    open_connections: u64,
) -> String {
    let mut out = String::new();
    out.push_str("# HELP mock_open_connections Client connections currently open.\n");
    out.push_str("# TYPE mock_open_connections gauge\n");
    let _ = writeln!(out, "mock_open_connections {open_connections}");
    out.push_str("# HELP mock_requests_total Requests by key id, route and status (none = connection dropped).\n");
    out.push_str("# TYPE mock_requests_total counter\n");
    for (key, entry) in &ledger.keys {
        for (route, statuses) in &entry.requests {
            for (status, count) in statuses {
                let _ = writeln!(out, "mock_requests_total{{key=\"{key}\",route=\"{route}\",status=\"{status}\"}} {count}");
            }
        }
    }
    out.push_str("# HELP mock_faults_total Faults injected by key id and kind.\n# TYPE mock_faults_total counter\n");
    for (key, entry) in &ledger.keys {
        for (kind, count) in &entry.faults {
            let _ = writeln!(
                out,
                "mock_faults_total{{key=\"{key}\",kind=\"{kind}\"}} {count}"
            );
        }
    }
    out.push_str("# HELP mock_retry_after_violations_total Requests that arrived inside a retry window at least the grace after it opened.\n");
    out.push_str("# TYPE mock_retry_after_violations_total counter\n");
    for (key, entry) in &ledger.keys {
        let _ = writeln!(
            out,
            "mock_retry_after_violations_total{{key=\"{key}\"}} {}",
            entry.retry_after_violations
        );
    }
    out.push_str("# HELP mock_retry_after_races_total Requests that arrived inside a retry window less than the grace after it opened (already on the wire).\n");
    out.push_str("# TYPE mock_retry_after_races_total counter\n");
    for (key, entry) in &ledger.keys {
        let _ = writeln!(
            out,
            "mock_retry_after_races_total{{key=\"{key}\"}} {}",
            entry.retry_after_races
        );
    }
    render_latency(&mut out, latency);
    out
}

fn render_latency(out: &mut String, latency: &LatencyHistograms) {
    out.push_str(
        "# HELP mock_request_duration_seconds Time from request arrival to response head.\n",
    );
    out.push_str("# TYPE mock_request_duration_seconds histogram\n");
    for route in Route::ALL {
        let histogram = &latency.routes[route.index()];
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&histogram.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "mock_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
        }
        let count = histogram.count.load(Ordering::Relaxed);
        let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "mock_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "mock_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "mock_request_duration_seconds_count{{route=\"{route}\"}} {count}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histograms = LatencyHistograms::default();
        histograms.observe(Route::Models, Duration::from_micros(500));
        histograms.observe(Route::Models, Duration::from_millis(30));
        histograms.observe(Route::Models, Duration::from_secs(20));
        let text = render(&LedgerSnapshot::default(), &histograms, 0);
        assert!(
            text.contains(
                "mock_request_duration_seconds_bucket{route=\"models\",le=\"0.001\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("mock_request_duration_seconds_bucket{route=\"models\",le=\"0.05\"} 2\n")
        );
        assert!(
            text.contains("mock_request_duration_seconds_bucket{route=\"models\",le=\"+Inf\"} 3\n")
        );
        histograms.reset();
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(
            "k1".to_string(),
            crate::KeyLedgerSnapshot {
                retry_after_violations: 2,
                retry_after_races: 7,
                ..Default::default()
            },
        );
        let text = render(
            &LedgerSnapshot::from_keys(Duration::ZERO, keys),
            &histograms,
            0,
        );
        assert!(
            text.contains("mock_retry_after_races_total{key=\"k1\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("mock_retry_after_violations_total{key=\"k1\"} 2\n"));
        assert!(render(&LedgerSnapshot::default(), &histograms, 0)
            .contains("mock_request_duration_seconds_count{route=\"models\"} 0\n"));
    }
}
