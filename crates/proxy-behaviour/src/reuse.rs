//! Upstream connection reuse. A proxy that opens a new upstream connection (and, over TLS, a new handshake) for
//! every request pays a round trip or three per request, burns CPU on handshakes and runs the host out of
//! ephemeral ports under load — while every latency and error figure can still look fine on loopback. The mock's
//! ledger counts the connections it accepted and the provider requests each carried, so the ratio of the two
//! over the load says whether the proxy pools.
//!
//! Rule: over the load (the ledger's difference between its start and its end), provider requests per new
//! upstream connection must be at least the limit. Requests carried by connections opened before the load (in a
//! warm-up) count too: reusing them is what a pool does. When the load opened no connection at all, the ratio is
//! taken over one connection (a lower bound). Not judged when the ledger has no connection counts (a mock that
//! does not count them) or when the load sent fewer than [`MIN_REUSE_REQUESTS`] requests upstream.

use mock_upstream::ledger::{LedgerSnapshot, LedgerTotals};
use serde::{Deserialize, Serialize};

/// Fewest upstream requests over the load for the ratio to say anything about pooling (with a handful of
/// requests, a pool's first connections dominate).
pub const MIN_REUSE_REQUESTS: u64 = 50;

/// Upstream connections and the requests they carried over the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionReuse {
    /// Provider requests the mock received on counted connections over the load.
    pub requests: u64,
    /// Connections the mock accepted over the load (that carried a provider request).
    pub connections: u64,
    /// Of those, the ones that began with a TLS handshake.
    pub tls_handshakes: u64,
    /// `requests / connections` (over one connection when none was opened); `None` when the ledger has no
    /// connection counts or nothing was requested.
    pub requests_per_connection: Option<f64>,
    /// False when the ledger counts no connection at all although it counts requests: the mock does not count
    /// connections, so reuse cannot be judged.
    pub counted: bool,
}

/// Connection reuse between two snapshots of the same mock (`before` at the start of the load, `after` at its end).
pub fn connection_reuse(before: &LedgerSnapshot, after: &LedgerSnapshot) -> ConnectionReuse {
    let counted = after.totals.connections > 0 || after.totals.requests == 0;
    let requests =
        connection_requests(&after.totals).saturating_sub(connection_requests(&before.totals));
    let connections = after
        .totals
        .connections
        .saturating_sub(before.totals.connections);
    let tls_handshakes = after
        .totals
        .tls_handshakes
        .saturating_sub(before.totals.tls_handshakes);
    let requests_per_connection =
        (counted && requests > 0).then(|| requests as f64 / connections.max(1) as f64);
    ConnectionReuse {
        requests,
        connections,
        tls_handshakes,
        requests_per_connection,
        counted,
    }
}

/// Provider requests carried by the counted connections of a snapshot (the ledger gives their mean per
/// connection).
fn connection_requests(totals: &LedgerTotals) -> u64 {
    let per_connection = totals.requests_per_connection.unwrap_or(0.0);
    (per_connection * totals.connections as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(requests: u64, connections: u64, tls_handshakes: u64) -> LedgerSnapshot {
        LedgerSnapshot {
            totals: LedgerTotals {
                requests,
                connections,
                tls_handshakes,
                requests_per_connection: (connections > 0)
                    .then(|| requests as f64 / connections as f64),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn reuse_over_the_load_table() {
        // ((requests, connections, handshakes) before, the same after,
        //  expected (requests, connections, handshakes, ratio, counted))
        type Case = (
            (u64, u64, u64),
            (u64, u64, u64),
            (u64, u64, u64, Option<f64>, bool),
        );
        let cases: [Case; 7] = [
            // A pool: 1000 requests over 8 connections.
            ((0, 0, 0), (1000, 8, 8), (1000, 8, 8, Some(125.0), true)),
            // No pool: one connection per request, over plain HTTP.
            ((0, 0, 0), (300, 300, 0), (300, 300, 0, Some(1.0), true)),
            // Warm-up connections are subtracted; the load's requests on them still count.
            ((100, 4, 4), (1100, 6, 6), (1000, 2, 2, Some(500.0), true)),
            // Every load request on a warm-up connection: judged over one connection.
            ((100, 4, 0), (400, 4, 0), (300, 0, 0, Some(300.0), true)),
            // A ledger without connection counts.
            ((0, 0, 0), (500, 0, 0), (0, 0, 0, None, false)),
            // Nothing requested at all.
            ((0, 0, 0), (0, 0, 0), (0, 0, 0, None, true)),
            // A ledger reset between the snapshots does not wrap around.
            ((500, 10, 0), (20, 2, 0), (0, 0, 0, None, true)),
        ];
        for (before, after, expected) in cases {
            let got = connection_reuse(
                &snapshot(before.0, before.1, before.2),
                &snapshot(after.0, after.1, after.2),
            );
            let (requests, connections, handshakes, ratio, counted) = expected;
            assert_eq!(
                (
                    got.requests,
                    got.connections,
                    got.tls_handshakes,
                    got.counted
                ),
                (requests, connections, handshakes, counted),
                "{before:?} -> {after:?}"
            );
            match (got.requests_per_connection, ratio) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{before:?} -> {after:?}: {g}"),
                (g, e) => assert_eq!(g, e, "{before:?} -> {after:?}"),
            }
        }
    }

    #[test]
    fn measurement_round_trips_as_json() {
        let measured = connection_reuse(&snapshot(0, 0, 0), &snapshot(200, 4, 4));
        let json = serde_json::to_value(measured).unwrap();
        assert_eq!(json["requests_per_connection"], 50.0, "{json}");
        assert_eq!(
            serde_json::from_value::<ConnectionReuse>(json).unwrap(),
            measured
        );
    }
}
