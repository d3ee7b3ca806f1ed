//! The ledger: what the client (usually the proxy under test) did to each key — requests by route and status,
//! tokens, 429s served, faults injected, and **Retry-After compliance**: requests that arrived on a key while a
//! `retry-after` the mock had announced for that key was still running. Per-key state is bounded: counters are
//! fixed-size maps and the fault sequence is capped.
//!
//! # Races and violations
//! A concurrent client has requests on the wire when the first 429 of a burst is written; those arrive inside
//! the new retry window although the client could not have known about it yet. So each key remembers when its
//! current window *opened* (the 429 that announced a wait while none was running; later 429s inside the window
//! push its end out but do not move the opening). An arrival inside the window at depth `now - opened` below
//! the grace (default [`DEFAULT_RETRY_AFTER_GRACE`]) is a **race**; at or past it, a **violation** — the client
//! had had the grace to learn about the window and sent anyway. Every in-window arrival, race or violation, is
//! also counted in a fixed-bucket depth histogram ([`RetryDepthHistogram`]), so "three requests in flight"
//! (all under 250 ms) reads differently from "ignores Retry-After for 5 s" (arrivals spread to the window's end).
//!
//! # Connections
//! A proxy that opens a new upstream connection (and TLS handshake) per request pays latency a pooled one does
//! not. Each connection is attributed to the key of its first provider request, and every later provider
//! request on it counts for that key too, whatever key it carries, so `requests_per_connection` near 1 flags
//! the missing pool. A connection still open across a ledger reset counts again from its next request.

use crate::faults::FaultKind;
use crate::route::Route;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Status recorded when no HTTP response was sent (reset, close, hang).
pub const NO_RESPONSE: u16 = 0;

/// How long after a retry window opens an arrival on the key still counts as a race rather than a violation.
pub const DEFAULT_RETRY_AFTER_GRACE: Duration = Duration::from_millis(250);

/// Upper bounds (ms, exclusive: the first bound is the default grace, so races and violations never share a bucket) of the depth buckets of [`RetryDepthHistogram`]; a last bucket takes the rest.
pub const RETRY_DEPTH_BOUNDS_MS: [u64; 5] = [250, 500, 1000, 2000, 5000];

/// Arrivals inside a retry window by depth (time since the window opened): `counts[i]` holds depths below
/// `RETRY_DEPTH_BOUNDS_MS[i]` (and at or above the previous bound); the last count holds 5 s and deeper.
/// Races and violations both land here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDepthHistogram {
    /// Arrivals per bucket, shallowest first (`RETRY_DEPTH_BOUNDS_MS.len() + 1` buckets).
    pub counts: [u64; RETRY_DEPTH_BOUNDS_MS.len() + 1],
}

impl RetryDepthHistogram {
    /// Counts one arrival at `depth` into its window.
    pub fn record(&mut self, depth: Duration) {
        let bucket = RETRY_DEPTH_BOUNDS_MS
            .iter()
            .position(|bound| depth < Duration::from_millis(*bound))
            .unwrap_or(RETRY_DEPTH_BOUNDS_MS.len());
        self.counts[bucket] += 1;
    }

    /// Arrivals counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Bucket-wise sum.
    pub fn plus(&self, other: &RetryDepthHistogram) -> RetryDepthHistogram {
        let mut sum = *self;
        sum.counts
            .iter_mut()
            .zip(other.counts)
            .for_each(|(a, b)| *a += b);
        sum
    }

    /// Bucket-wise `self - earlier`, never below zero.
    pub fn since(&self, earlier: &RetryDepthHistogram) -> RetryDepthHistogram {
        let mut delta = *self;
        delta
            .counts
            .iter_mut()
            .zip(earlier.counts)
            .for_each(|(a, b)| *a = a.saturating_sub(b));
        delta
    }

