//! A run's per-second history as an HdrHistogram interval log (`history.hlog`), and reading it back.
//!
//! Why an interval log: a run split over several machines (shards) must merge its history, drift windows and
//! recovery exactly, and percentiles cannot be averaged. Each closed interval is written as its all-requests
//! latency histogram in the standard interval-log format (the `hdrhistogram` crate's writer; readable by
//! `HistogramLogProcessor` and every other HdrHistogram tool), with absolute Unix timestamps so the intervals of
//! shards that ran side by side line up on the wall clock. The interval's counts that a histogram cannot carry
//! (failures per status class, response bytes, users) go on a comment line just before it
//! (`#harness-interval {json}`), which other tools skip. Every interval is flushed as it is written, so a killed
//! run keeps the history it had.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::V2DeflateSerializer;
use serde::{Deserialize, Serialize};

use crate::run::AGGREGATED_NAME;
use crate::{LatencyHistogram, RequestStats, StatsDelta, StatusClass};

/// Prefix of the comment line carrying an interval's counts.
pub const COUNTS_COMMENT: &str = "harness-interval ";

/// Counts of one interval that the latency histogram does not carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalCounts {
    /// Users (closed model) or requests in flight (open model) at the end of the interval.
    pub users: u32,
    /// Response bytes of the interval's requests.
    pub content_bytes: u64,
    /// Requests and failures per status class.
    pub classes: BTreeMap<StatusClass, ClassCounts>,
}

/// Requests of one status class in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCounts {
    /// Requests.
    pub requests: u64,
    /// How many of them were failures.
    pub failures: u64,
}

impl IntervalCounts {
    /// Adds the requests of `delta` (every request name).
    pub fn add(&mut self, delta: &StatsDelta) {
        for request in &delta.requests {
            self.content_bytes += request.content_bytes;
            for (class, stats) in &request.classes {
                let counts = self.classes.entry(*class).or_default();
                counts.requests += stats.requests;
                counts.failures += stats.failures;
            }
        }
    }

    /// Adds another interval's counts (users are summed: shards' users add up).
    pub fn merge(&mut self, other: &IntervalCounts) {
        self.users += other.users;
        self.content_bytes += other.content_bytes;
        for (class, counts) in &other.classes {
            let mine = self.classes.entry(*class).or_default();
            mine.requests += counts.requests;
            mine.failures += counts.failures;
        }
    }
}

/// One interval read back from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedInterval {
    /// Wall-clock start of the interval.
    pub start: SystemTime,
    /// Its length.
    pub duration: Duration,
    /// Latency of every request that finished in it. The HDR counts are the recorded ones, bucket for bucket;
    /// min, max and sum are those the counts imply (the log keeps no exact aggregates).
    pub latency: LatencyHistogram,
    /// Its counts.
    pub counts: IntervalCounts,
}

impl LoggedInterval {
    /// The interval as a statistics delta: one `Aggregated` request holding the class counts and response
    /// bytes (no per-class latency), and the interval's latency as the all-requests histogram — what
    /// [`RunStats::merge`](crate::RunStats::merge) needs to close a history row.
    pub fn to_delta(&self) -> StatsDelta {
        let mut request = RequestStats::new("", AGGREGATED_NAME);
        request.content_bytes = self.counts.content_bytes;
        for (class, counts) in &self.counts.classes {
            let stats = request.class_mut(*class);
            stats.requests = counts.requests;
            stats.failures = counts.failures;
        }
        let mut delta = StatsDelta::new();
        delta.requests.push(request);
        delta.aggregate.add(&self.latency);
        delta
    }
}

/// Why a log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum IntervalLogError {
    /// Writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A histogram could not be encoded.
    #[error("cannot encode an interval histogram: {0}")]
    Encode(String),
    /// A line is not an interval log line, or its histogram or counts do not decode.
    #[error("interval {index}: {reason}")]
    Corrupt {
        /// 0-based index of the interval.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Appends intervals to an interval log; every interval is flushed as it is written.
pub struct IntervalLogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
}

impl<W: Write> IntervalLogWriter<W> {
    /// Writes the header (a comment naming the harness, `StartTime` = `started`) and flushes.
    pub fn new(mut out: W, started: SystemTime) -> Result<Self, IntervalLogError> {
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(
                "llm-proxy-harness interval log: all-requests latency per interval, microseconds",
            )
            .with_start_time(started)
            .begin_log_with(&mut out, &mut serializer)?;
        out.flush()?;
        Ok(Self { out, serializer })
    }

