//! A latency histogram with a fixed memory footprint, exact mean/min/max, and a portable encoding.
//!
//! Why a wrapper around [`hdrhistogram::Histogram`]: the run keeps one histogram per (request, status class) for
//! hours, so its size must not depend on the number of requests nor on the latencies seen, and it must travel
//! between processes (future distributed workers) without losing mergeability.
//!
//! # Precision and memory
//! Values are microseconds in `u32` counters, and every histogram covers the whole range 1 µs ..
//! [`MAX_TRACKABLE_US`] (1 h) from the start: its counters are allocated (and written) once, at creation, and
//! never grow — a rare slow request cannot make hundreds of histograms resize in the middle of a soak. Values
//! above 1 h are recorded as 1 h and counted in [`LatencyHistogram::saturated`], never dropped silently. Counters
//! saturate at `u32::MAX` per bucket (4.29 billion samples of the same bucket), far beyond any run. Two
//! precisions ([`Precision`]):
//! - [`Precision::PerRequest`] (the default, [`LatencyHistogram::new`]): 2 significant digits — exact below
//!   256 µs, within 1 % above — in [`PER_REQUEST_HISTOGRAM_BYTES`] (13 KiB). One exists per (request name,
//!   status class) and per copy (each worker's recorder, the run totals), so this is the size that scales.
//! - [`Precision::Aggregate`] ([`LatencyHistogram::aggregate`]): 3 significant digits — exact below 2048 µs,
//!   within 0.1 % above — in [`AGGREGATE_HISTOGRAM_BYTES`] (92 KiB). Used for the all-requests latency (the
//!   `Aggregated` row, history rows, the CI thresholds), a handful per run whatever the number of names.
//!
//! Merging keeps the finer precision when the destination is empty, otherwise the destination's: adding a
//! per-request histogram into an aggregate one is exact to the per-request precision (1 %).
//!
//! # Encoding
//! Serialized (serde) as the standard HdrHistogram "V2 + DEFLATE" binary, base64 encoded, next to the exact
//! sum/min/max, so any HdrHistogram implementation can read the `hdr` field (its header carries the precision).

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency tracked exactly (1 hour, in microseconds); larger values are recorded as this and counted.
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;
/// Counter memory of a [`Precision::PerRequest`] histogram: 26 buckets x 128 sub-buckets x 4 bytes.
pub const PER_REQUEST_HISTOGRAM_BYTES: usize = 26 * 128 * 4;
/// Counter memory of a [`Precision::Aggregate`] histogram: 23 buckets x 1024 sub-buckets x 4 bytes.
pub const AGGREGATE_HISTOGRAM_BYTES: usize = 23 * 1024 * 4;

/// How many significant digits a histogram keeps (see the module docs for the memory of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// 2 significant digits (1 %): per (request, status class) histograms.
    PerRequest,
    /// 3 significant digits (0.1 %): all-requests histograms.
    Aggregate,
}

impl Precision {
    /// Significant decimal digits.
    pub fn digits(self) -> u8 {
        match self {
            Self::PerRequest => 2,
            Self::Aggregate => 3,
        }
    }

    /// Bytes of counters of a histogram of this precision.
    pub fn counter_bytes(self) -> usize {
        match self {
            Self::PerRequest => PER_REQUEST_HISTOGRAM_BYTES,
            Self::Aggregate => AGGREGATE_HISTOGRAM_BYTES,
        }
    }

