//! Latency models. Every delay the mock adds is drawn from a [`Distribution`] with a seeded RNG and waited
//! with `tokio::time::sleep`, so thousands of slow requests cost timers, not threads, and the same seed gives
//! the same delays.

use rand::Rng;
use rand_distr::{Distribution as _, LogNormal, Normal};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A distribution of delays. TOML: `{ fixed = "20ms" }`, `{ uniform = { min = "10ms", max = "30ms" } }`,
/// `{ normal = { mean = "40ms", stddev = "10ms" } }`, `{ lognormal = { median = "40ms", p99 = "200ms" } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always the same delay.
    Fixed(#[serde(with = "human_duration::serde::required")] Duration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Smallest delay.
        #[serde(with = "human_duration::serde::required")]
        min: Duration,
        /// Largest delay.
        #[serde(with = "human_duration::serde::required")]
        max: Duration,
    },
    /// Normal, truncated at zero.
    Normal {
        /// Mean delay.
        #[serde(with = "human_duration::serde::required")]
        mean: Duration,
        /// Standard deviation.
        #[serde(with = "human_duration::serde::required")]
        stddev: Duration,
    },
    /// Log-normal given by its median and 99th percentile (the numbers people quote for real providers).
    Lognormal {
        /// Median delay.
        #[serde(with = "human_duration::serde::required")]
        median: Duration,
        /// 99th-percentile delay; must be >= median.
        #[serde(with = "human_duration::serde::required")]
        p99: Duration,
    },
}

/// A latency distribution whose parameters cannot describe a distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistributionError {
    /// `uniform` with `min > max`.
    #[error("uniform: min {min:?} > max {max:?}")]
    UniformMinAboveMax {
        /// The lower bound given.
        min: Duration,
        /// The upper bound given.
        max: Duration,
    },
    /// `lognormal` with a zero median.
    #[error("lognormal: median must be > 0")]
    LognormalZeroMedian,
    /// `lognormal` with `p99 < median`.
    #[error("lognormal: p99 {p99:?} < median {median:?}")]
    LognormalP99BelowMedian {
        /// The median given.
        median: Duration,
        /// The 99th percentile given.
        p99: Duration,
    },
}

/// A latency profile field whose distribution is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct LatencyError {
    /// The profile field (`base`, `ttft`, `inter_token`).
    pub field: &'static str,
    /// What is wrong with its distribution.
    pub problem: DistributionError,
}

impl Distribution {
    /// Check parameters that serde cannot (min <= max, median > 0, p99 >= median).
    pub fn validate(&self) -> Result<(), DistributionError> {
        match *self {
            Distribution::Uniform { min, max } if min > max => {
                Err(DistributionError::UniformMinAboveMax { min, max })
            }
            Distribution::Lognormal { median, .. } if median.is_zero() => {
                Err(DistributionError::LognormalZeroMedian)
            }
            Distribution::Lognormal { median, p99 } if p99 < median => {
                Err(DistributionError::LognormalP99BelowMedian { median, p99 })
            }
            _ => Ok(()),
        }
    }

    /// Draw one delay. Invalid parameters (not validated) degrade to the central value instead of panicking.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Distribution::Fixed(delay) => delay,
            Distribution::Uniform { min, max } if min < max => rng.random_range(min..=max),
            Distribution::Uniform { min, .. } => min,
            Distribution::Normal { mean, stddev } => {
                Normal::new(mean.as_secs_f64(), stddev.as_secs_f64())
                    .map(|normal| seconds(normal.sample(rng)))
                    .unwrap_or(mean)
            }
            Distribution::Lognormal { median, p99 } => {
                let mu = median.as_secs_f64().ln();
                let sigma = ((p99.as_secs_f64().ln() - mu) / Z_P99).max(0.0);
                LogNormal::new(mu, sigma)
                    .map(|ln| seconds(ln.sample(rng)))
                    .unwrap_or(median)
            }
        }
    }
}

/// Seconds as a duration, clamped to [0, 1 h] so a wild draw never overflows or hangs a test for days.
fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.0, 3600.0))
}

/// How long a response takes. Non-streaming: `base` + `per_output_token` × output tokens before the response.
/// Streaming: `base` before the headers, `ttft` before the first token, `inter_token` between tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyProfile {
    /// Delay before the response (or, for streams, before the headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Distribution>,
    /// Extra delay per generated token for non-streaming responses.
    #[serde(
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub per_output_token: Option<Duration>,
    /// Streams: time to first token (after the headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<Distribution>,
    /// Streams: delay between consecutive tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inter_token: Option<Distribution>,
}

impl LatencyProfile {
    /// Validate every distribution in the profile, naming the offending field.
    pub fn validate(&self) -> Result<(), LatencyError> {
        let fields = [
            ("base", &self.base),
            ("ttft", &self.ttft),
            ("inter_token", &self.inter_token),
        ];
        for (name, distribution) in fields {
            if let Some(distribution) = distribution {
                distribution.validate().map_err(|problem| LatencyError {
                    field: name,
                    problem,
                })?;
            }
        }
        Ok(())
    }