    /// Writes one interval (counts comment, then the histogram line with an absolute Unix start) and flushes.
    pub fn write_interval(
        &mut self,
        start: SystemTime,
        duration: Duration,
        latency: &LatencyHistogram,
        counts: &IntervalCounts,
    ) -> Result<(), IntervalLogError> {
        let json =
            serde_json::to_string(counts).map_err(|e| IntervalLogError::Encode(e.to_string()))?;
        // A builder without headers writes nothing when it begins: it is only the way to the line writer.
        let mut log =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        log.write_comment(&format!("{COUNTS_COMMENT}{json}"))?;
        let since_epoch = start.duration_since(UNIX_EPOCH).unwrap_or_default();
        log.write_histogram(latency.hdr(), since_epoch, duration, None)
            .map_err(|e| IntervalLogError::Encode(format!("{e:?}")))?;
        self.out.flush()?;
        Ok(())
    }
}

/// Reads every complete interval of a log. A log cut short (its writer killed mid-line) ends at its last
/// complete interval; a histogram or counts line that does not decode is an error naming the interval.
pub fn read(text: &str) -> Result<Vec<LoggedInterval>, IntervalLogError> {
    // Every line is written whole and flushed; a last line without its newline is one cut short.
    let text = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let counts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix('#')?.strip_prefix(COUNTS_COMMENT))
        .collect();
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        let Ok(entry) = entry else {
            break; // a line cut short by a killed writer: keep what came before
        };
        let LogEntry::Interval(logged) = entry else {
            continue;
        };
        let index = intervals.len();
        let corrupt = |reason: String| IntervalLogError::Corrupt { index, reason };
        let Some(json) = counts.get(index) else {
            return Err(corrupt("no counts comment before the histogram".into()));
        };
        let counts: IntervalCounts =
            serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
        let latency =
            LatencyHistogram::from_encoded_hdr(logged.encoded_histogram()).map_err(corrupt)?;
        intervals.push(LoggedInterval {
            start: UNIX_EPOCH + logged.start_timestamp(),
            duration: logged.duration(),
            latency,
            counts,
        });
    }
    Ok(intervals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, OutcomeResult, Recorder};

    fn delta(latencies_ms: &[(u64, u16)]) -> StatsDelta {
        let mut recorder = Recorder::new();
        for &(ms, status) in latencies_ms {
            recorder.record(&Outcome {
                name: "chat",
                method: "POST",
                result: OutcomeResult::Status(status),
                success: status == 200,
                latency: Duration::from_millis(ms),
                bytes: 10,
                stream: None,
            });
        }
        recorder.take()
    }

    #[test]
    fn intervals_round_trip_bucket_for_bucket_with_their_counts() {
        let t0 = UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
        let seconds = [
            delta(&[(3, 200), (7, 200), (250, 500)]),
            delta(&[]),
            delta(&[(1, 429), (1200, 200)]),
        ];
        let mut bytes = Vec::new();
        let mut log = IntervalLogWriter::new(&mut bytes, t0).expect("header");
        for (i, d) in seconds.iter().enumerate() {
            let mut counts = IntervalCounts {
                users: 4,
                ..Default::default()
            };
            counts.add(d);
            let start = t0 + Duration::from_secs(i as u64);
            log.write_interval(start, Duration::from_secs(1), &d.aggregate, &counts)
                .expect("write");
        }
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("#[StartTime: 1800000000.250"), "{text}");
        let back = read(&text).expect("read");
        assert_eq!(back.len(), 3);
        for (i, (logged, d)) in back.iter().zip(&seconds).enumerate() {
            assert_eq!(logged.start, t0 + Duration::from_secs(i as u64));
            assert!(logged.latency.same_counts(&d.aggregate), "interval {i}");
            let requests: u64 = logged.counts.classes.values().map(|c| c.requests).sum();
            assert_eq!(requests, d.aggregate.count(), "interval {i}");
        }
        assert_eq!(
            back[0].counts.classes[&StatusClass::ServerError].failures,
            1
        );
        assert_eq!(back[0].counts.content_bytes, 30);
        let row_delta = back[2].to_delta();
        assert_eq!(row_delta.requests[0].failures_429(), 1);
        // A log cut in the middle of its last line keeps the complete intervals before it.
        let cut = &text[..text.len() - 20];
        assert_eq!(read(cut).expect("read cut").len(), 2);
        let broken = text.replace(
            "harness-interval {\"users\":4",
            "harness-interval {\"usrs\":4",
        );
        let err = read(&broken).expect_err("bad counts");
        assert!(
            err.to_string().starts_with("interval 0: unknown field"),
            "{err}"
        );
    }
}
