//! How the proxy spread its traffic over its keys, as the upstream saw it, and whether the key it *said* it
//! used (`X-Key-Used`) is the key the upstream actually received.
//!
//! Fairness is Jain's index `(Σx)² / (n·Σx²)` over the keys that were *eligible* — the caller decides which
//! (a key that was revoked or rate limited on purpose in the scenario should not count against the proxy).
//! 1 means perfectly even; `1/n` means one key took everything.

use crate::counts::LedgerCounts;
use mock_upstream::{KeyState, MockConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One key's part of the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyShare {
    /// Key id.
    pub key: String,
    /// Requests the upstream received with it.
    pub requests: u64,
    /// `requests` / all requests of all keys (0 when there were none).
    pub share: f64,
    /// Whether it counts for fairness.
    pub eligible: bool,
}

/// The per-key distribution of upstream traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDistribution {
    /// Requests over every key, eligible or not.
    pub total_requests: u64,
    /// Every key seen by the upstream plus every eligible key (eligible keys never used show 0 requests).
    pub keys: Vec<KeyShare>,
    /// Jain's index over the eligible keys; `None` with no eligible key or no request on any of them.
    pub fairness: Option<f64>,
}

/// Jain's fairness index of `values`: 1 when all equal, `1/n` when one value holds everything.
/// `None` for an empty slice or when every value is zero (fairness of nothing is undefined, not perfect).
pub fn jain_index(values: &[f64]) -> Option<f64> {
    let sum: f64 = values.iter().sum();
    let sum_of_squares: f64 = values.iter().map(|v| v * v).sum();
    (!values.is_empty() && sum_of_squares > 0.0)
        .then(|| sum * sum / (values.len() as f64 * sum_of_squares))
}

/// The keys a fair proxy should spread load over, by the mock's configuration: the active ones (revoked and
/// out-of-credit keys are left out). Keys the scenario rate limits or breaks on purpose during the run are the
/// caller's to remove.
pub fn eligible_keys(config: &MockConfig) -> Vec<String> {
    config
        .keys
        .iter()
        .filter(|key| key.state == KeyState::Active)
        .map(|key| key.id.clone())
        .collect()
}

/// Per-key shares of `counts` and Jain's index over the `eligible` key ids.
pub fn key_distribution(counts: &LedgerCounts, eligible: &[String]) -> KeyDistribution {
    let eligible: BTreeSet<&str> = eligible.iter().map(String::as_str).collect();
    let total_requests: u64 = counts.values().map(|c| c.requests).sum();
    let ids: BTreeSet<&str> = counts
        .keys()
        .map(String::as_str)
        .chain(eligible.iter().copied())
        .collect();
    let keys: Vec<KeyShare> = ids
        .into_iter()
        .map(|id| {
            let requests = counts.get(id).map_or(0, |c| c.requests);
            KeyShare {
                key: id.to_string(),
                requests,
                share: ratio(requests, total_requests),
                eligible: eligible.contains(id),
            }
        })
        .collect();
    let eligible_requests: Vec<f64> = keys
        .iter()
        .filter(|k| k.eligible)
        .map(|k| k.requests as f64)
        .collect();
    KeyDistribution {
        total_requests,
        fairness: jain_index(&eligible_requests),
        keys,
    }
}

/// One key in the reported-vs-seen comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyReport {
    /// Key id.
    pub key: String,
    /// Client responses whose `X-Key-Used` named this key.
    pub reported: u64,
    /// Successful (2xx) responses the upstream served with this key.
    pub seen: u64,
    /// `reported` / all reported.
    pub reported_share: f64,
    /// `seen` / all seen.
    pub seen_share: f64,
}

/// The keys the proxy reported against the keys the upstream saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyReportComparison {
    /// Every key reported or seen.
    pub keys: Vec<KeyReport>,
    /// `1 − total variation distance` between the reported and seen shares: 1 when the proxy's reports match the
    /// upstream exactly, 0 when they are disjoint. `None` when either side is empty.
    pub agreement: Option<f64>,
    /// Keys the proxy reported but on which the upstream never served a success (a header that lies).
    pub phantom_keys: Vec<String>,
}

