//! Stream pass-through: does the first token reach the client when the upstream sends it, or does the proxy
//! hold the stream until it is complete?
//!
//! Inputs are client-side timings of streamed responses through the proxy (time to first token and time to the
//! end of the stream, both from sending the request) and the upstream's own time to first token (known from the
//! mock's latency profile or measured against the mock directly). Medians are compared, so a few slow streams do
//! not decide the verdict.
//!
//! A buffering proxy delivers the first token only at the end: its client TTFT sits near the stream's total
//! duration even though the upstream's TTFT is small. Only the part of the stream *after* the upstream's first
//! token can reveal buffering, so when that part is shorter than `min_stream_spread` the verdict is
//! inconclusive rather than a guess.

use crate::serde_units::millis;
use mock_upstream::{Distribution, LatencyProfile};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One streamed response as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSample {
    /// From sending the request to the first content byte of the stream.
    #[serde(rename = "ttft_ms", with = "millis")]
    pub ttft: Duration,
    /// From sending the request to the end of the stream.
    #[serde(rename = "total_ms", with = "millis")]
    pub total: Duration,
}

/// Where a buffering proxy is told apart from a passing-through one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamRules {
    /// Buffered when the client's first token comes later than this share of the way from the upstream's first
    /// token to the end of the stream (0..=1).
    pub buffered_share: f64,
    /// Streams whose time after the upstream's first token is shorter than this cannot show buffering.
    #[serde(rename = "min_stream_spread_ms", with = "millis")]
    pub min_stream_spread: Duration,
}

impl Default for StreamRules {
    fn default() -> Self {
        StreamRules {
            buffered_share: 0.8,
            min_stream_spread: Duration::from_millis(50),
        }
    }
}

/// The pass-through verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamVerdict {
    /// The first token arrives while the stream is still going.
    PassThrough,
    /// The first token arrives only when the stream is (nearly) over.
    Buffered,
    /// No streams, or streams too short to tell.
    Inconclusive,
}

/// Stream timing through the proxy against the upstream's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPassThrough {
    /// Streams measured.
    pub streams: usize,
    /// Median client TTFT.
    #[serde(rename = "client_ttft_ms", with = "millis")]
    pub client_ttft: Duration,
    /// Median client stream duration.
    #[serde(rename = "client_total_ms", with = "millis")]
    pub client_total: Duration,
    /// The upstream's TTFT.
    #[serde(rename = "upstream_ttft_ms", with = "millis")]
    pub upstream_ttft: Duration,
    /// What the proxy adds to TTFT: median client TTFT − upstream TTFT (0 if negative).
    #[serde(rename = "ttft_overhead_ms", with = "millis")]
    pub ttft_overhead: Duration,
    /// Where the client's first token falls between the upstream's first token (0) and the end of the stream (1).
    pub ttft_position: Option<f64>,
    /// The verdict.
    pub verdict: StreamVerdict,
}

/// Judge `samples` against the upstream's TTFT.
pub fn stream_pass_through(
    samples: &[StreamSample],
    upstream_ttft: Duration,
    rules: &StreamRules,
) -> StreamPassThrough {
    let client_ttft = median(samples.iter().map(|s| s.ttft));
    let client_total = median(samples.iter().map(|s| s.total));
    let spread = client_total.saturating_sub(upstream_ttft);
    let ttft_position = (!spread.is_zero())
        .then(|| client_ttft.saturating_sub(upstream_ttft).as_secs_f64() / spread.as_secs_f64());
    let verdict = match ttft_position {
        _ if samples.is_empty() || spread < rules.min_stream_spread => StreamVerdict::Inconclusive,
        Some(position) if position >= rules.buffered_share => StreamVerdict::Buffered,
        _ => StreamVerdict::PassThrough,
    };
    StreamPassThrough {
        streams: samples.len(),
        client_ttft,
        client_total,
        upstream_ttft,
        ttft_overhead: client_ttft.saturating_sub(upstream_ttft),
        ttft_position,
        verdict,
    }
}

