//! The ledger: what the client (usually the proxy under test) did to each key — requests by route and status,
//! tokens, 429s served, faults injected, and **Retry-After violations**: requests that arrived on a key while a
//! `retry-after` the mock had announced for that key was still running. Per-key state is bounded: counters are
//! fixed-size maps and the fault sequence is capped.

use crate::faults::FaultKind;
use crate::route::Route;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Status recorded when no HTTP response was sent (reset, close, hang).
pub const NO_RESPONSE: u16 = 0;

/// One injected fault in a key's sequence, for comparing two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Route of the request.
    pub route: Route,
    /// 0-based index of the request among this key's requests on this route.
    pub index: u64,
    /// What was injected.
    pub kind: FaultKind,
}

/// Ledger of one key, as served by `GET /__admin/ledger`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyLedgerSnapshot {
    /// Requests per route per status (`"none"` = the connection was dropped without a response).
    pub requests: BTreeMap<Route, BTreeMap<String, u64>>,
    /// All requests of this key.
    pub total_requests: u64,
    /// Estimated prompt tokens of admitted requests.
    pub input_tokens: u64,
    /// Generated tokens of successful responses.
    pub output_tokens: u64,
    /// 429 responses served (limiter, quota and injected).
    pub rate_limited: u64,
    /// Requests that arrived before a retry-after announced for this key had passed.
    pub retry_after_violations: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// The first `fault_sequence_cap` injected faults, in order.
    pub fault_sequence: Vec<FaultRecord>,
    /// True when more faults were injected than the sequence keeps.
    pub fault_sequence_truncated: bool,
}

/// Sums over every key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// Requests.
    pub requests: u64,
    /// 429 responses.
    pub rate_limited: u64,
    /// Retry-After violations.
    pub retry_after_violations: u64,
    /// Injected faults.
    pub faults: u64,
}

/// The body of `GET /__admin/ledger`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    /// Milliseconds since the mock started.
    pub uptime_ms: u64,
    /// Per key id (configured ids, `_any` for pooled keys, `_unknown` for rejected ones).
    pub keys: BTreeMap<String, KeyLedgerSnapshot>,
    /// Sums.
    pub totals: LedgerTotals,
}

impl LedgerSnapshot {
    /// Build from per-key snapshots, computing totals.
    pub fn from_keys(uptime: Duration, keys: BTreeMap<String, KeyLedgerSnapshot>) -> Self {
        let mut totals = LedgerTotals::default();
        for key in keys.values() {
            totals.requests += key.total_requests;
            totals.rate_limited += key.rate_limited;
            totals.retry_after_violations += key.retry_after_violations;
            totals.faults += key.faults.values().sum::<u64>();
        }
        LedgerSnapshot {
            uptime_ms: uptime.as_millis() as u64,
            keys,
            totals,
        }
    }
}

/// Live ledger of one key.
#[derive(Debug, Clone)]
pub(crate) struct KeyLedger {
    by_status: [BTreeMap<u16, u64>; Route::ALL.len()],
    input_tokens: u64,
    output_tokens: u64,
    rate_limited: u64,
    retry_after_violations: u64,
    faults: BTreeMap<FaultKind, u64>,
    fault_sequence: Vec<FaultRecord>,
    fault_sequence_cap: usize,
    fault_sequence_truncated: bool,
    retry_allowed_at: Duration,
}

impl KeyLedger {
    pub(crate) fn new(fault_sequence_cap: usize) -> Self {
        KeyLedger {
            by_status: Default::default(),
            input_tokens: 0,
            output_tokens: 0,
            rate_limited: 0,
            retry_after_violations: 0,
            faults: BTreeMap::new(),
            fault_sequence: Vec::new(),
            fault_sequence_cap,
            fault_sequence_truncated: false,
            retry_allowed_at: Duration::ZERO,
        }
    }

    /// A request arrived at `now`; counts a violation when an announced retry-after has not passed.
    pub(crate) fn arrival(&mut self, now: Duration) -> bool {
        let violation = now < self.retry_allowed_at;
        self.retry_after_violations += u64::from(violation);
        violation
    }

