//! The scenario file's shape (serde types). See `scenarios/*.toml` for commented examples.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// One load scenario, as written in a `scenarios/*.toml` file (after validation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used for the results directory.
    pub name: String,
    /// One or two sentences shown by `harness list`.
    #[serde(default)]
    pub description: String,
    /// Scenario tags (for `harness list`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Seed of every random choice the harness makes (request mix, think times).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The `[load]` table as written; validation turns it into [`Scenario::load`].
    #[serde(rename = "load")]
    pub(crate) load_file: Spanned<LoadFile>,
    /// The validated load model.
    #[serde(skip)]
    pub load: LoadSpec,
    /// Weighted request mix (`[[request]]`).
    #[serde(rename = "request")]
    pub requests: Vec<Spanned<RequestSpec>>,
    /// `[thresholds]` (whole-run and per-request limits).
    #[serde(default)]
    pub thresholds: Option<load_stats::thresholds::Thresholds>,
    /// `[upstream]`: configuration of the in-process mock provider.
    #[serde(default)]
    pub upstream: Option<Spanned<mock_upstream::MockConfig>>,
    /// `[proxy]`: how to start the system under test; absent = the workspace's reference proxy.
    #[serde(default)]
    pub proxy: Option<Spanned<ProxySpec>>,
    /// `[monitor]`: resource sampling of the proxy and leak verdicts.
    #[serde(default)]
    pub monitor: MonitorSpec,
    /// `[behaviour]`: proxy-behaviour thresholds (fairness, Retry-After, masking, recovery, streams).
    #[serde(default)]
    pub behaviour: Option<Spanned<proxy_behaviour::BehaviourThresholds>>,
    /// `[[timeline]]`: fault rules switched on and off at offsets of the load clock.
    #[serde(default)]
    pub timeline: Vec<Spanned<TimelineEvent>>,
    /// Where the scenario came from (file path), filled in by the loader.
    #[serde(skip)]
    pub origin: String,
}

fn default_seed() -> u64 {
    1
}

/// The `[load]` table as written: one flat table for both models, so that serde keeps every field's span.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadFile {
    pub model: LoadModel,
    pub users: Option<u32>,
    pub spawn_rate: Option<f64>,
    pub think_time: Option<ThinkTime>,
    pub rate: Option<f64>,
    pub max_in_flight: Option<u32>,
    #[serde(
        default,
        deserialize_with = "human_duration::serde::optional::deserialize"
    )]
    pub run_time: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "human_duration::serde::optional::deserialize"
    )]
    pub timeout: Option<Duration>,
    pub keep_alive: Option<bool>,
    #[serde(default)]
    pub stages: Vec<Spanned<StageFile>>,
    /// `[load.generator]`: when the harness itself counts as overloaded.
    #[serde(default)]
    pub generator: GeneratorLimits,
}

/// `[load.generator]`: limits beyond which the harness could not deliver the load it was asked for, and the
/// run's verdict is INCONCLUSIVE (exit 5) instead of PASS. Percentages, all optional.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorLimits {
    /// Open model: most sends (in % of sent) that may leave more than `LATE_AFTER` (10 ms) behind schedule.
    /// Default 5: on a busy machine 1-3 % of sends are that late without the generator being the bottleneck
    /// (measured 0.6-2.6 % at 50 req/s with a load average of 10 on 2 cores, harness CPU 3 %).
    pub max_late_percent: f64,
    /// Open model: most arrivals (in % of scheduled) that may be due but never sent.
    pub max_dropped_percent: f64,
    /// Most CPU the harness process may use on average, in % of the cores it may run on (the in-process mock
    /// runs in it too).
    pub max_cpu_percent: f64,
}

impl Default for GeneratorLimits {
    fn default() -> Self {
        GeneratorLimits {
            max_late_percent: 5.0,
            max_dropped_percent: 0.1,
            max_cpu_percent: 90.0,
        }
    }
}

/// `load.model`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LoadModel {
    Closed,
    Open,
}

/// One `load.stages` entry as written (fields of both models).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageFile {
    #[serde(deserialize_with = "human_duration::serde::required::deserialize")]
    pub duration: Duration,
    pub users: Option<u32>,
    pub spawn_rate: Option<f64>,
    pub rate: Option<f64>,
    pub ramp: Option<bool>,
}

