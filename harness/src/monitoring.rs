//! Wiring the resource monitor (crate `sut-monitor`) into a run: start on the proxy's PID (or, with
//! `[monitor] source = "metrics" | "prometheus"`, on its replicas' metrics), label the phases (warm-up → steady
//! → drain), and turn the leak analysis — per replica and in total — into a [`ResourceVerdict`] for the exit
//! code.

use crate::run::{Outputs, Plan, ResourceVerdict};
use crate::scenario::{MonitorSpec, Scenario};
use crate::sut::Sut;
use std::time::Duration;
use sut_monitor::leak;
use sut_monitor::monitor::{Monitor, MonitorConfig, MonitorHandle, Phase, ResourceSeries};
use sut_monitor::source::MonitorSource;

/// The monitor of one run (inactive when no PID is known or it could not start).
pub struct Monitoring {
    handle: Option<MonitorHandle>,
    spec: MonitorSpec,
    drain: Duration,
    problem: Option<String>,
}

/// What the run reports about resources.
#[derive(Debug)]
pub struct ResourcesOutcome {
    /// The verdict as far as the exit code is concerned.
    pub verdict: ResourceVerdict,
    /// The leak report for `summary.json` (null when not analysed).
    pub report: serde_json::Value,
    /// The harness's own RSS/CPU over the run (null without samples).
    pub harness: serde_json::Value,
}

/// Starts monitoring the system under test — its replicas' metrics when the scenario names a remote source,
/// else its process if the PID is known — with the plan's warm-up (saying so on stderr when it was clipped to
/// fit the run). A failure to start is reported, not fatal.
pub fn start(sut: &Sut, scenario: &Scenario, outputs: &Outputs, plan: &Plan) -> Monitoring {
    let spec = scenario.monitor.clone();
    let drain = plan.monitor.drain;
    let source = match (spec.remote_source(), sut.pid) {
        (Some(remote), _) => remote,
        (None, Some(pid)) => MonitorSource::Process { pid },
        (None, None) => {
            return Monitoring {
                handle: None,
                spec,
                drain,
                problem: None,
            }
        }
    };
    if let Some(notice) = plan.monitor.clip_notice() {
        eprintln!("{notice}");
    }
    let warmup = plan.monitor.warmup;
    // `..default()` keeps this compiling when sut-monitor adds settings.
    #[allow(clippy::needless_update)]
    let config = MonitorConfig {
        interval: spec.interval,
        initial_phase: Phase::WarmUp,
        steady_after: Some(warmup),
        ..MonitorConfig::default()
    };
    match Monitor::start_source(&source, config, &outputs.resources_csv()) {
        Ok(handle) => Monitoring {
            handle: Some(handle),
            spec,
            drain,
            problem: None,
        },
        Err(e) => {
            tracing::warn!("resource monitor not started: {e}");
            Monitoring {
                handle: None,
                spec,
                drain,
                problem: Some(format!("monitor not started: {e}")),
            }
        }
    }
}

impl Monitoring {
    /// After the load: the drain phase (if configured and the proxy is still up).
    pub async fn drain(&self) {
        if let Some(h) = self.handle.as_ref().filter(|_| !self.drain.is_zero()) {
            h.set_phase(Phase::Drain);
            tokio::time::sleep(self.drain).await;
        }
    }

    /// The proxy's latest resource sample (`None` before the first, or without a monitor); with several
    /// replicas, their sum at the latest tick (replica `"total"`, CPU summed over the replicas' cores).
    pub fn latest_sample(&self) -> Option<sut_monitor::monitor::Sample> {
        self.latest_tick().map(|(_, total)| total)
    }

    /// The proxy's latest sample for the progress line (`proxy 34.1 MiB, 21 fds, 12 % cpu`); with several
    /// replicas, their sum at the latest tick (`3 replicas 102.4 MiB, ...`).
    pub fn live_line(&self) -> Option<String> {
        let (replicas, s) = self.latest_tick()?;
        let mib = s.rss_bytes as f64 / (1024.0 * 1024.0);
        let who = if replicas > 1 {
            format!("{replicas} replicas")
        } else {
            "proxy".to_string()
        };
        Some(format!(
            "{who} {mib:.1} MiB, {} fds, {:.0} % cpu",
            s.fds, s.cpu_percent
        ))
    }