    /// Label of each bucket (`<250ms`, …, `>=5s`), in the order of `counts`.
    pub fn labels() -> [String; RETRY_DEPTH_BOUNDS_MS.len() + 1] {
        let show = |ms: u64| match ms % 1000 {
            0 => format!("{}s", ms / 1000),
            _ => format!("{ms}ms"),
        };
        std::array::from_fn(|i| match RETRY_DEPTH_BOUNDS_MS.get(i) {
            Some(bound) => format!("<{}", show(*bound)),
            None => format!(">={}", show(RETRY_DEPTH_BOUNDS_MS[i - 1])),
        })
    }

    /// The non-empty buckets as `label: count`, comma-separated (empty when nothing was counted).
    pub fn describe(&self) -> String {
        Self::labels()
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| format!("{label}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How an arrival relates to the key's retry window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryArrival {
    /// No window running.
    Clear,
    /// Inside a window, less than the grace after it opened.
    Race,
    /// Inside a window, at least the grace after it opened.
    Violation,
}

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
    /// Requests that arrived inside a retry window of this key, at least the grace after it opened.
    pub retry_after_violations: u64,
    /// Requests that arrived inside a retry window of this key less than the grace after it opened (already on
    /// the wire when the 429 was written).
    #[serde(default)]
    pub retry_after_races: u64,
    /// Every in-window arrival (races and violations) by depth into its window.
    #[serde(default)]
    pub retry_window_depths: RetryDepthHistogram,
    /// Faults injected, by kind.
    pub faults: BTreeMap<FaultKind, u64>,
    /// The first `fault_sequence_cap` injected faults, by route then request index (concurrent requests can
    /// finish in another order than they were counted; the index order is the one a seed reproduces).
    pub fault_sequence: Vec<FaultRecord>,
    /// True when more faults were injected than the sequence keeps.
    pub fault_sequence_truncated: bool,
    /// Client connections whose first provider request carried this key.
    #[serde(default)]
    pub connections: u64,
    /// Of those, the ones that began with a TLS handshake.
    #[serde(default)]
    pub tls_handshakes: u64,
    /// Provider requests (any key) on this key's connections per connection; null without connections.
    #[serde(default)]
    pub requests_per_connection: Option<f64>,
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
    /// Retry-After races (in-window arrivals within the grace).
    #[serde(default)]
    pub retry_after_races: u64,
    /// In-window arrivals by depth, every key.
    #[serde(default)]
    pub retry_window_depths: RetryDepthHistogram,
    /// Injected faults.
    pub faults: u64,
    /// Client connections that carried a provider request.
    #[serde(default)]
    pub connections: u64,
    /// Of those, the ones that began with a TLS handshake.
    #[serde(default)]
    pub tls_handshakes: u64,
    /// Provider requests per connection over all connections; null without connections.
    #[serde(default)]
    pub requests_per_connection: Option<f64>,
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
        let mut connection_requests = 0.0;
        for key in keys.values() {
            totals.connections += key.connections;
            totals.tls_handshakes += key.tls_handshakes;
            connection_requests +=
                key.requests_per_connection.unwrap_or(0.0) * key.connections as f64;
            totals.requests += key.total_requests;
            totals.rate_limited += key.rate_limited;
            totals.retry_after_violations += key.retry_after_violations;
            totals.retry_after_races += key.retry_after_races;
            totals.retry_window_depths = totals.retry_window_depths.plus(&key.retry_window_depths);
            totals.faults += key.faults.values().sum::<u64>();
        }
        totals.requests_per_connection =
            per_connection(connection_requests.round() as u64, totals.connections);
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
    retry_after_races: u64,
    retry_window_depths: RetryDepthHistogram,
    faults: BTreeMap<FaultKind, u64>,
    fault_sequence: Vec<FaultRecord>,
    fault_sequence_cap: usize,
    fault_sequence_truncated: bool,
    /// When the current (or last) retry window opened.
    window_opened_at: Duration,
    /// When it ends: arrivals from then on are clear.
    retry_allowed_at: Duration,
    connections: u64,
    tls_handshakes: u64,
    /// Provider requests (any key) on the connections attributed to this key.
    connection_requests: u64,
}

impl KeyLedger {
    pub(crate) fn new(fault_sequence_cap: usize) -> Self {
        KeyLedger {
            by_status: Default::default(),
            input_tokens: 0,
            output_tokens: 0,
            rate_limited: 0,
            retry_after_violations: 0,
            retry_after_races: 0,
            retry_window_depths: RetryDepthHistogram::default(),
            faults: BTreeMap::new(),
            fault_sequence: Vec::new(),
            fault_sequence_cap,
            fault_sequence_truncated: false,
            window_opened_at: Duration::ZERO,
            retry_allowed_at: Duration::ZERO,
            connections: 0,
            tls_handshakes: 0,
            connection_requests: 0,
        }
    }

