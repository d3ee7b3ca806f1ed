//! The upstream's view of each key, reduced from the mock's ledger to the few numbers the verdicts need.
//!
//! A verdict often concerns a span of the run (a fault window, the time after a peak), so besides reading one
//! [`LedgerSnapshot`] this module subtracts two of them: the harness takes a snapshot when a window opens and
//! another when it closes.
//!
//! Status classes: a *success* is any 2xx; a *failure* is what failover can hide — a 429, any 5xx (including
//! Anthropic's 529) or a dropped connection (`"none"`). Other 4xx (bad requests, unknown models) are neither:
//! the proxy is right to pass them through and no other key would do better.

use mock_upstream::{LedgerSnapshot, RetryDepthHistogram};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts of one key over some span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCounts {
    /// Requests the mock received with this key.
    pub requests: u64,
    /// 2xx responses.
    pub successes: u64,
    /// 429, 5xx and dropped connections.
    pub failures: u64,
    /// 429 responses (limiter, quota and injected).
    pub rate_limited: u64,
    /// Requests that arrived inside a retry window of this key at least the mock's grace after it opened.
    pub retry_after_violations: u64,
    /// Requests that arrived inside a retry window less than the grace after it opened (already on the wire).
    #[serde(default)]
    pub retry_after_races: u64,
    /// In-window arrivals (races and violations) by depth into the window.
    #[serde(default)]
    pub retry_window_depths: RetryDepthHistogram,
}

/// Counts per key id, as the mock names keys (configured ids, `_any`, `_unknown`).
pub type LedgerCounts = BTreeMap<String, KeyCounts>;

impl KeyCounts {
    /// `self - earlier`, never below zero (a ledger reset between the two snapshots must not wrap around).
    pub fn since(&self, earlier: &KeyCounts) -> KeyCounts {
        KeyCounts {
            requests: self.requests.saturating_sub(earlier.requests),
            successes: self.successes.saturating_sub(earlier.successes),
            failures: self.failures.saturating_sub(earlier.failures),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            retry_after_violations: self
                .retry_after_violations
                .saturating_sub(earlier.retry_after_violations),
            retry_after_races: self
                .retry_after_races
                .saturating_sub(earlier.retry_after_races),
            retry_window_depths: self.retry_window_depths.since(&earlier.retry_window_depths),
        }
    }
}

/// Whether a ledger status label (`"200"`, `"503"`, `"none"`) is a success (2xx).
pub fn is_success_status(label: &str) -> bool {
    label
        .parse::<u16>()
        .is_ok_and(|status| (200..300).contains(&status))
}

/// Whether a ledger status label is a failure that failover could hide: 429, 5xx or `"none"` (no response).
pub fn is_failure_status(label: &str) -> bool {
    match label.parse::<u16>() {
        Ok(status) => status == 429 || (500..600).contains(&status),
        Err(_) => label == "none",
    }
}

/// Per-key counts of one snapshot.
pub fn ledger_counts(ledger: &LedgerSnapshot) -> LedgerCounts {
    ledger
        .keys
        .iter()
        .map(|(id, key)| {
            let statuses = key.requests.values().flat_map(|by_status| by_status.iter());
            let (mut successes, mut failures) = (0, 0);
            for (label, count) in statuses {
                successes += if is_success_status(label) { *count } else { 0 };
                failures += if is_failure_status(label) { *count } else { 0 };
            }
            let counts = KeyCounts {
                requests: key.total_requests,
                successes,
                failures,
                rate_limited: key.rate_limited,
                retry_after_violations: key.retry_after_violations,
                retry_after_races: key.retry_after_races,
                retry_window_depths: key.retry_window_depths,
            };
            (id.clone(), counts)
        })
        .collect()
}

/// What happened between two snapshots of the same mock, per key (keys new in `after` count from zero).
pub fn counts_between(before: &LedgerSnapshot, after: &LedgerSnapshot) -> LedgerCounts {
    let before = ledger_counts(before);
    ledger_counts(after)
        .into_iter()
        .map(|(id, now)| {
            let delta = before.get(&id).map_or(now, |then| now.since(then));
            (id, delta)
        })
        .collect()
}