    /// The precision closest to `digits` (decoded histograms may come from elsewhere).
    fn nearest(digits: u8) -> Self {
        if digits >= Self::Aggregate.digits() {
            Self::Aggregate
        } else {
            Self::PerRequest
        }
    }
}

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
    /// An empty [`Precision::PerRequest`] histogram ([`PER_REQUEST_HISTOGRAM_BYTES`], fixed).
    pub fn new() -> Self {
        Self::with_precision(Precision::PerRequest)
    }

    /// An empty [`Precision::Aggregate`] histogram ([`AGGREGATE_HISTOGRAM_BYTES`], fixed).
    pub fn aggregate() -> Self {
        Self::with_precision(Precision::Aggregate)
    }

    /// An empty histogram of `precision`, its counters allocated for the whole range.
    pub fn with_precision(precision: Precision) -> Self {
        Self {
            hdr: full_range_hdr(precision),
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            saturated: 0,
        }
    }

    /// The precision of this histogram.
    pub fn precision(&self) -> Precision {
        Precision::nearest(self.hdr.sigfig())
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
        // Cannot fail: the counters cover 1 µs..MAX_TRACKABLE_US; counters saturate by themselves.
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

    /// Adds every sample of `other` into `self`. An empty `self` first takes `other`'s precision if it is finer.
    pub fn add(&mut self, other: &LatencyHistogram) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() && other.precision() > self.precision() {
            self.hdr = full_range_hdr(other.precision());
        }
        // Cannot fail: both sides cover 1 µs..MAX_TRACKABLE_US (decoding re-homes foreign ranges).
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

    /// Value at `quantile` (0.0..=1.0) in microseconds, within the histogram's precision (1 % per request,
    /// 0.1 % aggregate), never outside the exact min/max (`None` when empty).
    pub fn quantile_us(&self, quantile: f64) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        let raw = self.hdr.value_at_quantile(quantile.clamp(0.0, 1.0));
        Some(raw.clamp(self.min_us, self.max_us))
    }

    /// True when both hold the same HDR counts, bucket for bucket (exact min, max and sum not compared: a
    /// histogram read back from an interval log only has the ones its counts imply).
    pub fn same_counts(&self, other: &LatencyHistogram) -> bool {
        self.hdr == other.hdr
    }

    /// The HDR counts (for writers of standard HdrHistogram formats).
    pub(crate) fn hdr(&self) -> &Histogram<u32> {
        &self.hdr
    }

    /// A histogram from base64 HdrHistogram V2 (+DEFLATE) bytes alone, as an interval log stores it: the
    /// counts exactly, min / max / sum as the counts imply (lowest / highest equivalent values, mean x count);
    /// the saturated count is not in the encoding and reads as 0.
    pub fn from_encoded_hdr(text: &str) -> Result<LatencyHistogram, String> {
        let hdr = Self::decode_hdr(text)?;
        let (min_us, max_us) = if hdr.is_empty() {
            (u64::MAX, 0)
        } else {
            (hdr.min(), hdr.max())
        };
        let sum_us = (hdr.mean() * hdr.len() as f64).round() as u64;
        Ok(LatencyHistogram {
            saturated: 0,
            hdr,
            sum_us,
            min_us,
            max_us,
        })
    }

    /// How many values fall in each bucket of ascending upper bounds `bounds_us` (microseconds, inclusive),
    /// plus one last count above the last bound: the classic `le` buckets of a Prometheus histogram, per
    /// bucket (not cumulative). A value is placed by its bucket's representative value, so a value within the
    /// histogram's precision of a bound may land on either side of it. One pass over the recorded values.
    pub fn counts_up_to(&self, bounds_us: &[u64]) -> Vec<u64> {
        let mut counts = vec![0; bounds_us.len() + 1];
        for v in self.hdr.iter_recorded() {
            let value = self.hdr.median_equivalent(v.value_iterated_to());
            counts[bounds_us.partition_point(|&b| b < value)] += v.count_since_last_iteration();
        }
        counts
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
        Self::decode_hdr_bytes(&bytes)
    }

    fn decode_hdr_bytes(bytes: &[u8]) -> Result<Histogram<u32>, String> {
        let decoded: Histogram<u32> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("histogram is not a valid HdrHistogram V2 encoding: {e:?}"))?;
        let precision = Precision::nearest(decoded.sigfig());
        let ours = decoded.low() == 1
            && decoded.high() == MAX_TRACKABLE_US
            && decoded.sigfig() == precision.digits();
        if ours {
            return Ok(decoded);
        }
        // Another range or precision (another tool, or an older auto-resizing encoding): re-home the counts
        // into a full-range histogram of the nearest precision so the memory stays fixed and merges stay exact.
        let mut hdr = full_range_hdr(precision);
        hdr.add(&decoded).map_err(|_| {
            format!(
                "histogram holds values above {MAX_TRACKABLE_US} µs (largest {})",
                decoded.max()
            )
        })?;
        Ok(hdr)
    }
}

