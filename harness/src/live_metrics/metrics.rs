//! The metric families of the live endpoint and how the run feeds them.
//!
//! Everything is fed from the run loop's once-per-second take of the engine's shards (the same merged delta
//! that becomes the history row), never from the request path: the load threads do not know the endpoint
//! exists. Counts on the endpoint therefore lag the requests by at most one interval, and after the load's
//! final take they equal `summary.json`'s exactly.

use super::buckets::{
    bucket_bounds_us, class_label, FaultWindow, RunPhase, LATENCY_BUCKETS_SECONDS,
};
use crate::engine::Counters;
use load_stats::thresholds::{evaluate_run, ThresholdResult, Thresholds};
use load_stats::{LatencyHistogram, RunStats, StatsDelta};
use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Labels of the per-request series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The scenario's request name.
    name: String,
    /// [`class_label`] of the status class.
    class: &'static str,
}

/// Labels of the per-request-name series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

/// Labels of the fault-window gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    window: String,
}

/// Labels of the phase gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// Labels of the TCP sockets gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TcpLabels {
    state: &'static str,
}

/// Labels of a verdict.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    check: String,
    state: String,
}

/// A histogram fed with whole latency histograms (the run's per-second deltas) rather than one value at a
/// time: the client crate's own histogram only observes single values. Encoded by the crate's encoder.
#[derive(Debug, Default)]
struct DeltaHistogram {
    inner: Mutex<BucketCounts>,
}

/// Per-bucket counts over [`LATENCY_BUCKETS_SECONDS`] plus the overflow, with sum and count.
#[derive(Debug, Default)]
struct BucketCounts {
    per_bucket: Vec<u64>,
    count: u64,
    sum_seconds: f64,
}

impl DeltaHistogram {
    fn add(&self, latency: &LatencyHistogram, bounds_us: &[u64]) {
        if latency.is_empty() {
            return;
        }
        let counts = latency.counts_up_to(bounds_us);
        let mut inner = self.inner.lock();
        inner.per_bucket.resize(counts.len(), 0);
        for (total, n) in inner.per_bucket.iter_mut().zip(counts) {
            *total += n;
        }
        inner.count += latency.count();
        inner.sum_seconds += latency.sum_us() as f64 / 1e6;
    }
}

impl TypedMetric for DeltaHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DeltaHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = self.inner.lock();
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(inner.per_bucket.iter().copied().chain(std::iter::repeat(0)))
            .collect();
        encoder.encode_histogram::<NoLabelSet>(inner.sum_seconds, inner.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A gauge of a float (CPU percent).
type FloatGauge = Gauge<f64, AtomicU64>;

/// The proxy's sampled resources.
#[derive(Default)]
struct ProxyGauges {
    rss: Gauge,
    rss_anon: Gauge,
    cpu: FloatGauge,
    threads: Gauge,
    fds: Gauge,
    socket_fds: Gauge,
    processes: Gauge,
    tcp: Family<TcpLabels, Gauge>,
}

/// The engine's live counters, mirrored.
#[derive(Default)]
struct EngineGauges {
    in_flight: Gauge,
    users: Gauge,
    late: Counter,
    dropped: Counter,
    slot_late: Counter,
    slot_dropped: Counter,
}

/// Every series the endpoint serves, and the run's plan the clock-driven ones are derived from.
pub struct LiveMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    failures: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, DeltaHistogram>,
    ttft: Family<NameLabels, DeltaHistogram>,
    engine: EngineGauges,
    proxy: ProxyGauges,
    windows: Family<WindowLabels, Gauge>,
    phase: Family<PhaseLabels, Gauge>,
    verdicts: Family<VerdictLabels, Gauge>,
    /// The state each check's series carries now (a check changing state drops its old series).
    verdict_states: Mutex<std::collections::HashMap<String, String>>,
    bounds_us: Vec<u64>,
    plan: Mutex<LoadPlan>,
}