    /// The samples of the latest tick (one per replica) and their sum.
    fn latest_tick(&self) -> Option<(usize, sut_monitor::monitor::Sample)> {
        self.handle.as_ref()?.inspect(|series| {
            let last = series.samples.last()?;
            let mut tick: Vec<_> = series
                .samples
                .iter()
                .rev()
                .take_while(|s| s.t_secs == last.t_secs)
                .cloned()
                .collect();
            tick.reverse();
            let total = match tick.len() {
                1 => last.clone(),
                _ => sut_monitor::leak::replicas::sum_of_tick(&tick),
            };
            Some((tick.len(), total))
        })
    }

    /// Stops sampling and judges the series.
    pub fn finish(self) -> ResourcesOutcome {
        let Some(handle) = self.handle else {
            let verdict = match (&self.problem, self.spec.judge_leaks) {
                (Some(p), true) => ResourceVerdict::Invalid(p.clone()),
                _ => ResourceVerdict::NotJudged,
            };
            return ResourcesOutcome {
                verdict,
                report: serde_json::Value::Null,
                harness: serde_json::Value::Null,
            };
        };
        let series = handle.stop();
        let harness = harness_usage(&series);
        let report = leak::analyze_replicas(&series, &self.spec.leak);
        let remote = self.spec.remote_source().is_some();
        let verdict = match (report.verdict, self.spec.judge_leaks) {
            // The run sees a local proxy exit itself; a replica's restart only the monitor sees.
            (leak::Verdict::Crashed, _) if remote => ResourceVerdict::Failed(crash_reason(&report)),
            (_, true) => resource_verdict(&report),
            (_, false) => ResourceVerdict::NotJudged,
        };
        let report = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        ResourcesOutcome {
            verdict,
            report,
            harness,
        }
    }
}

/// The leak report's overall verdict as far as the run's exit code goes (a crash is judged by the run itself).
fn resource_verdict(report: &leak::LeakReport) -> ResourceVerdict {
    let why = || format!("{}: {}", report.verdict, report.reasons.join("; "));
    match report.verdict {
        leak::Verdict::Pass | leak::Verdict::Crashed => ResourceVerdict::Pass,
        leak::Verdict::Leak | leak::Verdict::Growth => ResourceVerdict::Failed(why()),
        leak::Verdict::Inconclusive | leak::Verdict::Invalid => ResourceVerdict::Invalid(why()),
    }
}

/// `CRASHED: replica X restarted ...`: the reasons that name a restart or a disappearance.
fn crash_reason(report: &leak::LeakReport) -> String {
    let crashes: Vec<&str> = report
        .replicas
        .iter()
        .filter_map(|r| r.report.sampling.exit_reason.as_deref())
        .chain(report.sampling.exit_reason.as_deref())
        .collect();
    format!("{}: {}", report.verdict, crashes.join("; "))
}

/// Peak and mean of the harness's own RSS and CPU (a generator that drifts falsifies a soak).
fn harness_usage(series: &ResourceSeries) -> serde_json::Value {
    let n = series.samples.len();
    if n == 0 {
        return serde_json::Value::Null;
    }
    let peak_rss = series
        .samples
        .iter()
        .map(|s| s.harness_rss_bytes)
        .max()
        .unwrap_or(0);
    let first_rss = series.samples.first().map_or(0, |s| s.harness_rss_bytes);
    let last_rss = series.samples.last().map_or(0, |s| s.harness_rss_bytes);
    let mean_cpu = series
        .samples
        .iter()
        .map(|s| s.harness_cpu_percent)
        .sum::<f64>()
        / n as f64;
    let mean_monitor_cpu = series
        .samples
        .iter()
        .map(|s| s.monitor_cpu_percent)
        .sum::<f64>()
        / n as f64;
    serde_json::json!({
        "samples": n,
        "rss_first_bytes": first_rss,
        "rss_last_bytes": last_rss,
        "rss_peak_bytes": peak_rss,
        "cpu_mean_percent": mean_cpu,
        "monitor_cpu_mean_percent": mean_monitor_cpu,
    })
}
