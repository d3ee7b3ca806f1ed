//! Recording outcomes on the hot path, and the mergeable batch a recorder hands over.
//!
//! Why a per-worker [`Recorder`] rather than one shared, locked structure: recording must cost a few hundred
//! nanoseconds and never contend. Each worker records into its own [`StatsDelta`] and the run loop takes it every
//! interval ([`Recorder::take`]) and merges it into the run's totals — the same `merge` that would combine
//! deltas from several machines, since a delta serializes losslessly (histograms as HdrHistogram V2+DEFLATE).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::errors::{status_failure_message, ErrorKind, ErrorTable};
use crate::{LatencyHistogram, Outcome, OutcomeResult, RequestStats, StatusClass, StreamStats};

/// Everything recorded during one period: per-request class histograms, the all-requests histogram, streaming
/// metrics and failures. Its size depends on the scenario (names x classes x distinct messages, all bounded), not
/// on traffic: [`PER_REQUEST_HISTOGRAM_BYTES`](crate::histogram::PER_REQUEST_HISTOGRAM_BYTES) per (request, class) plus one [`AGGREGATE_HISTOGRAM_BYTES`](crate::histogram::AGGREGATE_HISTOGRAM_BYTES).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsDelta {
    /// Per request (method + name), in first-seen order.
    pub requests: Vec<RequestStats>,
    /// Latency of every outcome at [`Precision::Aggregate`](crate::histogram::Precision::Aggregate) (0.1 %): the `Aggregated` row is read from here
    /// rather than from the per-request histograms (1 %).
    pub aggregate: LatencyHistogram,
    /// Streaming metrics per request name, in first-seen order.
    pub streams: Vec<StreamStats>,
    /// Failures by request, kind and message.
    pub errors: ErrorTable,
}

impl Default for StatsDelta {
    fn default() -> Self {
        Self {
            requests: Vec::new(),
            aggregate: LatencyHistogram::aggregate(),
            streams: Vec::new(),
            errors: ErrorTable::new(),
        }
    }
}

impl StatsDelta {
    /// An empty delta.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.streams.is_empty() && self.errors.is_empty()
    }

    /// Bytes held by all the histograms' counters: fixed once every (request, class) and stream has been seen,
    /// whatever the traffic and the latencies.
    pub fn histogram_bytes(&self) -> usize {
        let requests: usize = self
            .requests
            .iter()
            .flat_map(|r| r.classes.values())
            .map(|c| c.latency.counter_bytes())
            .sum();
        let streams: usize = self.streams.iter().map(StreamStats::histogram_bytes).sum();
        requests + streams + self.aggregate.counter_bytes()
    }

    /// Statistics of one request, if it was seen.
    pub fn request(&self, method: &str, name: &str) -> Option<&RequestStats> {
        self.requests
            .iter()
            .find(|r| r.name == name && r.method == method)
    }

    /// Streaming metrics of one request name, if any stream was seen.
    pub fn stream(&self, name: &str) -> Option<&StreamStats> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Adds `other` into `self` (histograms add; error bounds still apply).
    pub fn merge(&mut self, other: &StatsDelta) {
        for request in &other.requests {
            self.request_mut(&request.method, &request.name)
                .merge(request);
        }
        self.aggregate.add(&other.aggregate);
        for stream in &other.streams {
            self.stream_mut(&stream.name).merge(stream);
        }
        self.errors.merge(&other.errors);
    }

    /// Adds what `self` recorded into `into`, then zeroes `self` in place: request and stream entries and their
    /// histograms stay allocated for the next interval, so a recorder taken every second allocates nothing in
    /// the steady state. Entries that recorded nothing since the last drain are not copied.
    pub fn drain_into(&mut self, into: &mut StatsDelta) {
        for request in &mut self.requests {
            if request.requests() > 0 || request.content_bytes > 0 {
                into.request_mut(&request.method, &request.name)
                    .merge_seen(request);
            }
            request.reset();
        }
        into.aggregate.add(&self.aggregate);
        self.aggregate.reset();
        for stream in &mut self.streams {
            if !stream.is_empty() {
                into.stream_mut(&stream.name).merge(stream);
            }
            stream.reset();
        }
        into.errors.merge(&self.errors);
        self.errors = ErrorTable::new();
    }

    /// Records one outcome; `unix_secs` stamps a failure's first/last seen.
    pub fn record(&mut self, outcome: &Outcome<'_>, unix_secs: u64) {
        let class = StatusClass::of_result(&outcome.result);
        self.aggregate.record(outcome.latency);
        let request = self.request_mut(outcome.method, outcome.name);
        request.content_bytes += outcome.bytes;
        let class_stats = request.class_mut(class);
        class_stats.requests += 1;
        class_stats.latency.record(outcome.latency);
        if !outcome.success {
            class_stats.failures += 1;
            self.record_failure(outcome, unix_secs);
        }
        if outcome.stream.is_some() {
            self.stream_mut(outcome.name).record(outcome);
        }
    }

    fn record_failure(&mut self, outcome: &Outcome<'_>, unix_secs: u64) {
        let (kind, message) = match &outcome.result {
            OutcomeResult::Status(status) => (
                ErrorKind::Status(*status),
                Cow::Owned(status_failure_message(*status)),
            ),
            OutcomeResult::Error(class, message) => {
                (ErrorKind::Transport(*class), Cow::Borrowed(*message))
            }
        };
        self.errors
            .record(outcome.method, outcome.name, kind, &message, unix_secs);
    }

    fn request_mut(&mut self, method: &str, name: &str) -> &mut RequestStats {
        // Linear search: scenarios have tens of requests, and this avoids hashing on every outcome.
        match self
            .requests
            .iter()
            .position(|r| r.name == name && r.method == method)
        {
            Some(index) => &mut self.requests[index],
            None => {
                self.requests.push(RequestStats::new(method, name));
                self.requests.last_mut().expect("just pushed")
            }
        }
    }

    fn stream_mut(&mut self, name: &str) -> &mut StreamStats {
        match self.streams.iter().position(|s| s.name == name) {
            Some(index) => &mut self.streams[index],
            None => {
                self.streams.push(StreamStats::new(name));
                self.streams.last_mut().expect("just pushed")
            }
        }
    }
}

