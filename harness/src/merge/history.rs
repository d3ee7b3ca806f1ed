//! The shards' per-second histories lined up on the wall clock and added (pure).
//!
//! Why the wall clock: the shards ran on different machines whose load clocks started a few milliseconds (or,
//! started late, seconds) apart; the second from 12:00:05 to 12:00:06 is the same second for all of them.
//! Each logged interval goes to the merged second its end falls in (rounded to the nearest second of the merged
//! load clock, which starts at the earliest shard's start), and the seconds' histograms and counts are added
//! — exact, bucket for bucket, whatever the number of shards.

use load_stats::interval_log::{IntervalCounts, LoggedInterval};
use load_stats::LatencyHistogram;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// One second of the merged run.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedSecond {
    /// End of the second on the merged load clock (1 s, 2 s, ...).
    pub end: Duration,
    /// Latency of every request that finished in it, all shards.
    pub latency: LatencyHistogram,
    /// Its counts, all shards (users summed).
    pub counts: IntervalCounts,
}

/// The shards' intervals added second by second, from `origin` (the merged load's start); seconds in which
/// no shard closed an interval are absent.
pub fn align(shards: &[Vec<LoggedInterval>], origin: SystemTime) -> Vec<MergedSecond> {
    let mut seconds: BTreeMap<u64, MergedSecond> = BTreeMap::new();
    for interval in shards.iter().flatten() {
        let end = interval.start + interval.duration;
        let offset = end.duration_since(origin).unwrap_or_default().as_secs_f64();
        let second = (offset.round() as u64).max(1);
        let merged = seconds.entry(second).or_insert_with(|| MergedSecond {
            end: Duration::from_secs(second),
            latency: LatencyHistogram::aggregate(),
            counts: IntervalCounts::default(),
        });
        merged.latency.add(&interval.latency);
        merged.counts.merge(&interval.counts);
    }
    seconds.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use load_stats::interval_log::ClassCounts;
    use load_stats::StatusClass;

    fn interval(start_ms: u64, duration_ms: u64, latencies_ms: &[u64]) -> LoggedInterval {
        let mut latency = LatencyHistogram::aggregate();
        for &ms in latencies_ms {
            latency.record(Duration::from_millis(ms));
        }
        let mut counts = IntervalCounts {
            users: 2,
            ..Default::default()
        };
        counts.classes.insert(
            StatusClass::Success,
            ClassCounts {
                requests: latencies_ms.len() as u64,
                failures: 0,
            },
        );
        LoggedInterval {
            start: SystemTime::UNIX_EPOCH + Duration::from_millis(start_ms),
            duration: Duration::from_millis(duration_ms),
            latency,
            counts,
        }
    }

    #[test]
    fn intervals_add_up_on_the_wall_clock_second_they_end_in() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        // Shard A starts on time; shard B 30 ms later; its last interval is a partial 0.2 s one.
        let a = vec![
            interval(1_000_000, 1000, &[5, 6]),
            interval(1_001_000, 1000, &[7]),
        ];
        let b = vec![
            interval(1_000_030, 1001, &[9]),
            interval(1_001_031, 999, &[3, 4, 8]),
            interval(1_002_030, 200, &[1]),
        ];
        let merged = align(&[a.clone(), b.clone()], origin);
        let got: Vec<(u64, u64, u32)> = merged
            .iter()
            .map(|s| (s.end.as_secs(), s.latency.count(), s.counts.users))
            .collect();
        // The partial interval ends at 2.23 s: second 2, beside the full seconds ending there.
        assert_eq!(got, [(1, 3, 4), (2, 5, 6)]);
        let mut all = LatencyHistogram::aggregate();
        for i in a.iter().chain(&b) {
            all.add(&i.latency);
        }
        let mut sum = LatencyHistogram::aggregate();
        for s in &merged {
            sum.add(&s.latency);
        }
        assert!(
            sum.same_counts(&all),
            "every sample lands in exactly one second"
        );
        assert_eq!(merged[1].counts.classes[&StatusClass::Success].requests, 5);
        assert!(align(&[], origin).is_empty());
    }
}