/// `[load]`: closed (users with think time) or open (arrival rate) model.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum LoadSpec {
    /// N users, each looping request → think → request.
    Closed(ClosedLoad),
    /// Requests arrive on a schedule regardless of how fast the target answers.
    Open(OpenLoad),
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec::Closed(ClosedLoad {
            users: 1,
            spawn_rate: DEFAULT_SPAWN_RATE,
            think_time: ThinkTime::None,
            run_time: Duration::from_secs(1),
            stages: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            keep_alive: true,
        })
    }
}

/// Closed model parameters.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedLoad {
    /// Number of users when there are no stages.
    pub users: u32,
    /// Users started (or stopped) per second.
    pub spawn_rate: f64,
    /// Pause between a user's requests.
    pub think_time: ThinkTime,
    /// Total run time (default: the sum of the stages).
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub run_time: Duration,
    /// Stages: each moves the user count to `users` (at `spawn_rate`) and holds it for `duration`.
    pub stages: Vec<ClosedStage>,
    /// Per-request timeout.
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub timeout: Duration,
    /// Reuse connections (keep-alive); `false` opens a connection per request.
    pub keep_alive: bool,
}

/// One closed-model stage.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedStage {
    /// How long the stage lasts (including the time to reach `users`).
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub duration: Duration,
    /// User count this stage moves to.
    pub users: u32,
    /// Override of `load.spawn_rate` for this stage.
    pub spawn_rate: Option<f64>,
}

/// Open model parameters.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoad {
    /// Arrival rate (requests/s) when there are no stages.
    pub rate: f64,
    /// Total run time (default: the sum of the stages).
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub run_time: Duration,
    /// Stages: each ramps linearly (`ramp = true`) or jumps to `rate` and lasts `duration`.
    pub stages: Vec<OpenStage>,
    /// Upper bound of requests in flight; arrivals beyond it wait (and count as late).
    pub max_in_flight: u32,
    /// Per-request timeout.
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub timeout: Duration,
    /// Reuse connections (keep-alive); `false` opens a connection per request.
    pub keep_alive: bool,
}

/// One open-model stage.
#[derive(Debug, Clone, Serialize)]
pub struct OpenStage {
    /// How long the stage lasts.
    #[serde(serialize_with = "human_duration::serde::required::serialize")]
    pub duration: Duration,
    /// Arrival rate (requests/s) at the end of the stage.
    pub rate: f64,
    /// Ramp linearly from the previous rate (true) or hold `rate` for the whole stage (false).
    pub ramp: bool,
}

/// Users started per second when the scenario does not say.
pub const DEFAULT_SPAWN_RATE: f64 = 10.0;
/// Per-request timeout when the scenario does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Open-model in-flight bound when the scenario does not say.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1000;

/// Think time: a constant (`"1s"`) or uniform between `min` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkTime {
    /// No pause.
    #[default]
    None,
    /// Always this long.
    Constant(#[serde(serialize_with = "human_duration::serde::required::serialize")] Duration),
    /// Uniformly distributed in `[min, max]`.
    Uniform {
        /// Lower bound.
        #[serde(serialize_with = "human_duration::serde::required::serialize")]
        min: Duration,
        /// Upper bound.
        #[serde(serialize_with = "human_duration::serde::required::serialize")]
        max: Duration,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUniform {
    #[serde(deserialize_with = "human_duration::serde::required::deserialize")]
    min: Duration,
    #[serde(deserialize_with = "human_duration::serde::required::deserialize")]
    max: Duration,
}

impl<'de> Deserialize<'de> for ThinkTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Table(RawUniform),
            Scalar(toml::Value),
        }
        let hint = "expected a duration (\"1s\") or a table { min = \"1s\", max = \"3s\" }";
        match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(hint))? {
            Raw::Table(u) => Ok(ThinkTime::Uniform {
                min: u.min,
                max: u.max,
            }),
            Raw::Scalar(v) => {
                // A bare number is seconds (with a warning), like every other duration.
                let parsed = match v {
                    toml::Value::String(s) => human_duration::parse(&s),
                    toml::Value::Integer(i) => human_duration::parse(&i.to_string()),
                    toml::Value::Float(f) => human_duration::parse(&f.to_string()),
                    _ => return Err(serde::de::Error::custom(hint)),
                };
                Ok(ThinkTime::Constant(
                    parsed.map_err(serde::de::Error::custom)?,
                ))
            }
        }
    }
}