/// What the clock-driven series and the verdicts so far need to know about the run.
#[derive(Debug, Default)]
pub struct LoadPlan {
    /// The timeline's fault windows the harness switches.
    pub windows: Vec<FaultWindow>,
    /// The leak verdicts' warm-up from the start of the load.
    pub warmup: Duration,
    /// The run's limits, judged on the statistics so far at every interval.
    pub thresholds: Thresholds,
}

/// The `check` label of a threshold: its scope and metric (`Aggregated p95`, `chat req/s`).
pub fn threshold_check(result: &ThresholdResult) -> String {
    format!("{} {}", result.scope, result.metric)
}

impl LiveMetrics {
    /// Every family registered under the `harness_` prefix, with `scenario` in `harness_run_info`.
    pub fn new(scenario: &str) -> Arc<LiveMetrics> {
        let mut root = Registry::with_prefix("harness");
        let m = LiveMetrics {
            registry: Registry::default(),
            requests: Family::default(),
            failures: Family::default(),
            latency: Family::default(),
            ttft: Family::default(),
            engine: EngineGauges::default(),
            proxy: ProxyGauges::default(),
            windows: Family::default(),
            phase: Family::default(),
            verdicts: Family::default(),
            verdict_states: Mutex::default(),
            bounds_us: bucket_bounds_us(),
            plan: Mutex::new(LoadPlan::default()),
        };
        m.register(&mut root, scenario);
        let m = LiveMetrics {
            registry: root,
            ..m
        };
        m.set_phase(RunPhase::Starting);
        Arc::new(m)
    }

    fn register(&self, r: &mut Registry, scenario: &str) {
        r.register(
            "run",
            "The scenario being run",
            Info::new(vec![("scenario".to_string(), scenario.to_string())]),
        );
        r.register(
            "requests",
            "Completed requests by request name and status class",
            self.requests.clone(),
        );
        r.register(
            "failures",
            "Completed requests the scenario counts as failures, by request name and status class",
            self.failures.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Request latency from the intended send time, by request name and status class",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register_with_unit(
            "time_to_first_token",
            "Time to the first token of streamed responses, by request name",
            Unit::Seconds,
            self.ttft.clone(),
        );
        let e = &self.engine;
        r.register(
            "in_flight_requests",
            "Requests in flight",
            e.in_flight.clone(),
        );
        r.register("users", "Active users (closed model)", e.users.clone());
        r.register(
            "late_sends",
            "Open model: sends late for the generator's own reasons",
            e.late.clone(),
        );
        r.register(
            "dropped_sends",
            "Open model: due arrivals never sent (generator behind)",
            e.dropped.clone(),
        );
        r.register(
            "slot_late_sends",
            "Open model: sends late waiting for a free in-flight slot",
            e.slot_late.clone(),
        );
        r.register(
            "slot_dropped_sends",
            "Open model: arrivals never sent because every in-flight slot stayed busy",
            e.slot_dropped.clone(),
        );
        let p = &self.proxy;
        r.register_with_unit(
            "proxy_rss",
            "Proxy resident memory (latest sample)",
            Unit::Bytes,
            p.rss.clone(),
        );
        r.register_with_unit(
            "proxy_rss_anon",
            "Proxy anonymous resident memory",
            Unit::Bytes,
            p.rss_anon.clone(),
        );
        r.register(
            "proxy_cpu_percent",
            "Proxy CPU, percent of one core",
            p.cpu.clone(),
        );
        r.register("proxy_threads", "Proxy threads", p.threads.clone());
        r.register(
            "proxy_open_fds",
            "Proxy open file descriptors",
            p.fds.clone(),
        );
        r.register(
            "proxy_socket_fds",
            "Proxy file descriptors that are sockets",
            p.socket_fds.clone(),
        );
        r.register(
            "proxy_processes",
            "Processes in the proxy's tree",
            p.processes.clone(),
        );
        r.register(
            "proxy_tcp_sockets",
            "Proxy TCP sockets by state",
            p.tcp.clone(),
        );
        r.register(
            "fault_window_active",
            "1 while the scenario's timeline fault window is open, by window label",
            self.windows.clone(),
        );
        r.register(
            "run_phase",
            "1 for the run's current phase",
            self.phase.clone(),
        );
        r.register(
            "verdict",
            "Judged checks: 1 PASS, 0 otherwise (state says which), by check",
            self.verdicts.clone(),
        );
    }

