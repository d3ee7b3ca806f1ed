//! Prompt answers while every key is exhausted. When the upstream rate-limits every key a proxy has, nothing
//! can succeed until a key recovers; the proxy should say so at once — a 429 with `retry-after`, or a success
//! the moment a key comes back — rather than hold the client's request until a key cools down. A proxy that
//! holds looks fine by every other measure (few errors, Retry-After respected) while its clients hang for the
//! whole cool-down, so this check measures the answer time of the requests the client *sent* during such a
//! period.
//!
//! Rule: a timeline window counts as "every key exhausted" when the mock's ledger shows a 429 on every eligible
//! key between the window's opening and closing. Over the requests the client sent during those windows (the
//! harness keeps one latency histogram per watched window, by send time), the p99 answer time must be within
//! the limit. A request never answered by the end of the load counts as slower than any answer: if more than
//! 1 % of them were never answered, the p99 itself was never answered and the check fails.

use crate::counts::LedgerCounts;
use load_stats::LatencyHistogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The quantile judged.
pub const EXHAUSTED_ANSWER_QUANTILE: f64 = 0.99;

/// Requests the client sent during one watched span and the answer times of those that were answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanAnswers {
    /// Requests sent (dispatched) during the span.
    pub sent: u64,
    /// Time to the answer (any status) of each one answered before the load ended.
    pub answered: LatencyHistogram,
}

impl SpanAnswers {
    /// Adds another shard's (or window's) requests.
    pub fn merge(&mut self, other: &SpanAnswers) {
        self.sent += other.sent;
        self.answered.add(&other.answered);
    }

    /// Requests sent but never answered.
    pub fn unanswered(&self) -> u64 {
        self.sent.saturating_sub(self.answered.count())
    }
}

/// Answer times of the requests sent while every key was rate-limited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExhaustedAnswers {
    /// Labels of the timeline windows in which every eligible key answered 429.
    pub windows: Vec<String>,
    /// Requests the client sent during those windows.
    pub sent: u64,
    /// Of those, answered before the load ended.
    pub answered: u64,
    /// p99 answer time over every request sent (unanswered ones counted as slower than any answer); `None`
    /// when nothing was sent or when more than 1 % were never answered.
    #[serde(
        default,
        rename = "p99_ms",
        with = "crate::serde_units::optional_millis"
    )]
    pub p99: Option<Duration>,
}

impl ExhaustedAnswers {
    /// Requests sent but never answered by the end of the load.
    pub fn unanswered(&self) -> u64 {
        self.sent.saturating_sub(self.answered)
    }
}

/// Whether every eligible key was answered at least one 429 in `window` (the ledger's counts between the
/// window's edges). False without eligible keys.
pub fn every_key_rate_limited(window: &LedgerCounts, eligible: &[String]) -> bool {
    !eligible.is_empty()
        && eligible
            .iter()
            .all(|id| window.get(id).is_some_and(|c| c.rate_limited > 0))
}

/// Merges the answers of the windows in which every key was exhausted (`(label, answers)` pairs, already
/// selected with [`every_key_rate_limited`]) and takes the p99 with unanswered requests counted as slowest.
pub fn exhausted_answers<'a>(
    windows: impl IntoIterator<Item = (&'a str, &'a SpanAnswers)>,
) -> ExhaustedAnswers {
    let mut labels = Vec::new();
    let mut merged = SpanAnswers::default();
    for (label, answers) in windows {
        labels.push(label.to_string());
        merged.merge(answers);
    }
    ExhaustedAnswers {
        windows: labels,
        sent: merged.sent,
        answered: merged.answered.count(),
        p99: quantile_with_unanswered(&merged, EXHAUSTED_ANSWER_QUANTILE),
    }
}