/// Sum of every key's counts.
pub fn total(counts: &LedgerCounts) -> KeyCounts {
    counts
        .values()
        .fold(KeyCounts::default(), |sum, key| KeyCounts {
            requests: sum.requests + key.requests,
            successes: sum.successes + key.successes,
            failures: sum.failures + key.failures,
            rate_limited: sum.rate_limited + key.rate_limited,
            retry_after_violations: sum.retry_after_violations + key.retry_after_violations,
            retry_after_races: sum.retry_after_races + key.retry_after_races,
            retry_window_depths: sum.retry_window_depths.plus(&key.retry_window_depths),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mock_upstream::{KeyLedgerSnapshot, Route};
    use std::time::Duration;

    /// A snapshot with one route per key and the given `(status label, count)` pairs; violations as given.
    /// `(key id, (status label, count) pairs, retry-after violations)`.
    pub(crate) type KeySpec<'a> = (&'a str, &'a [(&'a str, u64)], u64);

    pub(crate) fn snapshot(keys: &[KeySpec]) -> LedgerSnapshot {
        let keys = keys
            .iter()
            .map(|(id, statuses, violations)| {
                let by_status: BTreeMap<String, u64> =
                    statuses.iter().map(|(s, n)| (s.to_string(), *n)).collect();
                let key = KeyLedgerSnapshot {
                    total_requests: by_status.values().sum(),
                    rate_limited: by_status.get("429").copied().unwrap_or(0),
                    retry_after_violations: *violations,
                    requests: BTreeMap::from([(Route::ChatCompletions, by_status)]),
                    ..Default::default()
                };
                (id.to_string(), key)
            })
            .collect();
        LedgerSnapshot::from_keys(Duration::ZERO, keys)
    }

    #[test]
    fn status_classes_table() {
        let cases = [
            ("200", true, false),
            ("204", true, false),
            ("400", false, false),
            ("404", false, false),
            ("429", false, true),
            ("500", false, true),
            ("503", false, true),
            ("529", false, true),
            ("none", false, true),
            ("garbage", false, false),
        ];
        for (label, success, failure) in cases {
            assert_eq!(
                (is_success_status(label), is_failure_status(label)),
                (success, failure),
                "{label}"
            );
        }
    }

    #[test]
    fn counts_from_a_snapshot_and_between_two() {
        let before = snapshot(&[("k1", &[("200", 10), ("429", 2)], 1)]);
        let after = snapshot(&[
            ("k1", &[("200", 15), ("429", 5), ("400", 1)], 3),
            ("k2", &[("503", 4)], 0),
        ]);
        let now = ledger_counts(&after);
        assert_eq!(
            now["k1"],
            KeyCounts {
                requests: 21,
                successes: 15,
                failures: 5,
                rate_limited: 5,
                retry_after_violations: 3,
                ..Default::default()
            }
        );
        let delta = counts_between(&before, &after);
        assert_eq!(
            delta["k1"],
            KeyCounts {
                requests: 9,
                successes: 5,
                failures: 3,
                rate_limited: 3,
                retry_after_violations: 2,
                ..Default::default()
            }
        );
        assert_eq!(
            delta["k2"],
            KeyCounts {
                requests: 4,
                failures: 4,
                ..Default::default()
            }
        );
        assert_eq!(total(&delta).requests, 13);
        // Races and depths subtract like the other counters.
        let mut later = after.clone();
        let k1 = later.keys.get_mut("k1").unwrap();
        k1.retry_after_races = 5;
        k1.retry_window_depths.counts = [5, 0, 3, 0, 0, 0];
        let mut earlier = before.clone();
        let k1 = earlier.keys.get_mut("k1").unwrap();
        k1.retry_after_races = 2;
        k1.retry_window_depths.counts = [2, 0, 1, 0, 0, 0];
        let delta = counts_between(&earlier, &later)["k1"];
        assert_eq!(
            (delta.retry_after_races, delta.retry_window_depths.counts),
            (3, [3, 0, 2, 0, 0, 0])
        );
        assert_eq!(total(&ledger_counts(&later)).retry_window_depths.total(), 8);
        // A reset between the snapshots saturates instead of wrapping.
        assert_eq!(counts_between(&after, &before)["k1"], KeyCounts::default());
    }
}