/// Compare `reported` (`X-Key-Used` value → count, from **successful** client responses) with the successes the
/// upstream served per key. Shares are compared rather than counts, so requests the client did not count
/// (health checks, a warm-up) only matter in proportion.
pub fn compare_reported_keys(
    reported: &BTreeMap<String, u64>,
    seen: &LedgerCounts,
) -> KeyReportComparison {
    let seen: BTreeMap<&str, u64> = seen
        .iter()
        .map(|(id, c)| (id.as_str(), c.successes))
        .filter(|(_, n)| *n > 0)
        .collect();
    let reported_total: u64 = reported.values().sum();
    let seen_total: u64 = seen.values().sum();
    let ids: BTreeSet<&str> = reported
        .keys()
        .map(String::as_str)
        .chain(seen.keys().copied())
        .collect();
    let keys: Vec<KeyReport> = ids
        .into_iter()
        .map(|id| {
            let (reported, seen) = (
                reported.get(id).copied().unwrap_or(0),
                seen.get(id).copied().unwrap_or(0),
            );
            KeyReport {
                key: id.to_string(),
                reported,
                seen,
                reported_share: ratio(reported, reported_total),
                seen_share: ratio(seen, seen_total),
            }
        })
        .collect();
    let distance: f64 = keys
        .iter()
        .map(|k| (k.reported_share - k.seen_share).abs())
        .sum::<f64>()
        / 2.0;
    let agreement = (reported_total > 0 && seen_total > 0).then_some(1.0 - distance);
    let phantom_keys = keys
        .iter()
        .filter(|k| k.reported > 0 && k.seen == 0)
        .map(|k| k.key.clone())
        .collect();
    KeyReportComparison {
        keys,
        agreement,
        phantom_keys,
    }
}