/// The `quantile` of all sent requests' answer times, an unanswered request being slower than any answer;
/// `None` when that quantile falls among the unanswered (or nothing was sent).
fn quantile_with_unanswered(answers: &SpanAnswers, quantile: f64) -> Option<Duration> {
    let answered = answers.answered.count();
    let total = answered.max(answers.sent);
    if total == 0 || answered == 0 {
        return None;
    }
    // The rank of the quantile among all requests, then the same rank among the answered (sorted first).
    let rank = (quantile * total as f64).ceil().max(1.0);
    if rank > answered as f64 {
        return None;
    }
    let within_answered = rank / answered as f64;
    answers
        .answered
        .quantile_us(within_answered)
        .map(Duration::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::KeyCounts;

    fn answers(sent: u64, latencies_ms: &[u64]) -> SpanAnswers {
        let mut answered = LatencyHistogram::new();
        latencies_ms
            .iter()
            .for_each(|ms| answered.record(Duration::from_millis(*ms)));
        SpanAnswers { sent, answered }
    }

    /// `n` answers of `fast_ms` and `m` of `slow_ms`.
    fn spread(n: usize, fast_ms: u64, m: usize, slow_ms: u64) -> Vec<u64> {
        std::iter::repeat_n(fast_ms, n)
            .chain(std::iter::repeat_n(slow_ms, m))
            .collect()
    }

    #[test]
    fn p99_counts_unanswered_requests_as_slowest() {
        // (sent, answers, expected p99 in ms (None = not answered))
        let cases: [(u64, Vec<u64>, Option<u64>); 6] = [
            // Everyone answered at once.
            (100, spread(100, 5, 0, 0), Some(5)),
            // A held request per hundred is the 1 %: the p99 is still a prompt one.
            (100, spread(99, 5, 1, 3000), Some(5)),
            // Two held per hundred: the p99 is a held one.
            (100, spread(98, 5, 2, 3000), Some(3000)),
            // One never answered per hundred: the p99 is the slowest answer.
            (100, spread(99, 5, 0, 0), Some(5)),
            // Two never answered: the p99 was never answered.
            (100, spread(98, 5, 0, 0), None),
            // Nothing sent.
            (0, vec![], None),
        ];
        for (sent, latencies, expected) in cases {
            let got = quantile_with_unanswered(&answers(sent, &latencies), 0.99);
            let got_ms = got.map(|d| d.as_millis() as u64);
            match (got_ms, expected) {
                (Some(g), Some(e)) => assert!(
                    g.abs_diff(e) <= e / 50,
                    "{sent} sent, {} answered: {g} vs {e}",
                    latencies.len()
                ),
                _ => assert_eq!(
                    got_ms,
                    expected,
                    "{sent} sent, {} answered",
                    latencies.len()
                ),
            }
        }
    }

    #[test]
    fn windows_merge_and_every_key_must_be_rate_limited() {
        let first = answers(50, &spread(50, 4, 0, 0));
        let second = answers(60, &spread(40, 4, 10, 2500));
        let merged = exhausted_answers([("a", &first), ("b", &second)]);
        assert_eq!(merged.windows, ["a", "b"]);
        assert_eq!(
            (merged.sent, merged.answered, merged.unanswered()),
            (110, 100, 10)
        );
        assert_eq!(merged.p99, None, "10 of 110 never answered");
        let none = exhausted_answers(std::iter::empty());
        assert_eq!((none.windows.len(), none.sent, none.p99), (0, 0, None));

        let limited = |pairs: &[(&str, u64)]| -> LedgerCounts {
            pairs
                .iter()
                .map(|(id, n)| {
                    let counts = KeyCounts {
                        requests: *n,
                        rate_limited: *n,
                        ..Default::default()
                    };
                    (id.to_string(), counts)
                })
                .collect()
        };
        let eligible: Vec<String> = ["k1", "k2"].map(String::from).to_vec();
        let cases = [
            (limited(&[("k1", 3), ("k2", 1)]), true),
            (limited(&[("k1", 3), ("k2", 0)]), false),
            (limited(&[("k1", 3)]), false),
            (limited(&[("k1", 3), ("k2", 2), ("_unknown", 0)]), true),
        ];
        for (window, expected) in cases {
            assert_eq!(
                every_key_rate_limited(&window, &eligible),
                expected,
                "{window:?}"
            );
        }
        assert!(!every_key_rate_limited(&limited(&[("k1", 1)]), &[]));
    }

    #[test]
    fn measurement_round_trips_as_json() {
        let measured = exhausted_answers([("w", &answers(10, &spread(10, 7, 0, 0)))]);
        let json = serde_json::to_value(&measured).unwrap();
        assert!(json["p99_ms"].as_f64().unwrap() >= 6.9, "{json}");
        assert_eq!(
            serde_json::from_value::<ExhaustedAnswers>(json)
                .unwrap()
                .windows,
            ["w"]
        );
    }
}