/// A histogram packed small to keep one per second of a run (the recovery verdict merges windows of seconds):
/// the HdrHistogram V2+DEFLATE bytes and the exact aggregates — a few hundred bytes for a second of load instead
/// of the counters' fixed size. Made by [`LatencyHistogram::pack`], read back by [`PackedHistogram::unpack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedHistogram {
    hdr: Box<[u8]>,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
    saturated: u64,
}

impl LatencyHistogram {
    /// This histogram packed ([`PackedHistogram`]).
    pub fn pack(&self) -> PackedHistogram {
        let mut bytes = Vec::new();
        // Serializing into a Vec cannot fail for a valid histogram.
        let _ = V2DeflateSerializer::new().serialize(&self.hdr, &mut bytes);
        PackedHistogram {
            hdr: bytes.into_boxed_slice(),
            sum_us: self.sum_us,
            min_us: self.min_us,
            max_us: self.max_us,
            saturated: self.saturated,
        }
    }
}

impl PackedHistogram {
    /// Bytes held (what keeping one per second costs).
    pub fn packed_bytes(&self) -> usize {
        self.hdr.len() + std::mem::size_of::<Self>()
    }

    /// The histogram back, at the precision it was packed with; `Err` only for corrupted bytes.
    pub fn unpack(&self) -> Result<LatencyHistogram, String> {
        Ok(LatencyHistogram {
            hdr: LatencyHistogram::decode_hdr_bytes(&self.hdr)?,
            sum_us: self.sum_us,
            min_us: self.min_us,
            max_us: self.max_us,
            saturated: self.saturated,
        })
    }
}

