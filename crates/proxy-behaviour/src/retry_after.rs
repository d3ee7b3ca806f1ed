//! Retry-After compliance. The mock remembers, per key, until when it told the client to wait (`retry-after`,
//! `retry-after-ms`) and counts every request that arrives on that key earlier as a violation. A compliant proxy
//! rests the key and sends nothing on it until the window passes; a handful of violations can still come from
//! requests that were already on the wire when the 429 was sent, hence a configurable allowance.

use crate::counts::{total, LedgerCounts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Retry-After violations over a span of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryAfterCompliance {
    /// Requests sent on a key inside its announced retry window, over every key.
    pub violations: u64,
    /// 429 responses the upstream served (the opportunities to violate).
    pub rate_limited: u64,
    /// Violations per key id, only keys with at least one.
    pub per_key: BTreeMap<String, u64>,
}

impl RetryAfterCompliance {
    /// Whether the proxy stayed within `max_violations`.
    pub fn complies(&self, max_violations: u64) -> bool {
        self.violations <= max_violations
    }
}

/// Violations in `counts` (one snapshot's, or the difference over a window).
pub fn retry_after_compliance(counts: &LedgerCounts) -> RetryAfterCompliance {
    let sum = total(counts);
    let per_key = counts
        .iter()
        .filter(|(_, c)| c.retry_after_violations > 0)
        .map(|(id, c)| (id.clone(), c.retry_after_violations))
        .collect();
    RetryAfterCompliance {
        violations: sum.retry_after_violations,
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
}