/// `reported` (`X-Key-Used` value → count) with the proxy's own key names translated to the mock's ids by
/// `key_names` (proxy name → mock id; names not listed stay as they are, counts of names mapping to one id add
/// up), so a proxy that calls `key1` `key-1` is compared on what it did, not on how it spells it.
pub fn rename_reported_keys(
    reported: &BTreeMap<String, u64>,
    key_names: &BTreeMap<String, String>,
) -> BTreeMap<String, u64> {
    let mut renamed = BTreeMap::new();
    for (name, count) in reported {
        let id = key_names.get(name).unwrap_or(name);
        *renamed.entry(id.clone()).or_insert(0) += count;
    }
    renamed
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::KeyCounts;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn counts(pairs: &[(&str, u64)]) -> LedgerCounts {
        pairs
            .iter()
            .map(|(id, n)| {
                (
                    id.to_string(),
                    KeyCounts {
                        requests: *n,
                        successes: *n,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn jain_index_table() {
        let cases: [(&[f64], Option<f64>); 6] = [
            (&[], None),
            (&[0.0, 0.0], None),
            (&[5.0], Some(1.0)),
            (&[10.0, 10.0, 10.0], Some(1.0)),
            (&[30.0, 0.0, 0.0], Some(1.0 / 3.0)),
            (&[1.0, 2.0, 3.0], Some(36.0 / 42.0)),
        ];
        for (values, expected) in cases {
            let got = jain_index(values);
            assert_eq!(got.is_some(), expected.is_some(), "{values:?}");
            if let (Some(got), Some(expected)) = (got, expected) {
                assert!(close(got, expected), "{values:?}: {got} != {expected}");
            }
        }
    }

    #[test]
    fn distribution_table() {
        // (ledger counts, eligible, expected fairness, expected number of listed keys)
        type Case<'a> = (&'a [(&'a str, u64)], &'a [&'a str], Option<f64>, usize);
        let cases: [Case; 5] = [
            (
                &[("k1", 100), ("k2", 100), ("k3", 100)],
                &["k1", "k2", "k3"],
                Some(1.0),
                3,
            ),
            // First-key-only: the unused keys do not even appear in the ledger, yet they were eligible.
            (&[("k1", 300)], &["k1", "k2", "k3"], Some(1.0 / 3.0), 3),
            // A key excluded on purpose (revoked in the scenario) does not count.
            (
                &[("k1", 100), ("k2", 100), ("k3", 0)],
                &["k1", "k2"],
                Some(1.0),
                3,
            ),
            (&[("k1", 10)], &[], None, 1),
            (&[], &["k1"], None, 1),
        ];
        for (ledger, eligible, fairness, listed) in cases {
            let d = key_distribution(&counts(ledger), &ids(eligible));
            assert_eq!(d.keys.len(), listed, "{ledger:?}");
            match (d.fairness, fairness) {
                (Some(got), Some(want)) => assert!(close(got, want), "{ledger:?}: {got}"),
                (got, want) => assert_eq!(got, want, "{ledger:?}"),
            }
        }
        let d = key_distribution(&counts(&[("k1", 75), ("_any", 25)]), &ids(&["k1"]));
        assert!(close(
            d.keys.iter().find(|k| k.key == "k1").unwrap().share,
            0.75
        ));
        assert!(!d.keys.iter().find(|k| k.key == "_any").unwrap().eligible);
    }

    #[test]
    fn eligible_keys_are_the_active_ones() {
        use mock_upstream::KeyConfig;
        let key = |id: &str, state| KeyConfig {
            id: id.into(),
            secret: format!("sk-{id}"),
            state,
            ..Default::default()
        };
        let config = MockConfig {
            keys: vec![
                key("k1", KeyState::Active),
                key("k2", KeyState::Revoked),
                key("k3", KeyState::OutOfCredit),
                key("k4", KeyState::Active),
            ],
            ..Default::default()
        };
        assert_eq!(eligible_keys(&config), ids(&["k1", "k4"]));
    }

    #[test]
    fn key_names_table() {
        type Case<'a> = (
            &'a [(&'a str, u64)],
            &'a [(&'a str, &'a str)],
            &'a [(&'a str, u64)],
        );
        let cases: [Case; 4] = [
            // The proxy's own spelling becomes the mock's id.
            (
                &[("key-1", 10), ("key-2", 5)],
                &[("key-1", "key1"), ("key-2", "key2")],
                &[("key1", 10), ("key2", 5)],
            ),
            // Unlisted names are kept (and still show up as phantom keys when the mock never served them).
            (
                &[("key-1", 10), ("other", 1)],
                &[("key-1", "key1")],
                &[("key1", 10), ("other", 1)],
            ),
            // Two names for one key add up, also with the id itself.
            (
                &[("a", 2), ("b", 3), ("key1", 1)],
                &[("a", "key1"), ("b", "key1")],
                &[("key1", 6)],
            ),
            (&[("key1", 4)], &[], &[("key1", 4)]),
        ];
        for (reported, names, expected) in cases {
            let owned = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
                pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
            };
            let names: BTreeMap<String, String> = names
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            assert_eq!(
                rename_reported_keys(&owned(reported), &names),
                owned(expected),
                "{reported:?}"
            );
        }
        // Renamed, a proxy naming its keys its own way agrees fully with the mock.
        let reported = BTreeMap::from([("key-1".to_string(), 50), ("key-2".to_string(), 50)]);
        let seen = counts(&[("key1", 100), ("key2", 100)]);
        let names = BTreeMap::from([
            ("key-1".to_string(), "key1".to_string()),
            ("key-2".to_string(), "key2".to_string()),
        ]);
        assert_eq!(compare_reported_keys(&reported, &seen).agreement, Some(0.0));
        let c = compare_reported_keys(&rename_reported_keys(&reported, &names), &seen);
        assert_eq!((c.agreement, c.phantom_keys.len()), (Some(1.0), 0));
    }

    #[test]
    fn reported_vs_seen_table() {
        // (reported, seen successes, expected agreement, expected phantom keys)
        type Case<'a> = (
            &'a [(&'a str, u64)],
            &'a [(&'a str, u64)],
            Option<f64>,
            &'a [&'a str],
        );
        let cases: [Case; 5] = [
            (
                &[("k1", 50), ("k2", 50)],
                &[("k1", 100), ("k2", 100)],
                Some(1.0),
                &[],
            ),
            // The proxy always claims k1 while traffic really went round-robin.
            (&[("k1", 100)], &[("k1", 50), ("k2", 50)], Some(0.5), &[]),
            // The proxy reports a key the upstream never served.
            (&[("k9", 10)], &[("k1", 10)], Some(0.0), &["k9"]),
            (&[], &[("k1", 10)], None, &[]),
            (&[("k1", 10)], &[("k1", 0)], None, &["k1"]),
        ];
        for (reported, seen, agreement, phantom) in cases {
            let reported: BTreeMap<String, u64> =
                reported.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            let c = compare_reported_keys(&reported, &counts(seen));
            match (c.agreement, agreement) {
                (Some(got), Some(want)) => assert!(close(got, want), "{reported:?}: {got}"),
                (got, want) => assert_eq!(got, want, "{reported:?}"),
            }
            assert_eq!(c.phantom_keys, ids(phantom), "{reported:?}");
        }
    }
}