    /// Adds one merged delta of the engine's shards: counts and latency by request and class, and TTFT.
    pub fn add_delta(&self, delta: &StatsDelta) {
        for request in &delta.requests {
            for (class, stats) in &request.classes {
                let labels = RequestLabels {
                    name: request.name.clone(),
                    class: class_label(*class),
                };
                self.requests.get_or_create(&labels).inc_by(stats.requests);
                self.failures.get_or_create(&labels).inc_by(stats.failures);
                self.latency
                    .get_or_create(&labels)
                    .add(&stats.latency, &self.bounds_us);
            }
        }
        for stream in &delta.streams {
            let labels = NameLabels {
                name: stream.name.clone(),
            };
            self.ttft
                .get_or_create(&labels)
                .add(&stream.ttft, &self.bounds_us);
        }
    }

    /// The fault windows of the timeline (those the harness switches), the leak warm-up and the limits, for
    /// the clock-driven series and the verdicts so far; every window starts inactive.
    pub fn plan_load(&self, plan: LoadPlan) {
        for w in &plan.windows {
            self.windows
                .get_or_create(&WindowLabels {
                    window: w.label.clone(),
                })
                .set(0);
        }
        *self.plan.lock() = plan;
    }

    /// Once per interval during the load: the engine's counters, the phase and the open fault windows at
    /// `elapsed` on the load clock, and the thresholds judged on the statistics so far.
    pub fn tick(&self, elapsed: Duration, counters: &Counters, stats: &RunStats) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let e = &self.engine;
        e.in_flight
            .set(counters.in_flight.load(Ordering::Relaxed).into());
        e.users.set(counters.users.load(Ordering::Relaxed).into());
        for (counter, now) in [
            (&e.late, load(&counters.late)),
            (&e.dropped, load(&counters.dropped)),
            (&e.slot_late, load(&counters.slot_late)),
            (&e.slot_dropped, load(&counters.slot_dropped)),
        ] {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
        let plan = self.plan.lock();
        for w in &plan.windows {
            let labels = WindowLabels {
                window: w.label.clone(),
            };
            self.windows
                .get_or_create(&labels)
                .set(w.active_at(elapsed).into());
        }
        self.set_phase(RunPhase::during_load(elapsed, plan.warmup));
        for result in evaluate_run(&plan.thresholds, stats) {
            let state = if result.passed { "PASS" } else { "FAIL" };
            self.set_verdict(&threshold_check(&result), state);
        }
    }

    /// The load is over: no window is open any more, no request in flight.
    pub fn load_ended(&self, counters: &Counters, stats: &RunStats) {
        self.tick(Duration::MAX, counters, stats);
        self.engine.in_flight.set(0);
        self.set_phase(RunPhase::Drain);
    }

    /// The proxy's latest resource sample.
    pub fn set_proxy_sample(&self, s: &sut_monitor::monitor::Sample) {
        let p = &self.proxy;
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        p.rss.set(int(s.rss_bytes));
        p.rss_anon.set(int(s.rss_anon_bytes));
        p.cpu.set(s.cpu_percent);
        p.threads.set(int(s.threads));
        p.fds.set(int(s.fds));
        p.socket_fds.set(int(s.socket_fds));
        p.processes.set(s.processes.into());
        for (state, n) in [
            ("established", s.tcp_established),
            ("close_wait", s.tcp_close_wait),
            ("listen", s.tcp_listen),
            ("other", s.tcp_other),
        ] {
            p.tcp.get_or_create(&TcpLabels { state }).set(int(n));
        }
    }

    /// The run's phase (1 for `phase`, 0 for the others).
    pub fn set_phase(&self, phase: RunPhase) {
        for p in RunPhase::ALL {
            self.phase
                .get_or_create(&PhaseLabels { phase: p.as_str() })
                .set((p == phase).into());
        }
    }

