//! Counters and latency histograms of one request (method + name), split by status class.
//!
//! Why per class: a fast 429 or a fast connection refusal must not make the success latency look good, and the
//! users' error rate excludes 429s — both need the split; the per-request and aggregated views are sums.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{LatencyHistogram, StatusClass};

/// Requests of one status class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassStats {
    /// Requests in this class.
    pub requests: u64,
    /// How many of them the scenario counted as failures.
    pub failures: u64,
    /// Their latencies (microseconds).
    pub latency: LatencyHistogram,
}

impl ClassStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ClassStats) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.latency.add(&other.latency);
    }
}

/// Statistics of one request (Locust's row: method + name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestStats {
    /// HTTP method (Locust's `Type`).
    pub method: String,
    /// Request name (Locust's `Name`).
    pub name: String,
    /// Response bytes, summed.
    pub content_bytes: u64,
    /// Per status class; classes never seen are absent (histograms are created lazily).
    pub classes: BTreeMap<StatusClass, ClassStats>,
}

impl RequestStats {
    /// Empty statistics for `method` + `name`.
    pub fn new(method: &str, name: &str) -> Self {
        Self {
            method: method.to_owned(),
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Mutable class entry, created on first use.
    pub fn class_mut(&mut self, class: StatusClass) -> &mut ClassStats {
        self.classes.entry(class).or_default()
    }

    /// Adds the classes of `other` that saw requests into `self` (method and name are not checked); idle
    /// classes create no entry.
    pub fn merge_seen(&mut self, other: &RequestStats) {
        self.content_bytes += other.content_bytes;
        for (class, stats) in other.classes.iter().filter(|(_, s)| s.requests > 0) {
            self.class_mut(*class).merge(stats);
        }
    }

    /// Zeroes every counter and histogram, keeping the entries and their memory.
    pub fn reset(&mut self) {
        self.content_bytes = 0;
        for class in self.classes.values_mut() {
            class.requests = 0;
            class.failures = 0;
            class.latency.reset();
        }
    }

    /// Adds `other` into `self` (method and name are not checked).
    pub fn merge(&mut self, other: &RequestStats) {
        self.content_bytes += other.content_bytes;
        for (class, stats) in &other.classes {
            self.class_mut(*class).merge(stats);
        }
    }

    /// All requests.
    pub fn requests(&self) -> u64 {
        self.classes.values().map(|c| c.requests).sum()
    }

    /// All failures (like Locust's `Failure Count`, 429s included).
    pub fn failures(&self) -> u64 {
        self.classes.values().map(|c| c.failures).sum()
    }

    /// Failures that were 429 responses.
    pub fn failures_429(&self) -> u64 {
        self.classes
            .get(&StatusClass::TooManyRequests)
            .map_or(0, |c| c.failures)
    }

    /// Latency of every class merged.
    pub fn latency(&self) -> LatencyHistogram {
        let mut all = LatencyHistogram::new();
        for class in self.classes.values() {
            all.add(&class.latency);
        }
        all
    }
}