    /// A request arrived at `now`: clear outside a retry window; inside one, a race when less than `grace`
    /// after the window opened, else a violation (both counted, with their depth).
    pub(crate) fn arrival(&mut self, now: Duration, grace: Duration) -> RetryArrival {
        if now >= self.retry_allowed_at {
            return RetryArrival::Clear;
        }
        let depth = now.saturating_sub(self.window_opened_at);
        self.retry_window_depths.record(depth);
        if depth < grace {
            self.retry_after_races += 1;
            RetryArrival::Race
        } else {
            self.retry_after_violations += 1;
            RetryArrival::Violation
        }
    }

    /// A response telling the client to wait `retry_after` was sent at `now`: opens a window when none is
    /// running, else extends the running one (its opening stays).
    pub(crate) fn announce_retry_after(&mut self, now: Duration, retry_after: Duration) {
        if now >= self.retry_allowed_at {
            self.window_opened_at = now;
        }
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
            retry_after_races: self.retry_after_races,
            retry_window_depths: self.retry_window_depths,
            faults: self.faults.clone(),
            fault_sequence: {
                let mut sequence = self.fault_sequence.clone();
                sequence.sort_by_key(|f| (f.route, f.index));
                sequence
            },
            fault_sequence_truncated: self.fault_sequence_truncated,
            connections: self.connections,
            tls_handshakes: self.tls_handshakes,
            requests_per_connection: per_connection(self.connection_requests, self.connections),
        }
    }

    /// A connection's first provider request carried this key.
    pub(crate) fn connection_opened(&mut self, tls: bool) {
        self.connections += 1;
        self.tls_handshakes += u64::from(tls);
    }

    /// A provider request arrived on a connection attributed to this key.
    pub(crate) fn connection_request(&mut self) {
        self.connection_requests += 1;
    }
}

