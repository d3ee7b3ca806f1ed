//! Client-side observations the proxy-behaviour verdicts need and the stats do not keep: which key the proxy
//! reported (`X-Key-Used`) on successful responses, stream timings (TTFT and total) of successful streams, and
//! — per watched timeline window — how many requests were sent in it and how long each took to be answered
//! (by send time, which the per-second stats, keyed by completion, cannot tell).
//!
//! Cheap on the hot path: one per-shard mutex taken only when there is something to note, a map keyed by the
//! header value as received (no string conversion per request) and bounded in size, and a fixed-size ring of
//! stream samples (the most recent ones), so memory stays flat however long the run.

use http::{HeaderName, HeaderValue};
use proxy_behaviour::{SpanAnswers, StreamSample};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Header the proxy names the key it used in (a ready-made name: no parsing per response).
pub const KEY_USED_HEADER: HeaderName = HeaderName::from_static("x-key-used");
/// Distinct reported key values kept; further values are counted under [`OTHER_KEYS`].
pub const MAX_REPORTED_KEYS: usize = 64;
/// Bucket for reported values beyond [`MAX_REPORTED_KEYS`] (and values that are not text).
pub const OTHER_KEYS: &str = "_other";
/// Stream samples kept per shard (most recent).
pub const STREAM_SAMPLES_PER_SHARD: usize = 2048;

/// One shard's observations.
#[derive(Debug, Default)]
pub struct Tally {
    reported: HashMap<HeaderValue, u64>,
    other: u64,
    streams: Vec<StreamSample>,
    streams_seen: usize,
    spans: BTreeMap<usize, SpanAnswers>,
}

impl Tally {
    /// Counts one successful response that reported `key`.
    pub fn key_used(&mut self, key: &HeaderValue) {
        if let Some(n) = self.reported.get_mut(key) {
            *n += 1;
        } else if self.reported.len() < MAX_REPORTED_KEYS {
            self.reported.insert(key.clone(), 1);
        } else {
            self.other += 1;
        }
    }

    /// Counts one request sent during the watched window `window` (its timeline index).
    pub fn sent_in(&mut self, window: usize) {
        self.spans.entry(window).or_default().sent += 1;
    }

    /// Records the answer time of a request sent during the watched window `window`.
    pub fn answered_in(&mut self, window: usize, latency: Duration) {
        self.spans
            .entry(window)
            .or_default()
            .answered
            .record(latency);
    }

    /// Keeps one successful stream's timing (ring buffer of the most recent samples).
    pub fn stream(&mut self, ttft: Duration, total: Duration) {
        let sample = StreamSample { ttft, total };
        if self.streams.len() < STREAM_SAMPLES_PER_SHARD {
            self.streams.push(sample);
        } else {
            self.streams[self.streams_seen % STREAM_SAMPLES_PER_SHARD] = sample;
        }
        self.streams_seen += 1;
    }
}

/// Every shard's observations merged.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observed {
    /// Successful responses per reported key id.
    pub reported_keys: BTreeMap<String, u64>,
    /// Stream samples.
    pub streams: Vec<StreamSample>,
    /// Requests sent and their answer times per watched timeline window (by timeline index).
    pub span_answers: BTreeMap<usize, SpanAnswers>,
}

impl Observed {
    /// Merges the shards' tallies.
    pub fn merge<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Observed {
        let mut observed = Observed::default();
        for tally in tallies {
            for (value, n) in &tally.reported {
                let key = value.to_str().unwrap_or(OTHER_KEYS).to_string();
                *observed.reported_keys.entry(key).or_default() += n;
            }
            if tally.other > 0 {
                *observed
                    .reported_keys
                    .entry(OTHER_KEYS.to_string())
                    .or_default() += tally.other;
            }
            observed.streams.extend_from_slice(&tally.streams);
            for (window, answers) in &tally.spans {
                observed
                    .span_answers
                    .entry(*window)
                    .or_default()
                    .merge(answers);
            }
        }
        observed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_keys_are_counted_and_bounded() {
        let mut a = Tally::default();
        for i in 0..(MAX_REPORTED_KEYS + 10) {
            a.key_used(&HeaderValue::from_str(&format!("k{i}")).unwrap());
        }
        a.key_used(&HeaderValue::from_static("k0"));
        let mut b = Tally::default();
        b.key_used(&HeaderValue::from_static("k0"));
        let merged = Observed::merge([&a, &b]);
        assert_eq!(merged.reported_keys["k0"], 3);
        assert_eq!(merged.reported_keys[OTHER_KEYS], 10);
        assert_eq!(merged.reported_keys.len(), MAX_REPORTED_KEYS + 1);
    }

    #[test]
    fn span_answers_merge_by_window() {
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for tally in [&mut a, &mut b] {
            tally.sent_in(2);
            tally.sent_in(2);
            tally.answered_in(2, Duration::from_millis(5));
        }
        b.sent_in(0);
        let merged = Observed::merge([&a, &b]);
        let window = &merged.span_answers[&2];
        assert_eq!((window.sent, window.answered.count()), (4, 2));
        assert_eq!(merged.span_answers[&0].unanswered(), 1);
    }

    #[test]
    fn stream_samples_keep_the_most_recent() {
        let mut t = Tally::default();
        for i in 0..(STREAM_SAMPLES_PER_SHARD as u64 + 5) {
            t.stream(Duration::from_millis(i), Duration::from_millis(i + 1));
        }
        let merged = Observed::merge([&t]);
        assert_eq!(merged.streams.len(), STREAM_SAMPLES_PER_SHARD);
        let newest = STREAM_SAMPLES_PER_SHARD as u64 + 4;
        assert!(merged
            .streams
            .iter()
            .any(|s| s.ttft == Duration::from_millis(newest)));
        assert!(!merged.streams.iter().any(|s| s.ttft.is_zero()));
    }
}