/// Per-worker recorder: cheap to create, meant to be owned by one worker shard (no internal locking).
#[derive(Debug, Default)]
pub struct Recorder {
    delta: StatsDelta,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one finished request.
    pub fn record(&mut self, outcome: &Outcome<'_>) {
        let unix_secs = if outcome.success {
            0
        } else {
            unix_secs(SystemTime::now())
        };
        self.delta.record(outcome, unix_secs);
    }

    /// Records one gap between two consecutive chunks of a stream of request `name`.
    pub fn record_chunk_gap(&mut self, name: &str, gap: Duration) {
        self.delta.stream_mut(name).record_gap(gap);
    }

    /// What was recorded since the last take; the recorder starts empty again.
    pub fn take(&mut self) -> StatsDelta {
        std::mem::take(&mut self.delta)
    }

    /// Adds what was recorded since the last drain or take into `into` and starts again from zero, keeping the
    /// recorder's memory (see [`StatsDelta::drain_into`]): the allocation-free alternative to [`Recorder::take`].
    pub fn drain_into(&mut self, into: &mut StatsDelta) {
        self.delta.drain_into(into);
    }
}

/// Whole seconds since the Unix epoch (0 for times before it).
pub fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, StreamTiming};

    fn outcome(
        name: &'static str,
        result: OutcomeResult<'static>,
        success: bool,
        ms: u64,
    ) -> Outcome<'static> {
        Outcome {
            name,
            method: "POST",
            result,
            success,
            latency: Duration::from_millis(ms),
            bytes: 100,
            stream: None,
        }
    }

    #[test]
    fn outcomes_land_in_their_request_and_class() {
        let mut recorder = Recorder::new();
        let cases = [
            (
                "chat",
                OutcomeResult::Status(200),
                true,
                10,
                StatusClass::Success,
            ),
            (
                "chat",
                OutcomeResult::Status(200),
                true,
                20,
                StatusClass::Success,
            ),
            (
                "chat",
                OutcomeResult::Status(429),
                false,
                1,
                StatusClass::TooManyRequests,
            ),
            (
                "chat",
                OutcomeResult::Status(500),
                false,
                5,
                StatusClass::ServerError,
            ),
            (
                "rapid",
                OutcomeResult::Status(429),
                true,
                2,
                StatusClass::TooManyRequests,
            ),
            (
                "chat",
                OutcomeResult::Error(ErrorClass::Timeout, "timed out"),
                false,
                3000,
                StatusClass::Timeout,
            ),
        ];
        for (name, result, success, ms, _) in cases.clone() {
            recorder.record(&outcome(name, result, success, ms));
        }
        let delta = recorder.take();
        let chat = delta.request("POST", "chat").unwrap();
        assert_eq!(
            (chat.requests(), chat.failures(), chat.failures_429()),
            (5, 3, 1)
        );
        assert_eq!(chat.content_bytes, 500);
        let rapid = delta.request("POST", "rapid").unwrap();
        assert_eq!(
            (rapid.requests(), rapid.failures(), rapid.failures_429()),
            (1, 0, 0)
        );
        for (name, _, _, _, class) in cases {
            assert!(
                delta
                    .request("POST", name)
                    .unwrap()
                    .classes
                    .contains_key(&class),
                "{name} {class}"
            );
        }
        assert_eq!(delta.errors.total(), 3);
        assert!(recorder.take().is_empty(), "take resets the recorder");
    }

    #[test]
    fn streams_and_gaps_are_recorded_per_name() {
        let mut recorder = Recorder::new();
        let mut streamed = outcome("s", OutcomeResult::Status(200), true, 500);
        streamed.stream = Some(StreamTiming {
            ttfb: Duration::from_millis(5),
            ttft: Some(Duration::from_millis(40)),
            chunks: 12,
            max_gap: Duration::from_millis(90),
        });
        recorder.record(&streamed);
        recorder.record_chunk_gap("s", Duration::from_millis(30));
        let delta = recorder.take();
        let s = delta.stream("s").unwrap();
        assert_eq!((s.streams, s.chunks, s.chunk_gap.count()), (1, 12, 1));
    }

    #[test]
    fn drain_copies_what_was_seen_and_keeps_the_recorder_memory() {
        let mut recorder = Recorder::new();
        recorder.record(&outcome("x", OutcomeResult::Status(200), true, 7));
        recorder.record(&outcome("x", OutcomeResult::Status(503), false, 9));
        let mut streamed = outcome("s", OutcomeResult::Status(200), true, 50);
        streamed.stream = Some(StreamTiming::default());
        recorder.record(&streamed);
        recorder.record_chunk_gap("s", Duration::from_millis(3));
        let mut first = StatsDelta::new();
        recorder.drain_into(&mut first);
        let x = first.request("POST", "x").unwrap();
        assert_eq!((x.requests(), x.failures(), x.content_bytes), (2, 1, 200));
        assert_eq!(first.stream("s").unwrap().chunk_gap.count(), 1);
        assert_eq!(first.errors.total(), 1);
        assert_eq!(first.aggregate.count(), 3, "every outcome, all requests");

        recorder.record(&outcome("y", OutcomeResult::Status(200), true, 1));
        let mut second = StatsDelta::new();
        recorder.drain_into(&mut second);
        let names: Vec<_> = second.requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["y"], "idle entries are not copied");
        assert_eq!(second.aggregate.count(), 1);
        assert!(second.streams.is_empty() && second.errors.is_empty());
        let kept = &recorder.delta.requests[0];
        assert_eq!((kept.name.as_str(), kept.requests()), ("x", 0));
        assert!(
            kept.classes.contains_key(&StatusClass::Success),
            "the class entry is kept"
        );
        let mut third = StatsDelta::new();
        recorder.drain_into(&mut third);
        assert!(third.is_empty());
    }

    #[test]
    fn memory_stays_at_its_ceiling_however_extreme_the_latencies_get() {
        use crate::histogram::{AGGREGATE_HISTOGRAM_BYTES, PER_REQUEST_HISTOGRAM_BYTES};
        let names: Vec<String> = (0..50).map(|i| format!("name {i}")).collect();
        let (mut recorder, mut totals) = (Recorder::new(), StatsDelta::new());
        let ceiling = names.len() * PER_REQUEST_HISTOGRAM_BYTES + AGGREGATE_HISTOGRAM_BYTES;
        // Each interval raises every name's largest latency tenfold: 1 ms .. beyond the 1 h range.
        for interval in 0..8u32 {
            let mut delta = StatsDelta::new();
            for name in &names {
                let mut slow: Outcome<'_> =
                    outcome("", OutcomeResult::Status(200), true, 10u64.pow(interval));
                slow.name = name;
                recorder.record(&slow);
                recorder.record(&Outcome {
                    latency: Duration::from_micros(300),
                    ..slow
                });
            }
            recorder.drain_into(&mut delta);
            totals.merge(&delta);
            let sizes = [
                recorder.delta.histogram_bytes(),
                delta.histogram_bytes(),
                totals.histogram_bytes(),
            ];
            assert_eq!(sizes, [ceiling; 3], "interval {interval}");
        }
        assert_eq!(totals.aggregate.count(), 8 * 2 * names.len() as u64);
        assert_eq!(
            totals.aggregate.saturated(),
            names.len() as u64,
            "10^7 ms > 1 h"
        );
    }

    #[test]
    fn deltas_merge_and_survive_serialization() {
        let mut a = Recorder::new();
        a.record(&outcome("x", OutcomeResult::Status(200), true, 7));
        let mut b = Recorder::new();
        b.record(&outcome("x", OutcomeResult::Status(503), false, 9));
        b.record(&outcome(
            "y",
            OutcomeResult::Error(ErrorClass::Reset, "reset"),
            false,
            1,
        ));
        let mut merged = a.take();
        let wire = serde_json::to_string(&b.take()).unwrap();
        merged.merge(&serde_json::from_str(&wire).unwrap());
        let x = merged.request("POST", "x").unwrap();
        assert_eq!(
            (x.requests(), x.failures(), x.latency().max_us()),
            (2, 1, Some(9_000))
        );
        assert_eq!(merged.requests.len(), 2);
        assert_eq!(merged.errors.total(), 2);
    }
}