/// Counters for 1 µs..[`MAX_TRACKABLE_US`] at `precision`, allocated and zeroed now (so the memory is resident
/// from the start), never resized.
fn full_range_hdr(precision: Precision) -> Histogram<u32> {
    // 1..MAX_TRACKABLE_US at 2 or 3 significant digits is always a valid configuration.
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, precision.digits())
        .expect("valid HdrHistogram configuration")
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
    fn counts_up_to_places_values_in_le_buckets() {
        let h = hist(&[50, 100, 101, 900, 950, 5_000, 2_000_000]);
        // (bounds, per-bucket counts with the overflow last)
        let cases: [(&[u64], &[u64]); 3] = [
            (&[100, 1_000, 10_000], &[2, 3, 1, 1]),
            (&[10], &[0, 7]),
            (&[], &[7]),
        ];
        for (bounds, expected) in cases {
            assert_eq!(h.counts_up_to(bounds), expected, "{bounds:?}");
        }
        assert_eq!(LatencyHistogram::new().counts_up_to(&[1]), vec![0, 0]);
    }

    #[test]
    fn quantiles_are_within_each_precisions_error() {
        for (precision, max_error) in [(Precision::PerRequest, 0.01), (Precision::Aggregate, 0.001)]
        {
            let mut h = LatencyHistogram::with_precision(precision);
            for v in 1..=100_000 {
                h.record_us(v);
            }
            for (q, exact) in [
                (0.5, 50_000.0),
                (0.95, 95_000.0),
                (0.99, 99_000.0),
                (1.0, 100_000.0),
            ] {
                let got = h.quantile_us(q).unwrap() as f64;
                assert!(
                    (got - exact).abs() / exact <= max_error,
                    "{precision:?} q{q}: {got} vs {exact}"
                );
            }
            assert_eq!(h.min_us(), Some(1));
            assert_eq!(h.max_us(), Some(100_000));
            assert_eq!(h.mean_us(), Some(50_000.5));
        }
    }

    #[test]
    fn small_values_are_exact_to_the_microsecond() {
        for (precision, exact_below) in [(Precision::PerRequest, 256), (Precision::Aggregate, 2048)]
        {
            let mut h = LatencyHistogram::with_precision(precision);
            for v in 1..exact_below {
                h.record_us(v);
            }
            let median = exact_below / 2;
            assert_eq!(h.quantile_us(0.5), Some(median), "{precision:?}");
        }
    }

    #[test]
    fn packing_keeps_every_count_in_a_few_hundred_bytes() {
        // A busy second: 500 requests spread over 5..60 ms.
        let mut second = LatencyHistogram::aggregate();
        for i in 0..500u64 {
            second.record_us(5_000 + (i * 7_919) % 55_000);
        }
        let packed = second.pack();
        assert!(
            packed.packed_bytes() < 4096,
            "{} bytes",
            packed.packed_bytes()
        );
        assert_eq!(packed.unpack().unwrap(), second);
        let empty = LatencyHistogram::aggregate().pack().unpack().unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.min_us(), None);
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
    }

    #[test]
    fn memory_is_fixed_at_creation_whatever_is_recorded() {
        for precision in [Precision::PerRequest, Precision::Aggregate] {
            let mut h = LatencyHistogram::with_precision(precision);
            assert_eq!(h.counter_bytes(), precision.counter_bytes());
            for i in 0..200_000u64 {
                h.record_us(1 + i * i);
            }
            h.record_us(MAX_TRACKABLE_US * 2);
            let mut merged = LatencyHistogram::with_precision(precision);
            merged.add(&h);
            merged.add(&hist(&[MAX_TRACKABLE_US]));
            assert_eq!(
                (h.counter_bytes(), merged.counter_bytes()),
                (precision.counter_bytes(), precision.counter_bytes()),
                "{precision:?}"
            );
        }
    }

    #[test]
    fn an_empty_histogram_takes_the_finer_precision_of_what_is_added() {
        let mut fine = LatencyHistogram::aggregate();
        fine.record_us(12_345);
        let cases = [
            (LatencyHistogram::new(), &fine, Precision::Aggregate),
            (hist(&[5]), &fine, Precision::PerRequest),
            (
                LatencyHistogram::aggregate(),
                &hist(&[5]),
                Precision::Aggregate,
            ),
        ];
        for (mut into, added, expected) in cases {
            into.add(added);
            assert_eq!(into.precision(), expected);
        }
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
        for precision in [Precision::PerRequest, Precision::Aggregate] {
            let mut h = LatencyHistogram::with_precision(precision);
            for v in [3, 999, 12_345, 7_000_000] {
                h.record_us(v);
            }
            let json = serde_json::to_string(&h).unwrap();
            let mut back: LatencyHistogram = serde_json::from_str(&json).unwrap();
            assert_eq!(back, h);
            back.add(&hist(&[MAX_TRACKABLE_US]));
            assert_eq!(back.count(), 5);
        }
    }

    #[test]
    fn foreign_encodings_are_rehomed_into_a_full_range_histogram() {
        // An auto-resizing 3-digit histogram (what earlier versions wrote) and a 1-digit one from another tool.
        for (digits, expected, error) in [
            (3, Precision::Aggregate, 0.001),
            (1, Precision::PerRequest, 0.1),
        ] {
            let mut foreign = Histogram::<u32>::new(digits).unwrap();
            foreign.record(1_500).unwrap();
            foreign.record(80_000).unwrap();
            let mut bytes = Vec::new();
            V2DeflateSerializer::new()
                .serialize(&foreign, &mut bytes)
                .unwrap();
            let hdr = base64::engine::general_purpose::STANDARD.encode(bytes);
            let json = format!(
                r#"{{"count":2,"sum_us":81500,"min_us":1500,"max_us":80000,"saturated":0,"hdr":"{hdr}"}}"#
            );
            let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
            assert_eq!((back.precision(), back.count()), (expected, 2));
            assert_eq!(back.counter_bytes(), expected.counter_bytes());
            let p100 = back.quantile_us(1.0).unwrap() as f64;
            assert!(
                (p100 - 80_000.0).abs() / 80_000.0 <= error,
                "{digits}: {p100}"
            );
        }
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
