//! The HTTP side of the remote sources: every tick, scrape each replica's `/metrics` (or run one instant query
//! per gauge against Prometheus) concurrently, and hand the answers to the pure [`ReplicaTracker`].
//!
//! The sampling thread owns a single-threaded tokio runtime for this, so the scrapes neither wait on nor slow
//! down the load generator's runtime, and the thread's CPU clock still measures the monitor's whole cost. Each
//! request times out within the interval, so a hung replica costs a gap, not a stalled monitor.

use std::time::{Duration, Instant};

use super::exposition::reading_from_text;
use super::promql::{readings_by_replica, values_by_replica};
use super::replicas::{ReplicaTracker, TickContext, TickOutcome, TickReadings};
use super::{replica_name_of_url, Gauge, MetricNames, MonitorSource, PrometheusSpec};
use crate::cpu::CpuMeter;
use crate::monitor::Phase;
use crate::process_tree::ProcessTree;
use crate::sampler::thread_cpu_micros;

/// Samples the replicas of a remote source.
pub(crate) struct RemoteSampler {
    source: MonitorSource,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    tracker: ReplicaTracker,
    /// The harness's own process, for the `harness_*` columns.
    own: Option<ProcessTree>,
    harness_cpu: CpuMeter,
    thread_cpu: CpuMeter,
}

impl RemoteSampler {
    /// A sampler whose requests time out within `interval`.
    pub fn new(source: MonitorSource, interval: Duration) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let timeout = interval
            .mul_f64(0.8)
            .clamp(Duration::from_millis(50), Duration::from_secs(10));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            source,
            runtime,
            client,
            tracker: ReplicaTracker::default(),
            own: ProcessTree::attach(std::process::id()),
            harness_cpu: CpuMeter::default(),
            thread_cpu: CpuMeter::default(),
        })
    }

    /// Reads every replica now.
    pub fn sample(&mut self, at: Instant, t_secs: f64, unix_ms: u64, phase: Phase) -> TickOutcome {
        let readings = match &self.source {
            MonitorSource::Metrics { urls, names } => {
                self.runtime.block_on(scrape_all(&self.client, urls, names))
            }
            MonitorSource::Prometheus(spec) => {
                let known: Vec<String> = self.tracker.replicas().cloned().collect();
                self.runtime.block_on(query_all(&self.client, spec, &known))
            }
            MonitorSource::Process { .. } => TickReadings::new(),
        };
        let own = self.own.as_mut().and_then(|tree| {
            tree.read(false);
            tree.own_usage()
        });
        let harness_cpu_percent = own
            .and_then(|own| self.harness_cpu.observe(&[((0, 0), own.cpu_micros)], at))
            .unwrap_or(0.0);
        let monitor_cpu_percent = thread_cpu_micros()
            .and_then(|micros| self.thread_cpu.observe(&[((0, 0), micros)], at))
            .unwrap_or(0.0);
        let tick = TickContext {
            t_secs,
            unix_ms,
            phase,
            harness_rss_bytes: own.map_or(0, |own| own.rss_bytes),
            harness_cpu_percent,
            monitor_cpu_percent,
        };
        self.tracker.observe(tick, &readings)
    }

    /// Columns this source cannot fill (so far).
    pub fn unavailable_columns(&self) -> Vec<String> {
        self.tracker.unavailable_columns()
    }
}

/// One GET; the body of a 2xx answer, or why there is none.
async fn get_text(client: &reqwest::Client, url: reqwest::Url) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    Ok(body)
}

async fn scrape_all(
    client: &reqwest::Client,
    urls: &[String],
    names: &MetricNames,
) -> TickReadings {
    let scrapes = urls.iter().map(|url| async move {
        let reading = match url.parse::<reqwest::Url>() {
            Ok(parsed) => get_text(client, parsed)
                .await
                .and_then(|text| reading_from_text(&text, names).map_err(|e| e.to_string())),
            Err(e) => Err(format!("{url:?} is not a URL: {e}")),
        };
        (replica_name_of_url(url), reading)
    });
    futures::future::join_all(scrapes)
        .await
        .into_iter()
        .collect()
}

async fn query_all(
    client: &reqwest::Client,
    spec: &PrometheusSpec,
    known: &[String],
) -> TickReadings {
    let queries = Gauge::ALL.into_iter().map(|gauge| async move {
        let query = spec.query(gauge);
        let mut url = format!("{}/api/v1/query", spec.url.trim_end_matches('/'))
            .parse::<reqwest::Url>()
            .map_err(|e| format!("{:?} is not a URL: {e}", spec.url))?;
        url.query_pairs_mut().append_pair("query", &query);
        let body = get_text(client, url).await?;
        values_by_replica(&body, &query, &spec.replica_label, gauge)
            .map(|values| (gauge, values))
            .map_err(|e| e.to_string())
    });
    let answers: Result<Vec<_>, String> = futures::future::join_all(queries)
        .await
        .into_iter()
        .collect();
    let mut readings: TickReadings = match answers {
        Ok(answers) => readings_by_replica(&answers)
            .into_iter()
            .map(|(replica, reading)| (replica, Ok(reading)))
            .collect(),
        // Prometheus itself did not answer: a gap for every replica known so far.
        Err(why) => known
            .iter()
            .map(|replica| {
                (
                    replica.clone(),
                    Err(format!("Prometheus query failed: {why}")),
                )
            })
            .collect(),
    };
    for replica in known {
        readings
            .entry(replica.clone())
            .or_insert_with(|| Err("not in Prometheus's answer (target down or stale)".into()));
    }
    readings
}
