//! Where the monitor's samples come from when the proxy is not a local process: its replicas' Prometheus
//! metrics, scraped directly (`/metrics`, one URL per replica) or queried from a Prometheus server.
//!
//! Why: staging deployments run the proxy in containers or as several replicas behind a service, where no PID is
//! at hand, but every replica already exports the standard process metrics (`process_resident_memory_bytes`,
//! `process_open_fds`, `process_cpu_seconds_total`, `process_start_time_seconds`, ...). Each replica becomes its
//! own series (the `replica` column of `resources.csv`) with its own verdicts ([`crate::leak::analyze_replicas`]).
//!
//! ## Layout
//! - this file: the source settings ([`MonitorSource`], [`MetricNames`], [`PrometheusSpec`]) and one replica's
//!   reading ([`RemoteReading`], keyed by [`Gauge`]).
//! - [`exposition`]: Prometheus text exposition → one [`RemoteReading`] (pure).
//! - [`promql`]: Prometheus HTTP API answers → one value per replica (pure).
//! - [`replicas`]: readings of every replica at one tick → samples, restarts noticed (pure).
//! - `scrape` (private): the HTTP I/O that feeds them.

pub mod exposition;
pub mod promql;
pub mod replicas;
pub(crate) mod scrape;

use serde::{Deserialize, Serialize};

/// A process metric a remote source reads for each replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gauge {
    /// Resident memory, bytes (`process_resident_memory_bytes`).
    Rss,
    /// Virtual memory, bytes (`process_virtual_memory_bytes`).
    Vsize,
    /// CPU seconds used so far, a counter (`process_cpu_seconds_total`).
    CpuSeconds,
    /// Open file descriptors (`process_open_fds`).
    OpenFds,
    /// Threads (`process_threads`; not every client library exports it).
    Threads,
    /// Process start time, seconds since the Unix epoch (`process_start_time_seconds`): a change is a restart.
    StartTime,
}

impl Gauge {
    /// Every gauge, in reading order.
    pub const ALL: [Gauge; 6] = [
        Gauge::Rss,
        Gauge::Vsize,
        Gauge::CpuSeconds,
        Gauge::OpenFds,
        Gauge::Threads,
        Gauge::StartTime,
    ];

    /// Two series of the same replica (per-worker or per-container series): summed, except the start time,
    /// where the newest wins so a restarted worker still shows as a restart.
    pub fn combine(self, a: f64, b: f64) -> f64 {
        if self == Gauge::StartTime {
            a.max(b)
        } else {
            a + b
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The `resources.csv` column filled from this gauge (`None`: used for CPU % or restarts only).
    pub fn column(self) -> Option<&'static str> {
        match self {
            Gauge::Rss => Some("rss_bytes"),
            Gauge::Vsize => Some("vsize_bytes"),
            Gauge::OpenFds => Some("fds"),
            Gauge::Threads => Some("threads"),
            Gauge::CpuSeconds | Gauge::StartTime => None,
        }
    }
}

/// One replica's metrics at one instant; a gauge it does not export is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteReading {
    values: [Option<f64>; 6],
}

impl RemoteReading {
    /// The value of one gauge, if the replica exports it.
    pub fn get(&self, gauge: Gauge) -> Option<f64> {
        self.values[gauge.index()]
    }

    /// Sets (or clears) one gauge.
    pub fn set(&mut self, gauge: Gauge, value: Option<f64>) {
        self.values[gauge.index()] = value;
    }

    /// A reading from `(gauge, value)` pairs (tests and examples).
    pub fn of(pairs: &[(Gauge, f64)]) -> Self {
        let mut reading = Self::default();
        for &(gauge, value) in pairs {
            reading.set(gauge, Some(value));
        }
        reading
    }

    /// Whether not a single gauge was found (the replica exports none of the configured names).
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

/// The metric names a replica exports (`[monitor.metric_names]`); the defaults are the standard process metrics
/// of the Prometheus client libraries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricNames {
    /// Resident memory in bytes.
    pub rss: String,
    /// Virtual memory in bytes.
    pub vsize: String,
    /// CPU seconds, a counter.
    pub cpu_seconds: String,
    /// Open file descriptors.
    pub open_fds: String,
    /// Threads.
    pub threads: String,
    /// Start time, seconds since the Unix epoch.
    pub start_time: String,
}

impl Default for MetricNames {
    fn default() -> Self {
        Self {
            rss: "process_resident_memory_bytes".into(),
            vsize: "process_virtual_memory_bytes".into(),
            cpu_seconds: "process_cpu_seconds_total".into(),
            open_fds: "process_open_fds".into(),
            threads: "process_threads".into(),
            start_time: "process_start_time_seconds".into(),
        }
    }
}

