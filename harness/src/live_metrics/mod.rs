//! The harness's own live metrics: `harness run --metrics-listen ADDR` serves OpenMetrics text at
//! `GET /metrics` while a run goes on, so a long run can be watched in Prometheus/Grafana.
//!
//! Why histograms and not percentile gauges: quantiles of different runs, shards or time windows cannot be
//! averaged, bucket counts can be summed and `histogram_quantile` taken over the sum. The buckets are fixed
//! (see [`LATENCY_BUCKETS_SECONDS`]) so every run's series add up.
//!
//! # Layout
//! - `buckets`: the pure pieces (bucket bounds, status-class labels, fault windows and phases on the clock);
//! - `metrics`: the families ([`LiveMetrics`]) and how the run loop feeds them, once per interval;
//! - `server`: the axum endpoint ([`MetricsServer`]).
//!
//! The endpoint is read-only and unauthenticated: listen on loopback (`127.0.0.1:9464`) unless the network
//! between it and the scraper is trusted.

mod buckets;
mod metrics;
mod server;

pub use buckets::{class_label, FaultWindow, RunPhase, LATENCY_BUCKETS_SECONDS};
pub use metrics::{threshold_check, LiveMetrics, LoadPlan};
pub use server::{
    app, parse_listen_addr, ListenError, MetricsServer, OPENMETRICS_CONTENT_TYPE, STOP_GRACE,
};