    /// A response telling the client to wait `retry_after` was sent at `now`.
    pub(crate) fn announce_retry_after(&mut self, now: Duration, retry_after: Duration) {
        self.retry_allowed_at = self.retry_allowed_at.max(now + retry_after);
    }

    /// The outcome of one request.
    pub(crate) fn record(
        &mut self,
        route: Route,
        status: u16,
        input_tokens: u64,
        output_tokens: u64,
    ) {
        *self.by_status[route.index()].entry(status).or_default() += 1;
        self.input_tokens += input_tokens;
        self.output_tokens += output_tokens;
        self.rate_limited += u64::from(status == 429);
    }

    /// A fault injected on the `index`-th request of this key on `route`.
    pub(crate) fn record_fault(&mut self, route: Route, index: u64, kind: FaultKind) {
        *self.faults.entry(kind).or_default() += 1;
        if self.fault_sequence.len() < self.fault_sequence_cap {
            self.fault_sequence.push(FaultRecord { route, index, kind });
        } else {
            self.fault_sequence_truncated = true;
        }
    }

    pub(crate) fn snapshot(&self) -> KeyLedgerSnapshot {
        let requests: BTreeMap<Route, BTreeMap<String, u64>> = Route::ALL
            .iter()
            .filter(|route| !self.by_status[route.index()].is_empty())
            .map(|route| {
                (
                    *route,
                    self.by_status[route.index()]
                        .iter()
                        .map(|(s, n)| (status_label(*s), *n))
                        .collect(),
                )
            })
            .collect();
        KeyLedgerSnapshot {
            total_requests: self.by_status.iter().flat_map(|m| m.values()).sum(),
            requests,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            rate_limited: self.rate_limited,
            retry_after_violations: self.retry_after_violations,
            faults: self.faults.clone(),
            fault_sequence: self.fault_sequence.clone(),
            fault_sequence_truncated: self.fault_sequence_truncated,
        }
    }
}

fn status_label(status: u16) -> String {
    if status == NO_RESPONSE {
        "none".to_string()
    } else {
        status.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    #[test]
    fn retry_after_violations_table() {
        // (announce at, retry after, arrivals, expected violations)
        let cases: [(u64, u64, &[u64], u64); 4] = [
            (10, 5, &[11, 14], 2),
            (10, 5, &[15, 16], 0),
            (10, 5, &[14, 20], 1),
            (10, 0, &[10], 0),
        ];
        for (announced, wait, arrivals, expected) in cases {
            let mut ledger = KeyLedger::new(10);
            ledger.announce_retry_after(secs(announced), secs(wait));
            arrivals.iter().for_each(|at| {
                ledger.arrival(secs(*at));
            });
            assert_eq!(
                ledger.snapshot().retry_after_violations,
                expected,
                "{announced}+{wait} {arrivals:?}"
            );
        }
    }

    #[test]
    fn counts_statuses_tokens_and_caps_the_fault_sequence() {
        let mut ledger = KeyLedger::new(2);
        ledger.record(Route::ChatCompletions, 200, 10, 5);
        ledger.record(Route::ChatCompletions, 429, 0, 0);
        ledger.record(Route::Messages, NO_RESPONSE, 0, 0);
        for index in 0..3 {
            ledger.record_fault(Route::Messages, index, FaultKind::TcpReset);
        }
        let snapshot = ledger.snapshot();
        assert_eq!(snapshot.total_requests, 3);
        assert_eq!(snapshot.requests[&Route::ChatCompletions]["429"], 1);
        assert_eq!(snapshot.requests[&Route::Messages]["none"], 1);
        assert_eq!(
            (
                snapshot.input_tokens,
                snapshot.output_tokens,
                snapshot.rate_limited
            ),
            (10, 5, 1)
        );
        assert_eq!(snapshot.faults[&FaultKind::TcpReset], 3);
        assert_eq!(snapshot.fault_sequence.len(), 2);
        assert!(snapshot.fault_sequence_truncated);
        let json = serde_json::to_string(&snapshot).unwrap();
        assert_eq!(
            serde_json::from_str::<KeyLedgerSnapshot>(&json).unwrap(),
            snapshot
        );
    }
}