/// Median of the durations (upper middle for an even count), zero when empty.
/// When the mock sends a stream's first SSE `data:` event, as clients time TTFT (first `data:` event): after its
/// header delay (`base`), because the mock sends the provider's preamble frames (OpenAI's role delta,
/// Anthropic's `message_start`) with the headers and only delays the first *token* by `ttft`. Central values
/// are used: the fixed delay, the middle of a uniform range, the mean of a normal, the median of a lognormal.
/// Pass the profile that applies (a key's own, else the route's, else the config's `latency`).
pub fn mock_first_event_delay(profile: &LatencyProfile) -> Duration {
    profile.base.as_ref().map_or(Duration::ZERO, central)
}

/// The typical value of a delay distribution.
fn central(distribution: &Distribution) -> Duration {
    match *distribution {
        Distribution::Fixed(delay) => delay,
        Distribution::Uniform { min, max } => min + max.saturating_sub(min) / 2,
        Distribution::Normal { mean, .. } => mean,
        Distribution::Lognormal { median, .. } => median,
    }
}

fn median(values: impl Iterator<Item = Duration>) -> Duration {
    let mut values: Vec<Duration> = values.collect();
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn samples(pairs: &[(u64, u64)]) -> Vec<StreamSample> {
        pairs
            .iter()
            .map(|(ttft, total)| StreamSample {
                ttft: ms(*ttft),
                total: ms(*total),
            })
            .collect()
    }

    #[test]
    fn verdict_table() {
        // (client (ttft, total) samples, upstream ttft, expected verdict, expected overhead ms)
        type Case<'a> = (&'a [(u64, u64)], u64, StreamVerdict, u64);
        let cases: [Case; 7] = [
            // Pass-through: first token right after the upstream's, stream lasts 400 ms.
            (
                &[(12, 410), (11, 405), (13, 420)],
                10,
                StreamVerdict::PassThrough,
                2,
            ),
            // Buffering: first token only at the end.
            (
                &[(400, 410), (398, 405), (415, 420)],
                10,
                StreamVerdict::Buffered,
                390,
            ),
            // One buffered outlier does not flip the median.
            (
                &[(12, 410), (400, 405), (13, 420)],
                10,
                StreamVerdict::PassThrough,
                3,
            ),
            // A slow but streaming proxy: adds 100 ms, still well before the end.
            (
                &[(110, 500), (111, 505), (109, 495)],
                10,
                StreamVerdict::PassThrough,
                100,
            ),
            // Streams too short to tell.
            (&[(30, 40), (31, 41)], 10, StreamVerdict::Inconclusive, 21),
            (&[], 10, StreamVerdict::Inconclusive, 0),
            // Client faster than the stated upstream TTFT (clock noise): no negative overhead.
            (&[(8, 400)], 10, StreamVerdict::PassThrough, 0),
        ];
        for (pairs, upstream, verdict, overhead) in cases {
            let result =
                stream_pass_through(&samples(pairs), ms(upstream), &StreamRules::default());
            assert_eq!(result.verdict, verdict, "{pairs:?}");
            assert_eq!(result.ttft_overhead, ms(overhead), "{pairs:?}");
        }
    }

    #[test]
    fn mock_first_event_delay_table() {
        let profile = |base| LatencyProfile {
            base,
            ttft: Some(Distribution::Fixed(ms(500))),
            ..Default::default()
        };
        let cases = [
            (None, 0),
            (Some(Distribution::Fixed(ms(20))), 20),
            (
                Some(Distribution::Uniform {
                    min: ms(10),
                    max: ms(30),
                }),
                20,
            ),
            (
                Some(Distribution::Normal {
                    mean: ms(40),
                    stddev: ms(10),
                }),
                40,
            ),
            (
                Some(Distribution::Lognormal {
                    median: ms(40),
                    p99: ms(400),
                }),
                40,
            ),
        ];
        for (base, expected) in cases {
            assert_eq!(
                mock_first_event_delay(&profile(base.clone())),
                ms(expected),
                "{base:?}"
            );
        }
    }

    #[test]
    fn serializes_milliseconds() {
        let result = stream_pass_through(&samples(&[(12, 410)]), ms(10), &StreamRules::default());
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["client_ttft_ms"], 12.0);
        assert_eq!(json["verdict"], "pass_through");
        assert_eq!(
            serde_json::from_value::<StreamPassThrough>(json).unwrap(),
            result
        );
    }
}