/// `[[request]]`: one entry of the weighted request mix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Name in the results (Locust's `Name` column).
    pub name: String,
    /// Relative weight in the mix.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// HTTP method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Path (and query) appended to the target URL.
    pub path: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Inline JSON body (a TOML table / value).
    #[serde(default)]
    pub body: Option<toml::Value>,
    /// JSON body read from a file (relative to the scenario file).
    #[serde(default)]
    pub body_file: Option<String>,
    /// Read the response as an SSE stream and record streaming metrics.
    #[serde(default)]
    pub stream: bool,
    /// Statuses that count as success (default `[200]`).
    #[serde(default = "default_expect")]
    pub expect: Vec<u16>,
    /// A response header that must be present for success (e.g. `X-Key-Used`).
    #[serde(default)]
    pub expect_header: Option<String>,
    /// Request tags (`--tags` / `--exclude-tags` select by these).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Body variants: top-level body field → values; each request picks one value per field at random.
    #[serde(default)]
    pub choose: BTreeMap<String, Vec<toml::Value>>,
    /// Resolved JSON body variants (filled by validation).
    #[serde(skip)]
    pub body_variants: Vec<BodySpec>,
}

/// A ready-to-send request body.
#[derive(Debug, Clone)]
pub struct BodySpec {
    /// Serialized JSON.
    pub json: bytes::Bytes,
}

fn default_weight() -> u32 {
    1
}
fn default_method() -> String {
    "GET".into()
}
fn default_expect() -> Vec<u16> {
    vec![200]
}

/// `[proxy]`: how the harness starts (or attaches to) the proxy under test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Program and arguments (empty = the workspace's reference proxy); placeholders `{upstream_url}`, `{port}`, `{keys_file}`, `{admin_token}`.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment variables (placeholders allowed in values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative to the scenario file).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Readiness check path.
    #[serde(default = "default_ready_path")]
    pub ready_path: String,
    /// Status the readiness check waits for.
    #[serde(default = "default_ready_status")]
    pub ready_status: u16,
    /// How long to wait for readiness.
    #[serde(
        default = "default_ready_timeout",
        deserialize_with = "human_duration::serde::required::deserialize"
    )]
    pub ready_timeout: Duration,
    /// SIGTERM → SIGKILL grace period at shutdown.
    #[serde(
        default = "default_shutdown_timeout",
        deserialize_with = "human_duration::serde::required::deserialize"
    )]
    pub shutdown_timeout: Duration,
    /// HTTP calls made after readiness and before the load (e.g. registering keys).
    #[serde(default)]
    pub setup: Vec<SetupCall>,
}

impl Default for ProxySpec {
    fn default() -> Self {
        ProxySpec {
            command: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            ready_path: default_ready_path(),
            ready_status: default_ready_status(),
            ready_timeout: default_ready_timeout(),
            shutdown_timeout: default_shutdown_timeout(),
            setup: Vec::new(),
        }
    }
}

fn default_ready_path() -> String {
    "/health".into()
}
fn default_ready_status() -> u16 {
    200
}
fn default_ready_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One setup HTTP call against the proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupCall {
    /// HTTP method.
    #[serde(default = "default_setup_method")]
    pub method: String,
    /// Path on the proxy (placeholders allowed).
    pub path: String,
    /// Headers (placeholders allowed in values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body (string values may contain placeholders).
    #[serde(default)]
    pub body: Option<toml::Value>,
    /// Acceptable statuses.
    #[serde(default = "default_setup_expect")]
    pub expect: Vec<u16>,
}

fn default_setup_method() -> String {
    "POST".into()
}
fn default_setup_expect() -> Vec<u16> {
    vec![200, 201, 204]
}

/// `[monitor]`: how the proxy's resources are sampled and judged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// Sampling interval.
    #[serde(
        default = "default_interval",
        deserialize_with = "human_duration::serde::required::deserialize"
    )]
    pub interval: Duration,
    /// Warm-up excluded from trend analysis (default: a quarter of the run time, at most 5 min).
    #[serde(
        default,
        deserialize_with = "human_duration::serde::optional::deserialize"
    )]
    pub warmup: Option<Duration>,
    /// Drain phase after the load stops, before the proxy is stopped (fds/sockets/threads must come back).
    #[serde(
        default,
        deserialize_with = "human_duration::serde::required::deserialize"
    )]
    pub drain: Duration,
    /// Whether leak/growth verdicts decide the exit code (otherwise they are reported only).
    #[serde(default)]
    pub judge_leaks: bool,
    /// `[monitor.leak]`: leak-verdict settings (`sut_monitor::leak::LeakConfig`), defaults when absent.
    #[serde(default)]
    pub leak: sut_monitor::leak::LeakConfig,
    /// Where the samples come from: the proxy's process (default), its replicas' `/metrics`, or Prometheus.
    #[serde(default)]
    pub source: MonitorSourceKind,
    /// `source = "metrics"`: one `/metrics` URL per replica.
    #[serde(default)]
    pub metrics_urls: Vec<String>,
    /// `[monitor.metric_names]`: the process metrics' names, for proxies that export others (both remote
    /// sources; the defaults are the standard `process_*` names).
    #[serde(default)]
    pub metric_names: sut_monitor::source::MetricNames,
    /// `[monitor.prometheus]`: `source = "prometheus"`'s server, replica label, selector and queries.
    #[serde(default)]
    pub prometheus: Option<sut_monitor::source::PrometheusSpec>,
}

