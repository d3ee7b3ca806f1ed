//! A latency histogram with a fixed memory ceiling, exact mean/min/max, and a portable encoding.
//!
//! Why a wrapper around [`hdrhistogram::Histogram`]: the run keeps one histogram per (request, status class) for
//! hours, so its size must not depend on the number of requests, its extreme values must never make it grow
//! without bound, and it must travel between processes (future distributed workers) without losing mergeability.
//!
//! # Memory
//! Values are microseconds with 3 significant digits (0.1 % relative error) in `u32` counters. The histogram
//! starts at 8 KiB and auto-resizes with the largest value seen, by 4 KiB per doubling of the range:
//! `4 KiB x (2 + ceil(log2(max_us / 2048)))`, i.e. 32 KiB for a 100 ms maximum, 48 KiB for 10 s and at most
//! [`MAX_HISTOGRAM_BYTES`] (~92 KiB) because values above [`MAX_TRACKABLE_US`] (1 h) are recorded as 1 h and
//! counted in [`LatencyHistogram::saturated`] — never dropped silently. Counters saturate at `u32::MAX` per bucket
//! (4.29 billion samples of the same 0.1 % bucket), far beyond any run.
//!
//! # Encoding
//! Serialized (serde) as the standard HdrHistogram "V2 + DEFLATE" binary, base64 encoded, next to the exact
//! sum/min/max, so any HdrHistogram implementation can read the `hdr` field.

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept by every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Largest latency tracked exactly (1 hour, in microseconds); larger values are recorded as this and counted.
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;
/// Upper bound of the counter memory of one histogram (23 buckets x 1024 sub-buckets x 4 bytes).
pub const MAX_HISTOGRAM_BYTES: usize = 23 * 1024 * 4;

/// Microsecond latency histogram; merge with [`LatencyHistogram::add`].
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hdr: Histogram<u32>,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
    saturated: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.hdr == other.hdr
            && self.sum_us == other.sum_us
            && self.min_us == other.min_us
            && self.max_us == other.max_us
            && self.saturated == other.saturated
    }
}

impl LatencyHistogram {
    /// An empty histogram (8 KiB until larger values arrive).
    pub fn new() -> Self {
        Self {
            hdr: empty_hdr(),
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            saturated: 0,
        }
    }

    /// Records one duration (microsecond resolution).
    pub fn record(&mut self, value: Duration) {
        self.record_us(u64::try_from(value.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one value in microseconds; values above [`MAX_TRACKABLE_US`] are clamped and counted.
    pub fn record_us(&mut self, value_us: u64) {
        let clamped = if value_us > MAX_TRACKABLE_US {
            self.saturated += 1;
            MAX_TRACKABLE_US
        } else {
            value_us
        };
        // Cannot fail: the value is within range and auto-resize is on; counters saturate by themselves.
        let _ = self.hdr.record(clamped);
        self.sum_us = self.sum_us.saturating_add(clamped);
        self.min_us = self.min_us.min(clamped);
        self.max_us = self.max_us.max(clamped);
    }

    /// Forgets every sample but keeps the counters' memory (a recorder reuses its histograms every interval).
    pub fn reset(&mut self) {
        self.hdr.reset();
        self.sum_us = 0;
        self.min_us = u64::MAX;
        self.max_us = 0;
        self.saturated = 0;
    }

    /// Adds every sample of `other` into `self`.
    pub fn add(&mut self, other: &LatencyHistogram) {
        if other.is_empty() {
            return;
        }
        // Cannot fail: both sides are within MAX_TRACKABLE_US and `self` auto-resizes.
        let _ = self.hdr.add(&other.hdr);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        self.saturated += other.saturated;
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hdr.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hdr.is_empty()
    }

    /// Samples that exceeded [`MAX_TRACKABLE_US`] and were recorded as that value.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// Exact smallest sample in microseconds (`None` when empty).
    pub fn min_us(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.min_us)
    }

    /// Exact largest sample in microseconds (`None` when empty).
    pub fn max_us(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.max_us)
    }

    /// Exact sum of all samples in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Exact mean in microseconds (`None` when empty).
    pub fn mean_us(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.sum_us as f64 / self.count() as f64)
    }

    /// Exact mean in milliseconds (`None` when empty), computed with a single division so it equals what a
    /// tool summing the same values in milliseconds gets (Locust's `Average Response Time`).
    pub fn mean_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.sum_us as f64 / (self.count() as f64 * 1000.0))
    }

    /// Value at `quantile` (0.0..=1.0) in microseconds, within 0.1 %, never outside the exact min/max
    /// (`None` when empty).
    pub fn quantile_us(&self, quantile: f64) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        let raw = self.hdr.value_at_quantile(quantile.clamp(0.0, 1.0));
        Some(raw.clamp(self.min_us, self.max_us))
    }

    /// Bytes held by the counters (the part that dominates the footprint).
    pub fn counter_bytes(&self) -> usize {
        self.hdr.distinct_values() * std::mem::size_of::<u32>()
    }

    /// Encodes the HDR part as base64 of the HdrHistogram V2+DEFLATE format.
    pub fn encode_hdr(&self) -> String {
        let mut bytes = Vec::new();
        // Serializing into a Vec cannot fail for a valid histogram.
        let _ = V2DeflateSerializer::new().serialize(&self.hdr, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode_hdr(text: &str) -> Result<Histogram<u32>, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("histogram is not valid base64: {e}"))?;
        let mut hdr: Histogram<u32> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram is not a valid HdrHistogram V2 encoding: {e:?}"))?;
        hdr.auto(true);
        Ok(hdr)
    }
}