    /// One judged check: `state` is `PASS`, `FAIL`, `SKIPPED`, `INCONCLUSIVE`, ...; the value is 1 for PASS.
    pub fn set_verdict(&self, check: &str, state: &str) {
        let labels = VerdictLabels {
            check: check.to_string(),
            state: state.to_string(),
        };
        let mut states = self.verdict_states.lock();
        if let Some(old) = states.insert(check.to_string(), state.to_string()) {
            if old != state {
                self.verdicts.remove(&VerdictLabels {
                    check: check.to_string(),
                    state: old,
                });
            }
        }
        self.verdicts
            .get_or_create(&labels)
            .set((state == "PASS").into());
    }

    /// The OpenMetrics text of every series (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn deltas_add_up_into_cumulative_buckets() {
        let metrics = LiveMetrics::new("unit");
        let mut latency = LatencyHistogram::new();
        for ms in [3, 38, 38, 900] {
            latency.record(Duration::from_millis(ms));
        }
        let mut delta = StatsDelta::new();
        let mut request = load_stats::RequestStats::new("POST", "chat");
        let class = request.class_mut(load_stats::StatusClass::Success);
        class.requests = 4;
        class.latency = latency;
        delta.requests.push(request);
        metrics.add_delta(&delta);
        metrics.add_delta(&delta);
        let text = metrics.encode().unwrap();
        let bucket = |le: &str| {
            format!("harness_request_duration_seconds_bucket{{le=\"{le}\",name=\"chat\",class=\"2xx\"}}")
        };
        // (le, cumulative count over both deltas)
        for (le, count) in [
            ("0.001", 0),
            ("0.005", 2),
            ("0.04", 6),
            ("0.5", 6),
            ("1.0", 8),
            ("+Inf", 8),
        ] {
            let line = format!("{} {count}", bucket(le));
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(text.contains("harness_requests_total{name=\"chat\",class=\"2xx\"} 8"));
        assert!(
            text.contains("harness_request_duration_seconds_count{name=\"chat\",class=\"2xx\"} 8")
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn a_check_changing_state_keeps_one_series() {
        let metrics = LiveMetrics::new("unit");
        metrics.set_verdict("Aggregated p95", "FAIL");
        metrics.set_verdict("Aggregated p95", "PASS");
        metrics.set_verdict("run", "INCONCLUSIVE");
        let text = metrics.encode().unwrap();
        let mut series = lines_with(&text, "harness_verdict{");
        series.sort();
        assert_eq!(
            series,
            [
                "harness_verdict{check=\"Aggregated p95\",state=\"PASS\"} 1",
                "harness_verdict{check=\"run\",state=\"INCONCLUSIVE\"} 0",
            ]
        );
    }

    #[test]
    fn one_phase_is_current_and_windows_follow_the_clock() {
        let metrics = LiveMetrics::new("unit");
        metrics.plan_load(LoadPlan {
            windows: vec![FaultWindow {
                label: "k1 down".into(),
                start: Duration::from_secs(1),
                end: Duration::from_secs(2),
            }],
            warmup: Duration::from_secs(1),
            thresholds: Thresholds::default(),
        });
        let counters = Counters::default();
        let stats = RunStats::new(std::time::SystemTime::now());
        // (elapsed, window value, current phase)
        for (elapsed_ms, active, phase) in
            [(500, 0, "warmup"), (1500, 1, "load"), (2500, 0, "load")]
        {
            metrics.tick(Duration::from_millis(elapsed_ms), &counters, &stats);
            let text = metrics.encode().unwrap();
            let window = format!("harness_fault_window_active{{window=\"k1 down\"}} {active}");
            assert!(text.contains(&window), "{elapsed_ms}: {text}");
            let current = lines_with(&text, "harness_run_phase{");
            assert_eq!(
                current
                    .iter()
                    .filter(|l| l.ends_with(" 1"))
                    .collect::<Vec<_>>(),
                [&format!("harness_run_phase{{phase=\"{phase}\"}} 1")],
                "{elapsed_ms}"
            );
        }
        metrics.load_ended(&counters, &stats);
        assert!(metrics
            .encode()
            .unwrap()
            .contains("harness_run_phase{phase=\"drain\"} 1"));
    }
}
