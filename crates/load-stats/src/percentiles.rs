//! The percentiles every report shows, in Locust's order.
//!
//! Why one type: the Locust CSVs, `summary.json`, thresholds and the progress line must all agree on which
//! percentiles exist and how they are named.

use serde::{Deserialize, Serialize};

use crate::LatencyHistogram;

/// Quantiles reported, in Locust's `PERCENTILES_TO_REPORT` order.
pub const REPORTED_QUANTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];
/// Locust's column labels of [`REPORTED_QUANTILES`].
pub const LOCUST_PERCENTILE_LABELS: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// Latency percentiles in milliseconds (microsecond precision).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyPercentiles {
    /// Median.
    pub p50: f64,
    /// 66th percentile.
    pub p66: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 80th percentile.
    pub p80: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 98th percentile.
    pub p98: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// 99.99th percentile.
    pub p99_99: f64,
    /// Maximum.
    pub p100: f64,
}

impl LatencyPercentiles {
    /// Percentiles of `histogram`, `None` when it is empty.
    pub fn of(histogram: &LatencyHistogram) -> Option<Self> {
        let ms = |q: f64| histogram.quantile_us(q).map(us_to_ms);
        Some(Self {
            p50: ms(0.50)?,
            p66: ms(0.66)?,
            p75: ms(0.75)?,
            p80: ms(0.80)?,
            p90: ms(0.90)?,
            p95: ms(0.95)?,
            p98: ms(0.98)?,
            p99: ms(0.99)?,
            p99_9: ms(0.999)?,
            p99_99: ms(0.9999)?,
            p100: ms(1.0)?,
        })
    }

    /// The values in [`REPORTED_QUANTILES`] order.
    pub fn as_array(&self) -> [f64; 11] {
        [
            self.p50,
            self.p66,
            self.p75,
            self.p80,
            self.p90,
            self.p95,
            self.p98,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.p100,
        ]
    }
}

/// Microseconds to milliseconds.
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_histogram_in_locust_order() {
        let mut h = LatencyHistogram::aggregate();
        for ms in 1..=1000u64 {
            h.record_us(ms * 1000);
        }
        let p = LatencyPercentiles::of(&h).unwrap();
        let values = p.as_array();
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        assert!((p.p50 - 500.0).abs() <= 0.5, "{}", p.p50);
        assert!((p.p99 - 990.0).abs() <= 1.0, "{}", p.p99);
        assert_eq!(p.p100, 1000.0);
        assert_eq!(LatencyPercentiles::of(&LatencyHistogram::new()), None);
    }
}
