//! Streaming (SSE) metrics per request name.
//!
//! Why separate from the latency histograms: for a streamed completion the total duration says little; users
//! feel the time to the first token and the stalls between chunks, and a stream cut short is a failure whose
//! cause matters (timeout, reset, parse error, missing terminal event).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ErrorClass, LatencyHistogram, Outcome, OutcomeResult};

/// Streaming metrics of one request name (all histograms in microseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamStats {
    /// Request name.
    pub name: String,
    /// Streamed responses seen (complete or cut).
    pub streams: u64,
    /// Time to the first response byte (headers).
    pub ttfb: LatencyHistogram,
    /// Time to the first SSE `data:` event.
    pub ttft: LatencyHistogram,
    /// Streams that ended without a single data event.
    pub without_first_token: u64,
    /// Every gap between two consecutive chunks (fed by `Recorder::record_chunk_gap`).
    pub chunk_gap: LatencyHistogram,
    /// The largest gap of each stream.
    pub max_gap: LatencyHistogram,
    /// Total duration of each stream (the request's latency).
    pub duration: LatencyHistogram,
    /// Data events received, summed over all streams.
    pub chunks: u64,
    /// Most data events in one stream.
    pub max_chunks: u32,
    /// Streams cut short, by cause.
    pub cut: BTreeMap<ErrorClass, u64>,
}

impl StreamStats {
    /// Empty metrics for `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Records one streamed outcome (`outcome.stream` must be `Some`; otherwise nothing happens).
    pub fn record(&mut self, outcome: &Outcome<'_>) {
        let Some(timing) = &outcome.stream else {
            return;
        };
        self.streams += 1;
        self.ttfb.record(timing.ttfb);
        match timing.ttft {
            Some(ttft) => self.ttft.record(ttft),
            None => self.without_first_token += 1,
        }
        self.max_gap.record(timing.max_gap);
        self.duration.record(outcome.latency);
        self.chunks += u64::from(timing.chunks);
        self.max_chunks = self.max_chunks.max(timing.chunks);
        if let OutcomeResult::Error(class, _) = outcome.result {
            *self.cut.entry(class).or_default() += 1;
        }
    }

    /// Records one gap between two consecutive chunks.
    pub fn record_gap(&mut self, gap: Duration) {
        self.chunk_gap.record(gap);
    }

    /// Bytes held by the five histograms' counters (fixed, see [`LatencyHistogram::counter_bytes`]).
    pub fn histogram_bytes(&self) -> usize {
        [
            &self.ttfb,
            &self.ttft,
            &self.chunk_gap,
            &self.max_gap,
            &self.duration,
        ]
        .iter()
        .map(|h| h.counter_bytes())
        .sum()
    }

    /// Streams cut short, all causes.
    pub fn cut_total(&self) -> u64 {
        self.cut.values().sum()
    }

    /// True when nothing was recorded (no stream, no gap).
    pub fn is_empty(&self) -> bool {
        self.streams == 0 && self.chunk_gap.is_empty()
    }

    /// Zeroes every counter and histogram, keeping the memory.
    pub fn reset(&mut self) {
        self.streams = 0;
        self.without_first_token = 0;
        self.chunks = 0;
        self.max_chunks = 0;
        self.cut.clear();
        for h in [
            &mut self.ttfb,
            &mut self.ttft,
            &mut self.chunk_gap,
            &mut self.max_gap,
            &mut self.duration,
        ] {
            h.reset();
        }
    }

    /// Adds `other` into `self` (names are not checked).
    pub fn merge(&mut self, other: &StreamStats) {
        self.streams += other.streams;
        self.ttfb.add(&other.ttfb);
        self.ttft.add(&other.ttft);
        self.without_first_token += other.without_first_token;
        self.chunk_gap.add(&other.chunk_gap);
        self.max_gap.add(&other.max_gap);
        self.duration.add(&other.duration);
        self.chunks += other.chunks;
        self.max_chunks = self.max_chunks.max(other.max_chunks);
        for (class, count) in &other.cut {
            *self.cut.entry(*class).or_default() += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamTiming;

    fn streamed(
        result: OutcomeResult<'static>,
        ttft: Option<u64>,
        chunks: u32,
    ) -> Outcome<'static> {
        Outcome {
            name: "stream",
            method: "POST",
            result,
            success: true,
            latency: Duration::from_millis(900),
            bytes: 10,
            stream: Some(StreamTiming {
                ttfb: Duration::from_millis(20),
                ttft: ttft.map(Duration::from_millis),
                chunks,
                max_gap: Duration::from_millis(300),
            }),
        }
    }

    #[test]
    fn records_timings_chunks_and_cuts_by_cause() {
        let mut stats = StreamStats::new("stream");
        for outcome in [
            streamed(OutcomeResult::Status(200), Some(50), 10),
            streamed(
                OutcomeResult::Error(ErrorClass::StreamCut, "no [DONE]"),
                Some(60),
                3,
            ),
            streamed(OutcomeResult::Error(ErrorClass::Reset, "reset"), None, 0),
        ] {
            stats.record(&outcome);
        }
        stats.record_gap(Duration::from_millis(7));
        assert_eq!((stats.streams, stats.chunks, stats.max_chunks), (3, 13, 10));
        assert_eq!((stats.ttft.count(), stats.without_first_token), (2, 1));
        assert_eq!(stats.cut_total(), 2);
        assert_eq!(stats.cut.get(&ErrorClass::StreamCut), Some(&1));
        assert_eq!(stats.chunk_gap.max_us(), Some(7_000));
        assert_eq!(stats.duration.count(), 3);
    }

    #[test]
    fn non_streamed_outcomes_are_ignored_and_merge_adds() {
        let mut a = StreamStats::new("s");
        let mut plain = streamed(OutcomeResult::Status(200), Some(1), 1);
        plain.stream = None;
        a.record(&plain);
        assert_eq!(a.streams, 0);
        let mut b = StreamStats::new("s");
        b.record(&streamed(
            OutcomeResult::Error(ErrorClass::Timeout, "t"),
            Some(1),
            2,
        ));
        a.merge(&b);
        a.merge(&b);
        assert_eq!((a.streams, a.chunks, a.cut_total()), (2, 4, 2));
    }
}