/// `[monitor] source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorSourceKind {
    /// The proxy's process tree, by PID (sysinfo + procfs).
    #[default]
    Process,
    /// Each replica's `/metrics`, scraped every interval.
    Metrics,
    /// Instant queries against a Prometheus server every interval.
    Prometheus,
}

/// `[monitor]` in a proxy profile: the source fields it sets replace the scenario's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSourceOverride {
    /// Replaces `[monitor] source`.
    #[serde(default)]
    pub source: Option<MonitorSourceKind>,
    /// Replaces `metrics_urls`.
    #[serde(default)]
    pub metrics_urls: Option<Vec<String>>,
    /// Replaces `[monitor.metric_names]`.
    #[serde(default)]
    pub metric_names: Option<sut_monitor::source::MetricNames>,
    /// Replaces `[monitor.prometheus]`.
    #[serde(default)]
    pub prometheus: Option<sut_monitor::source::PrometheusSpec>,
}

impl MonitorSpec {
    /// Applies a profile's `[monitor]` table: each field it sets replaces the scenario's.
    pub fn apply_override(&mut self, over: &MonitorSourceOverride) {
        if let Some(source) = over.source {
            self.source = source;
        }
        if let Some(urls) = &over.metrics_urls {
            self.metrics_urls = urls.clone();
        }
        if let Some(names) = &over.metric_names {
            self.metric_names = names.clone();
        }
        if let Some(prometheus) = &over.prometheus {
            self.prometheus = Some(prometheus.clone());
        }
    }

    /// Checks that the source has what it needs; the error is `(field under monitor, message)`.
    pub fn validate_source(&self) -> Result<(), (String, String)> {
        let err = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        match self.source {
            MonitorSourceKind::Metrics if self.metrics_urls.is_empty() => {
                return err("metrics_urls", "source = \"metrics\" needs metrics_urls = [\"http://replica:port/metrics\", ...], one per replica")
            }
            MonitorSourceKind::Prometheus if self.prometheus.is_none() => {
                return err("prometheus", "source = \"prometheus\" needs [monitor.prometheus] with url = \"http://prometheus:9090\"")
            }
            MonitorSourceKind::Process | MonitorSourceKind::Prometheus if !self.metrics_urls.is_empty() => {
                return err("metrics_urls", "only used with source = \"metrics\"")
            }
            MonitorSourceKind::Process | MonitorSourceKind::Metrics if self.prometheus.is_some() => {
                return err("prometheus", "only used with source = \"prometheus\"")
            }
            _ => {}
        }
        for (i, url) in self.metrics_urls.iter().enumerate() {
            check_monitor_url(url).or_else(|m| err(&format!("metrics_urls[{i}]"), &m))?;
        }
        if let Some(prometheus) = &self.prometheus {
            check_monitor_url(&prometheus.url).or_else(|m| err("prometheus.url", &m))?;
            if prometheus.replica_label.trim().is_empty() {
                return err(
                    "prometheus.replica_label",
                    "must name a label (e.g. \"pod\" or \"instance\")",
                );
            }
        }
        Ok(())
    }

    /// The remote source to sample, or `None` for the process source (which needs the proxy's PID).
    pub fn remote_source(&self) -> Option<sut_monitor::source::MonitorSource> {
        use sut_monitor::source::MonitorSource;
        match self.source {
            MonitorSourceKind::Process => None,
            MonitorSourceKind::Metrics => Some(MonitorSource::Metrics {
                urls: self.metrics_urls.clone(),
                names: self.metric_names.clone(),
            }),
            MonitorSourceKind::Prometheus => self.prometheus.clone().map(|mut spec| {
                spec.metric_names = self.metric_names.clone();
                MonitorSource::Prometheus(spec)
            }),
        }
    }
}

/// An `http(s)://host[:port]/...` URL the monitor can reach.
fn check_monitor_url(url: &str) -> Result<(), String> {
    match url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(())
        }
        _ => Err(format!("{url:?} is not an http(s)://host[:port]/path URL")),
    }
}