fn empty_hdr() -> Histogram<u32> {
    // 3 significant digits is always a valid configuration.
    Histogram::new(SIGNIFICANT_DIGITS).expect("valid HdrHistogram configuration")
}

/// Wire form: exact aggregates plus the encoded HDR counts.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncodedHistogram {
    count: u64,
    sum_us: u64,
    min_us: Option<u64>,
    max_us: Option<u64>,
    saturated: u64,
    /// base64 of HdrHistogram V2 + DEFLATE.
    hdr: String,
}

impl Serialize for LatencyHistogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EncodedHistogram {
            count: self.count(),
            sum_us: self.sum_us,
            min_us: self.min_us(),
            max_us: self.max_us(),
            saturated: self.saturated,
            hdr: self.encode_hdr(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let encoded = EncodedHistogram::deserialize(deserializer)?;
        let hdr = Self::decode_hdr(&encoded.hdr).map_err(serde::de::Error::custom)?;
        if hdr.len() != encoded.count {
            return Err(serde::de::Error::custom(format!(
                "histogram count {} does not match its encoded counts ({})",
                encoded.count,
                hdr.len()
            )));
        }
        Ok(Self {
            hdr,
            sum_us: encoded.sum_us,
            min_us: encoded.min_us.unwrap_or(u64::MAX),
            max_us: encoded.max_us.unwrap_or(0),
            saturated: encoded.saturated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for &v in values_us {
            h.record_us(v);
        }
        h
    }

    #[test]
    fn quantiles_are_within_a_tenth_of_a_percent() {
        let h = hist(&(1..=100_000).collect::<Vec<_>>());
        for (q, exact) in [
            (0.5, 50_000.0),
            (0.95, 95_000.0),
            (0.99, 99_000.0),
            (1.0, 100_000.0),
        ] {
            let got = h.quantile_us(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact <= 0.001,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.min_us(), Some(1));
        assert_eq!(h.max_us(), Some(100_000));
        assert_eq!(h.mean_us(), Some(50_000.5));
    }

    #[test]
    fn empty_histogram_reports_nothing() {
        let h = LatencyHistogram::new();
        assert_eq!(
            (
                h.count(),
                h.min_us(),
                h.max_us(),
                h.mean_us(),
                h.quantile_us(0.5)
            ),
            (0, None, None, None, None)
        );
    }

    #[test]
    fn values_beyond_an_hour_are_clamped_and_counted() {
        let h = hist(&[10, MAX_TRACKABLE_US * 5]);
        assert_eq!(h.saturated(), 1);
        assert_eq!(h.max_us(), Some(MAX_TRACKABLE_US));
        assert_eq!(h.count(), 2);
        assert!(
            h.counter_bytes() <= MAX_HISTOGRAM_BYTES,
            "{}",
            h.counter_bytes()
        );
    }

    #[test]
    fn memory_does_not_grow_with_sample_count() {
        let mut h = hist(&[1, 100_000]);
        let before = h.counter_bytes();
        for i in 0..200_000u64 {
            h.record_us(i % 100_000);
        }
        assert_eq!(h.counter_bytes(), before);
        assert!(
            before <= 32 * 1024,
            "100 ms range should fit 32 KiB, got {before}"
        );
    }

    #[test]
    fn add_merges_counts_and_exact_aggregates() {
        let mut a = hist(&[100, 200]);
        a.add(&hist(&[50, 5_000_000]));
        assert_eq!(a.count(), 4);
        assert_eq!(a.sum_us(), 5_000_350);
        assert_eq!((a.min_us(), a.max_us()), (Some(50), Some(5_000_000)));
        a.add(&LatencyHistogram::new());
        assert_eq!(a.count(), 4);
    }

    #[test]
    fn serde_round_trip_keeps_everything_and_stays_mergeable() {
        let h = hist(&[3, 999, 12_345, 7_000_000]);
        let json = serde_json::to_string(&h).unwrap();
        let mut back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        back.add(&hist(&[MAX_TRACKABLE_US]));
        assert_eq!(back.count(), 5);
    }

    #[test]
    fn corrupt_encodings_are_errors_not_panics() {
        for hdr in ["not base64!", "AAAA", ""] {
            let json = format!(
                r#"{{"count":0,"sum_us":0,"min_us":null,"max_us":null,"saturated":0,"hdr":"{hdr}"}}"#
            );
            assert!(
                serde_json::from_str::<LatencyHistogram>(&json).is_err(),
                "{hdr}"
            );
        }
    }
}