    /// Delay before a non-streaming response carrying `output_tokens` tokens.
    pub fn response_delay<R: Rng + ?Sized>(&self, rng: &mut R, output_tokens: u32) -> Duration {
        let per_token = self.per_output_token.unwrap_or_default() * output_tokens;
        draw(&self.base, rng) + per_token
    }

    /// Delay before a stream's headers.
    pub fn header_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        draw(&self.base, rng)
    }

    /// Delay before the first streamed token.
    pub fn first_token_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        draw(&self.ttft, rng)
    }

    /// Delay before each later streamed token.
    pub fn inter_token_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        draw(&self.inter_token, rng)
    }

    /// True when the profile never delays anything (lets the hot path skip timers entirely).
    pub fn is_instant(&self) -> bool {
        self.base.is_none()
            && self.per_output_token.is_none()
            && self.ttft.is_none()
            && self.inter_token.is_none()
    }
}

/// The mock-wide latency: the default profile and per-route overrides (a key's own profile still wins). The
/// body of `GET`/`PUT /__admin/latency`, so a harness can give an already running mock a scenario's latency for
/// one run and put the previous one back afterwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencySettings {
    /// Latency for every route and key unless overridden.
    pub latency: LatencyProfile,
    /// Per-route overrides.
    pub route_latency: std::collections::BTreeMap<crate::route::Route, LatencyProfile>,
}

impl LatencySettings {
    /// The profile of `route`: its override, else the default.
    pub fn for_route(&self, route: crate::route::Route) -> &LatencyProfile {
        self.route_latency.get(&route).unwrap_or(&self.latency)
    }

    /// Validate every profile; the error names the field (`latency.base`, `route_latency.messages.ttft`).
    pub fn validate(&self) -> Result<(), (String, LatencyError)> {
        self.latency
            .validate()
            .map_err(|e| ("latency".to_string(), e))?;
        for (route, profile) in &self.route_latency {
            profile
                .validate()
                .map_err(|e| (format!("route_latency.{route}"), e))?;
        }
        Ok(())
    }
}

fn draw<R: Rng + ?Sized>(distribution: &Option<Distribution>, rng: &mut R) -> Duration {
    distribution
        .as_ref()
        .map(|d| d.sample(rng))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    fn quantile(distribution: &Distribution, q: f64) -> Duration {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut draws: Vec<Duration> = (0..20_000).map(|_| distribution.sample(&mut rng)).collect();
        draws.sort();
        draws[((draws.len() as f64) * q) as usize]
    }

    #[test]
    fn quantiles_follow_parameters() {
        let cases = [
            (Distribution::Fixed(ms(20)), 0.5, ms(20), ms(20)),
            (
                Distribution::Uniform {
                    min: ms(10),
                    max: ms(30),
                },
                0.5,
                ms(18),
                ms(22),
            ),
            (
                Distribution::Normal {
                    mean: ms(40),
                    stddev: ms(10),
                },
                0.5,
                ms(38),
                ms(42),
            ),
            (
                Distribution::Lognormal {
                    median: ms(40),
                    p99: ms(200),
                },
                0.5,
                ms(37),
                ms(43),
            ),
            (
                Distribution::Lognormal {
                    median: ms(40),
                    p99: ms(200),
                },
                0.99,
                ms(170),
                ms(235),
            ),
        ];
        for (distribution, q, low, high) in cases {
            let value = quantile(&distribution, q);
            assert!(
                value >= low && value <= high,
                "{distribution:?} q{q} = {value:?}"
            );
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let distribution = Distribution::Lognormal {
            median: ms(40),
            p99: ms(200),
        };
        let run = || {
            let mut rng = ChaCha8Rng::seed_from_u64(42);
            (0..10)
                .map(|_| distribution.sample(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn validation_names_the_problem() {
        let cases = [
            (
                Distribution::Uniform {
                    min: ms(30),
                    max: ms(10),
                },
                Some("min"),
            ),
            (
                Distribution::Lognormal {
                    median: ms(0),
                    p99: ms(10),
                },
                Some("median"),
            ),
            (
                Distribution::Lognormal {
                    median: ms(50),
                    p99: ms(10),
                },
                Some("p99"),
            ),
            (
                Distribution::Normal {
                    mean: ms(5),
                    stddev: ms(1),
                },
                None,
            ),
        ];
        for (distribution, expected) in cases {
            match (distribution.validate(), expected) {
                (Ok(()), None) => {}
                (Err(error), Some(word)) => {
                    let message = error.to_string();
                    assert!(message.contains(word), "{message}")
                }
                (other, _) => panic!("{distribution:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn profile_adds_per_token_time() {
        let profile = LatencyProfile {
            base: Some(Distribution::Fixed(ms(10))),
            per_output_token: Some(ms(2)),
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(profile.response_delay(&mut rng, 5), ms(20));
        assert!(LatencyProfile::default().is_instant());
    }
}