impl Default for MonitorSpec {
    fn default() -> Self {
        MonitorSpec {
            interval: default_interval(),
            warmup: None,
            drain: Duration::ZERO,
            judge_leaks: false,
            leak: Default::default(),
            source: MonitorSourceKind::Process,
            metrics_urls: Vec::new(),
            metric_names: Default::default(),
            prometheus: None,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}

/// One `[[timeline]]` entry: a mock fault rule active from `at` for `for` (absent = until the end of the load).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEvent {
    /// Offset from the start of the load.
    #[serde(with = "human_duration::serde::required")]
    pub at: Duration,
    /// How long the fault lasts; `None` = until the load ends.
    #[serde(
        rename = "for",
        default,
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// Shown in `timeline.csv` and reports (default: derived from the rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The mock fault rule (same shape as the mock's `[[rules]]` and admin API).
    pub fault: mock_upstream::FaultRule,
}

#[cfg(test)]
mod monitor_source_tests {
    use super::*;

    const HEAD: &str = "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 1\nrun_time = \"1s\"\n\
                        [[request]]\nname = \"a\"\npath = \"/\"\n";

    fn parse(monitor: &str) -> Result<Scenario, String> {
        let text = format!("{HEAD}{monitor}");
        Scenario::from_str_at(&text, "t.toml", std::path::Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn sources_parse_into_what_the_monitor_samples() {
        use sut_monitor::source::MonitorSource;
        let process = parse("").expect("no [monitor]");
        assert_eq!(process.monitor.remote_source(), None);
        let metrics = parse(
            "[monitor]\nsource = \"metrics\"\nmetrics_urls = [\"http://127.0.0.1:9101/metrics\"]\n\
             [monitor.metric_names]\nrss = \"proxy_rss_bytes\"\n",
        )
        .expect("metrics");
        let Some(MonitorSource::Metrics { urls, names }) = metrics.monitor.remote_source() else {
            panic!("metrics source expected")
        };
        assert_eq!(urls, ["http://127.0.0.1:9101/metrics"]);
        assert_eq!(
            (names.rss.as_str(), names.open_fds.as_str()),
            ("proxy_rss_bytes", "process_open_fds")
        );
        let prometheus = parse(
            "[monitor]\nsource = \"prometheus\"\n[monitor.metric_names]\nopen_fds = \"fds\"\n\
             [monitor.prometheus]\nurl = \"http://127.0.0.1:9090\"\nselector = '{job=\"proxy\"}'\n\
             [monitor.prometheus.queries]\nthreads = \"count by (pod) (x)\"\n",
        )
        .expect("prometheus");
        let Some(MonitorSource::Prometheus(spec)) = prometheus.monitor.remote_source() else {
            panic!("prometheus source expected")
        };
        assert_eq!(spec.replica_label, "pod");
        assert_eq!(
            spec.query(sut_monitor::source::Gauge::OpenFds),
            "fds{job=\"proxy\"}"
        );
        assert_eq!(
            spec.query(sut_monitor::source::Gauge::Threads),
            "count by (pod) (x)"
        );
    }

    #[test]
    fn incomplete_sources_name_the_field_and_line() {
        let cases = [
            ("[monitor]\nsource = \"metrics\"\n", "t.toml:9: monitor.metrics_urls: source = \"metrics\" needs"),
            ("[monitor]\nsource = \"prometheus\"\n", "monitor.prometheus: source = \"prometheus\" needs"),
            (
                "[monitor]\nmetrics_urls = [\"http://a:1/metrics\"]\n",
                "monitor.metrics_urls: only used with source = \"metrics\"",
            ),
            (
                "[monitor]\nsource = \"metrics\"\nmetrics_urls = [\"a:1/metrics\"]\n",
                "monitor.metrics_urls[0]: \"a:1/metrics\" is not an http(s)://",
            ),
            (
                "[monitor]\nsource = \"prometheus\"\n[monitor.prometheus]\nurl = \"http://p:9090\"\nreplica_label = \"\"\n",
                "monitor.prometheus.replica_label: must name a label",
            ),
            ("[monitor]\nsource = \"snmp\"\n", "unknown variant `snmp`"),
            (
                "[monitor]\nsource = \"prometheus\"\n[monitor.prometheus]\nurl = \"http://p:9090\"\nlabel = \"pod\"\n",
                "unknown field `label`",
            ),
        ];
        for (monitor, want) in cases {
            let err = parse(monitor).expect_err(monitor);
            assert!(err.contains(want), "{monitor:?}: got {err}, want {want}");
        }
    }
}
