//! Failover masking: during a fault window, how much of the upstream's failure rate reached the client.
//!
//! `masking = 1 − client error rate / upstream error rate`. A proxy that retries failed attempts on another key
//! shows upstream failures but few client errors (masking near 1); a proxy that passes every failure through
//! shows the same rate on both sides (masking near 0); a proxy that makes things worse goes negative. Rates, not
//! counts, are compared, because failover multiplies upstream attempts per client request.

use crate::counts::{total, LedgerCounts};
use crate::distribution::ratio;
use serde::{Deserialize, Serialize};

/// Requests and failures on one side of the proxy over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Requests (client requests, or upstream attempts).
    pub requests: u64,
    /// Failures among them: 429, 5xx and transport errors (the classes failover can hide).
    pub errors: u64,
}

impl WindowCounts {
    /// `errors / requests`; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| ratio(self.errors, self.requests))
    }
}

/// The upstream side of a window: every key's attempts and failures in `counts` (usually [`crate::counts_between`]
/// the window's opening and closing snapshots).
pub fn upstream_window(counts: &LedgerCounts) -> WindowCounts {
    let sum = total(counts);
    WindowCounts {
        requests: sum.requests,
        errors: sum.failures,
    }
}

/// Masking measured over one fault window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverMasking {
    /// Which window (e.g. the timeline event's label).
    pub window: String,
    /// Client-side counts in the window.
    pub client: WindowCounts,
    /// Upstream-side counts in the window.
    pub upstream: WindowCounts,
    /// Client error rate.
    pub client_error_rate: Option<f64>,
    /// Upstream error rate.
    pub upstream_error_rate: Option<f64>,
    /// `1 − client rate / upstream rate`; `None` when either side had no requests or the upstream had no
    /// failures (nothing to mask, so nothing to judge).
    pub masking: Option<f64>,
}

impl FailoverMasking {
    /// "Masked": the client error rate is at most `1 − min_masking` of the upstream one. `None` when there was
    /// nothing to mask.
    pub fn is_masked(&self, min_masking: f64) -> Option<bool> {
        self.masking.map(|masking| masking >= min_masking)
    }
}

/// Masking in `window` from the client's and the upstream's counts.
pub fn failover_masking(
    window: &str,
    client: WindowCounts,
    upstream: WindowCounts,
) -> FailoverMasking {
    let (client_rate, upstream_rate) = (client.error_rate(), upstream.error_rate());
    let masking = match (client_rate, upstream_rate) {
        (Some(c), Some(u)) if u > 0.0 => Some(1.0 - c / u),
        _ => None,
    };
    FailoverMasking {
        window: window.to_string(),
        client,
        upstream,
        client_error_rate: client_rate,
        upstream_error_rate: upstream_rate,
        masking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{ledger_counts, tests::snapshot};

    fn w(requests: u64, errors: u64) -> WindowCounts {
        WindowCounts { requests, errors }
    }

    #[test]
    fn masking_table() {
        // (client, upstream, expected masking, masked at min 0.9)
        let cases = [
            // Reference behaviour: 1/6 of attempts fail upstream, every one retried elsewhere.
            (w(300, 0), w(350, 50), Some(1.0), Some(true)),
            // No failover: the client sees what the upstream served.
            (w(300, 50), w(300, 50), Some(0.0), Some(false)),
            // Partly masked.
            (w(100, 2), w(100, 20), Some(0.9), Some(true)),
            (w(100, 5), w(100, 20), Some(0.75), Some(false)),
            // Worse than the upstream.
            (w(100, 40), w(100, 20), Some(-1.0), Some(false)),
            // Nothing to mask / nothing measured.
            (w(100, 0), w(100, 0), None, None),
            (w(0, 0), w(100, 20), None, None),
        ];
        for (client, upstream, masking, masked) in cases {
            let result = failover_masking("k2 503", client, upstream);
            match (result.masking, masking) {
                (Some(got), Some(want)) => {
                    assert!((got - want).abs() < 1e-9, "{client:?} {upstream:?}: {got}")
                }
                (got, want) => assert_eq!(got, want, "{client:?} {upstream:?}"),
            }
            assert_eq!(result.is_masked(0.9), masked, "{client:?} {upstream:?}");
        }
    }

    #[test]
    fn upstream_window_counts_failures_not_client_mistakes() {
        let ledger = snapshot(&[
            ("k1", &[("200", 90), ("400", 5)], 0),
            ("k2", &[("503", 3), ("none", 1), ("429", 1)], 0),
        ]);
        assert_eq!(upstream_window(&ledger_counts(&ledger)), w(100, 5));
    }
}
