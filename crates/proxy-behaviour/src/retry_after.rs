//! Retry-After compliance. The mock remembers, per key, when it told the client to wait (`retry-after`,
//! `retry-after-ms`) and classifies every request that arrives on that key inside the window: a **race** when it
//! arrived less than the mock's grace (default 250 ms) after the window opened — a concurrent proxy had it on the
//! wire before the 429 could reach it — else a **violation**. Only violations count against the limit: a correct
//! proxy with twenty requests in flight gets a burst of races, not twenty violations. The depth histogram of all
//! in-window arrivals shows which it was at a glance (a burst under 250 ms, or arrivals spread to the window's
//! end).

use crate::counts::{total, LedgerCounts};
use mock_upstream::RetryDepthHistogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Retry-After races and violations over a span of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryAfterCompliance {
    /// Requests sent on a key inside its retry window at least the grace after it opened, over every key.
    pub violations: u64,
    /// Requests that arrived inside a retry window within the grace (in flight when the 429 was written).
    #[serde(default)]
    pub races: u64,
    /// Every in-window arrival (races and violations) by depth into its window.
    #[serde(default)]
    pub depths: RetryDepthHistogram,
    /// The mock's grace separating races from violations (`None` when unknown).
    #[serde(
        default,
        rename = "grace_ms",
        with = "crate::serde_units::optional_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub grace: Option<Duration>,
    /// 429 responses the upstream served (the opportunities to violate).
    pub rate_limited: u64,
    /// Violations per key id, only keys with at least one.
    pub per_key: BTreeMap<String, u64>,
}

impl RetryAfterCompliance {
    /// Whether the proxy stayed within `max_violations` (races do not count).
    pub fn complies(&self, max_violations: u64) -> bool {
        self.violations <= max_violations
    }

    /// The same, knowing the mock's grace (shown beside the races).
    pub fn with_grace(self, grace: Duration) -> Self {
        RetryAfterCompliance {
            grace: Some(grace),
            ..self
        }
    }

    /// Races and the depth histogram in words, for a verdict's detail line.
    pub fn describe_races(&self) -> String {
        let grace = self
            .grace
            .map(|g| format!(" (within {} ms of the 429)", g.as_millis()))
            .unwrap_or_default();
        let depths = match self.depths.total() {
            0 => "none".to_string(),
            _ => self.depths.describe(),
        };
        format!(
            "races {}{grace}; in-window arrivals by depth: {depths}",
            self.races
        )
    }
}

/// Races and violations in `counts` (one snapshot's, or the difference over a window); the grace is unknown
/// until [`RetryAfterCompliance::with_grace`] names the mock's.
pub fn retry_after_compliance(counts: &LedgerCounts) -> RetryAfterCompliance {
    let sum = total(counts);
    let per_key = counts
        .iter()
        .filter(|(_, c)| c.retry_after_violations > 0)
        .map(|(id, c)| (id.clone(), c.retry_after_violations))
        .collect();
    RetryAfterCompliance {
        violations: sum.retry_after_violations,
        races: sum.retry_after_races,
        depths: sum.retry_window_depths,
        grace: None,
        rate_limited: sum.rate_limited,
        per_key,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{ledger_counts, tests::snapshot};

    #[test]
    fn compliance_table() {
        // (ledger: key, statuses, violations), allowance, expected total, expected keys with violations, complies
        type Case<'a> = (
            &'a [(&'a str, &'a [(&'a str, u64)], u64)],
            u64,
            u64,
            &'a [&'a str],
            bool,
        );
        let cases: [Case; 4] = [
            (
                &[
                    ("k1", &[("200", 10)], 0),
                    ("k2", &[("429", 1), ("200", 9)], 0),
                ],
                0,
                0,
                &[],
                true,
            ),
            (
                &[("k1", &[("200", 10)], 0), ("k2", &[("429", 40)], 39)],
                0,
                39,
                &["k2"],
                false,
            ),
            (
                &[("k1", &[("429", 3)], 2), ("k2", &[("429", 3)], 1)],
                3,
                3,
                &["k1", "k2"],
                true,
            ),
            (&[], 0, 0, &[], true),
        ];
        for (ledger, allowance, violations, keys, complies) in cases {
            let result = retry_after_compliance(&ledger_counts(&snapshot(ledger)));
            assert_eq!(result.violations, violations, "{ledger:?}");
            assert_eq!(
                result.per_key.keys().collect::<Vec<_>>(),
                keys.iter().collect::<Vec<_>>(),
                "{ledger:?}"
            );
            assert_eq!(result.complies(allowance), complies, "{ledger:?}");
        }
        let rate_limited =
            retry_after_compliance(&ledger_counts(&snapshot(cases[2].0))).rate_limited;
        assert_eq!(rate_limited, 6);
    }

    #[test]
    fn races_do_not_count_as_violations() {
        let mut ledger = snapshot(&[("k1", &[("429", 2), ("200", 30)], 1)]);
        let k1 = ledger.keys.get_mut("k1").unwrap();
        k1.retry_after_races = 19;
        k1.retry_window_depths.counts = [19, 0, 0, 1, 0, 0];
        let result =
            retry_after_compliance(&ledger_counts(&ledger)).with_grace(Duration::from_millis(250));
        assert_eq!((result.races, result.violations), (19, 1));
        assert!(result.complies(1));
        assert!(!result.complies(0));
        assert_eq!(
            result.describe_races(),
            "races 19 (within 250 ms of the 429); in-window arrivals by depth: <250ms: 19, <2s: 1"
        );
        let quiet = retry_after_compliance(&ledger_counts(&snapshot(&[])));
        assert_eq!(
            quiet.describe_races(),
            "races 0; in-window arrivals by depth: none"
        );
    }
}