impl MetricNames {
    /// The name configured for one gauge.
    pub fn of(&self, gauge: Gauge) -> &str {
        match gauge {
            Gauge::Rss => &self.rss,
            Gauge::Vsize => &self.vsize,
            Gauge::CpuSeconds => &self.cpu_seconds,
            Gauge::OpenFds => &self.open_fds,
            Gauge::Threads => &self.threads,
            Gauge::StartTime => &self.start_time,
        }
    }
}

/// PromQL per gauge (`[monitor.prometheus.queries]`); an unset one is `<metric name><selector>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromQueries {
    /// Resident memory in bytes, per replica.
    pub rss: Option<String>,
    /// Virtual memory in bytes.
    pub vsize: Option<String>,
    /// CPU seconds so far (a counter: CPU % comes from its deltas).
    pub cpu_seconds: Option<String>,
    /// Open file descriptors.
    pub open_fds: Option<String>,
    /// Threads.
    pub threads: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub start_time: Option<String>,
}

impl PromQueries {
    fn of(&self, gauge: Gauge) -> Option<&String> {
        match gauge {
            Gauge::Rss => self.rss.as_ref(),
            Gauge::Vsize => self.vsize.as_ref(),
            Gauge::CpuSeconds => self.cpu_seconds.as_ref(),
            Gauge::OpenFds => self.open_fds.as_ref(),
            Gauge::Threads => self.threads.as_ref(),
            Gauge::StartTime => self.start_time.as_ref(),
        }
    }
}

/// `[monitor.prometheus]`: instant queries against a Prometheus server, one series per replica-label value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Base URL of the Prometheus server (`http://prometheus:9090`); queries go to `<url>/api/v1/query`.
    pub url: String,
    /// The label that tells replicas apart (`pod`, `instance`).
    #[serde(default = "default_replica_label")]
    pub replica_label: String,
    /// Label selector appended to every default query, e.g. `{job="proxy"}`.
    #[serde(default)]
    pub selector: String,
    /// Metric names the default queries are built from (set from `[monitor.metric_names]`, not in this table).
    #[serde(skip)]
    pub metric_names: MetricNames,
    /// Queries replacing the defaults, per gauge.
    #[serde(default)]
    pub queries: PromQueries,
}

fn default_replica_label() -> String {
    "pod".into()
}

impl PrometheusSpec {
    /// A spec with the default label and queries.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            replica_label: default_replica_label(),
            selector: String::new(),
            metric_names: MetricNames::default(),
            queries: PromQueries::default(),
        }
    }

    /// The PromQL for one gauge: the configured query, or `<metric name><selector>`.
    pub fn query(&self, gauge: Gauge) -> String {
        self.queries
            .of(gauge)
            .cloned()
            .unwrap_or_else(|| format!("{}{}", self.metric_names.of(gauge), self.selector))
    }
}

/// Where the monitor reads the proxy's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorSource {
    /// A local process tree by PID (sysinfo + procfs): the default.
    Process {
        /// The root PID.
        pid: u32,
    },
    /// `/metrics` of each replica, scraped every interval; the replica is named by the URL's `host:port`.
    Metrics {
        /// One URL per replica.
        urls: Vec<String>,
        /// The metric names to read.
        names: MetricNames,
    },
    /// Instant queries against a Prometheus server every interval.
    Prometheus(PrometheusSpec),
}

/// The `resources.csv` columns no remote source can fill: per-process details that the standard process metrics
/// do not carry. Gauges a replica does not export are added to these per run.
pub const REMOTE_UNAVAILABLE_COLUMNS: &[&str] = &[
    "rss_anon_bytes",
    "socket_fds",
    "tcp_sockets",
    "tcp_established",
    "tcp_close_wait",
    "tcp_listen",
    "tcp_other",
];

/// A replica's name for a `/metrics` URL: its `host:port` (the whole URL when it has no authority).
pub fn replica_name_of_url(url: &str) -> String {
    url.parse::<reqwest::Url>()
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_queries_come_from_names_and_selector_unless_overridden() {
        let mut spec = PrometheusSpec::new("http://127.0.0.1:9090");
        spec.selector = r#"{job="proxy"}"#.into();
        spec.queries.rss = Some("sum by (pod) (container_memory_rss)".into());
        let cases = [
            (Gauge::Rss, "sum by (pod) (container_memory_rss)"),
            (Gauge::OpenFds, r#"process_open_fds{job="proxy"}"#),
            (
                Gauge::StartTime,
                r#"process_start_time_seconds{job="proxy"}"#,
            ),
        ];
        for (gauge, want) in cases {
            assert_eq!(spec.query(gauge), want, "{gauge:?}");
        }
    }

    #[test]
    fn replicas_of_urls_are_named_by_host_and_port() {
        let cases = [
            ("http://127.0.0.1:9101/metrics", "127.0.0.1:9101"),
            ("http://proxy-0.proxy/metrics", "proxy-0.proxy:80"),
            ("not a url", "not a url"),
        ];
        for (url, want) in cases {
            assert_eq!(replica_name_of_url(url), want, "{url}");
        }
    }
}