fn per_connection(requests: u64, connections: u64) -> Option<f64> {
    (connections > 0).then(|| requests as f64 / connections as f64)
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

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// One step of a key's history, in ms since start.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A 429 written at `.0` announcing a wait of `.1`.
        Announce(u64, u64),
        /// A request arriving at `.0`.
        Arrive(u64),
    }

    #[test]
    fn races_and_violations_table() {
        use Step::{Announce as A, Arrive as R};
        // (steps, grace ms, expected (races, violations), expected depth buckets)
        type Case<'a> = (&'a [Step], u64, (u64, u64), [u64; 6]);
        let cases: [Case; 9] = [
            // Outside any window: nothing counted.
            (&[R(5), A(10, 5000), R(15_000)], 250, (0, 0), [0; 6]),
            // In flight when the 429 was written: races.
            (
                &[A(10_000, 5000), R(10_010), R(10_200)],
                250,
                (2, 0),
                [2, 0, 0, 0, 0, 0],
            ),
            // Disregard: deep into the window.
            (
                &[A(10_000, 5000), R(11_000), R(14_999)],
                250,
                (0, 2),
                [0, 0, 0, 1, 1, 0],
            ),
            // The boundary of the grace is a violation; the window's end is clear.
            (
                &[A(0, 1000), R(250), R(1000)],
                250,
                (0, 1),
                [0, 1, 0, 0, 0, 0],
            ),
            // Later 429s extend the window but keep its opening: depth counts from the first.
            (
                &[A(1000, 1000), A(1100, 1000), R(1200), R(2050)],
                250,
                (1, 1),
                [1, 0, 0, 1, 0, 0],
            ),
            // A 429 after the window ended opens a new one.
            (
                &[A(0, 1000), A(3000, 1000), R(3100)],
                250,
                (1, 0),
                [1, 0, 0, 0, 0, 0],
            ),
            // A wider grace turns the same arrival into a race.
            (&[A(0, 5000), R(400)], 500, (1, 0), [0, 1, 0, 0, 0, 0]),
            // Zero wait opens nothing.
            (&[A(10, 0), R(10)], 250, (0, 0), [0; 6]),
            // Zero grace: every in-window arrival is a violation, even the deepest bucket.
            (
                &[A(0, 60_000), R(0), R(6000)],
                0,
                (0, 2),
                [1, 0, 0, 0, 0, 1],
            ),
        ];
        for (steps, grace, (races, violations), depths) in cases {
            let mut ledger = KeyLedger::new(10);
            for step in steps {
                match *step {
                    Step::Announce(at, wait) => ledger.announce_retry_after(ms(at), ms(wait)),
                    Step::Arrive(at) => {
                        ledger.arrival(ms(at), ms(grace));
                    }
                }
            }
            let snapshot = ledger.snapshot();
            assert_eq!(
                (snapshot.retry_after_races, snapshot.retry_after_violations),
                (races, violations),
                "{steps:?} grace {grace}"
            );
            assert_eq!(
                snapshot.retry_window_depths.counts, depths,
                "{steps:?} grace {grace}"
            );
        }
    }

    #[test]
    fn arrival_classes_and_depth_labels() {
        let mut ledger = KeyLedger::new(1);
        assert_eq!(ledger.arrival(secs(1), ms(250)), RetryArrival::Clear);
        ledger.announce_retry_after(secs(1), secs(3));
        assert_eq!(ledger.arrival(ms(1100), ms(250)), RetryArrival::Race);
        assert_eq!(ledger.arrival(secs(2), ms(250)), RetryArrival::Violation);
        assert_eq!(
            RetryDepthHistogram::labels(),
            ["<250ms", "<500ms", "<1s", "<2s", "<5s", ">=5s"].map(String::from)
        );
        let depths = ledger.snapshot().retry_window_depths;
        assert_eq!(depths.describe(), "<250ms: 1, <2s: 1");
        assert_eq!(depths.plus(&depths).since(&depths), depths);
        assert_eq!(depths.since(&depths.plus(&depths)).total(), 0);
        let totals = LedgerSnapshot::from_keys(
            Duration::ZERO,
            BTreeMap::from([
                ("a".into(), ledger.snapshot()),
                ("b".into(), ledger.snapshot()),
            ]),
        )
        .totals;
        assert_eq!(
            (
                totals.retry_after_races,
                totals.retry_after_violations,
                totals.retry_window_depths.total()
            ),
            (2, 2, 4)
        );
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

    #[test]
    fn the_fault_sequence_is_in_index_order_whatever_order_requests_finished_in() {
        let mut ledger = KeyLedger::new(10);
        for (route, index) in [
            (Route::Messages, 4),
            (Route::ChatCompletions, 104),
            (Route::ChatCompletions, 103),
            (Route::Messages, 2),
        ] {
            ledger.record_fault(route, index, FaultKind::Error);
        }
        let order: Vec<_> = ledger
            .snapshot()
            .fault_sequence
            .iter()
            .map(|f| (f.route, f.index))
            .collect();
        assert_eq!(
            order,
            [
                (Route::ChatCompletions, 103),
                (Route::ChatCompletions, 104),
                (Route::Messages, 2),
                (Route::Messages, 4)
            ]
        );
    }
}
