//! Leak and growth verdicts: pure functions from a [`ResourceSeries`] to a [`LeakReport`].
//!
//! Why not "RSS grew less than 10 %": endpoint comparisons miss slow leaks and fail healthy runs whose warm-up
//! spilled into the window. Instead, per metric ([`Metric`]): cut the warm-up (phase labels), judge the steady
//! window with robust trend statistics (`stats`: Theil–Sen, Mann–Kendall + Hamed–Rao), on cycle floors for
//! sawtooth memory ([`series`]), and require significance AND a calibrated magnitude AND growth still present at
//! the end ([`trend`]). A memory LEAK also needs a steady load: when the open connections rose materially in the
//! final quarter, memory that follows them is INCONCLUSIVE, not LEAK ([`load`]). Counts are additionally checked
//! after a drain and against hard peak ceilings ([`drain`]); memory that multiplied over the whole run and kept
//! rising is GROWTH even without a steady window ([`gross`]). Thresholds and their calibration: [`config`].
//!
//! Overall verdict, first match wins: CRASHED (process gone before the end) → INVALID (a sampling gap over
//! `max_gap_intervals`: the data cannot back a PASS) → LEAK → GROWTH → INCONCLUSIVE → PASS.

pub mod config;
mod cycles;
pub mod drain;
pub mod gross;
pub mod load;
pub mod replicas;
mod report;
pub mod series;
pub(crate) mod stats;
pub mod trend;

#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use config::{
    DrainTolerance, GrossGrowthLimit, InvalidLeakConfig, LeakConfig, PeakLimits, SlopeLimit,
};
pub use drain::{DrainCheck, PeakCheck};
pub use gross::GrossGrowthCheck;
pub use load::{LoadShift, LoadSteadiness};
pub use replicas::analyze_replicas;
pub use series::Metric;
pub use trend::{Basis, TrendJudgement, TrendNumbers};

use crate::monitor::{Phase, ResourceSeries, SamplingGap};

/// A verdict, per metric or overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// No leak or growth, with evidence.
    Pass,
    /// Memory keeps rising (significant, above the limit, still rising at the end), or a hard limit was exceeded.
    Leak,
    /// A count (fds, sockets, threads) keeps rising, did not drain, or exceeded its ceiling.
    Growth,
    /// Too short or too noisy to decide; the report says what duration would do.
    Inconclusive,
    /// The process exited during the run.
    Crashed,
    /// The sampling had gaps; never a PASS.
    Invalid,
}

impl Verdict {
    /// The `harness` exit code for this verdict: 0 pass, 1 leak/growth, 4 crashed, 5 invalid/inconclusive.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Leak | Verdict::Growth => 1,
            Verdict::Crashed => 4,
            Verdict::Inconclusive | Verdict::Invalid => 5,
        }
    }

    /// Higher is worse; used to combine checks of one metric.
    pub(crate) fn severity(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Inconclusive => 1,
            Verdict::Growth => 2,
            Verdict::Leak => 3,
            Verdict::Invalid => 4,
            Verdict::Crashed => 5,
        }
    }

    /// Upper-case name as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Leak => "LEAK",
            Verdict::Growth => "GROWTH",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Crashed => "CRASHED",
            Verdict::Invalid => "INVALID",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric's verdict: the worst of its trend, drain, gross-growth and peak checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// Which metric.
    pub metric: Metric,
    /// Combined verdict.
    pub verdict: Verdict,
    /// Steady-window trend verdict and numbers.
    pub trend: TrendJudgement,
    /// Drain check (counts only, when a drain phase and a pre-load sample exist).
    pub drain: Option<DrainCheck>,
    /// Peak over the whole run and its ceiling.
    pub peak: PeakCheck,
    /// Memory growth over the whole run, warm-up included (memory metrics of runs long enough to have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_growth: Option<GrossGrowthCheck>,
}

/// How the series was sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSummary {
    /// Number of samples.
    pub samples: usize,
    /// Configured interval, seconds.
    pub interval_secs: f64,
    /// Largest time between consecutive samples, seconds.
    pub max_gap_secs: f64,
    /// Gaps longer than the configured maximum.
    pub gaps: Vec<SamplingGap>,
    /// Time span of the warm-up samples, seconds.
    pub warmup_secs: f64,
    /// Time span of the steady samples, seconds.
    pub steady_secs: f64,
    /// Time span of the drain samples, seconds.
    pub drain_secs: f64,
    /// When the process was found gone, seconds since start.
    pub exited_at_secs: Option<f64>,
    /// Mean CPU of the sampling thread itself, percent of one core.
    pub monitor_cpu_percent: f64,
    /// Metrics the sampling platform cannot read (e.g. `fds` off Linux, `sockets` from process metrics): not
    /// judged, absent from `metrics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_available_on_platform: Vec<Metric>,
    /// Why the process counts as gone, when it is more than the root exiting (a replica restarted or
    /// disappeared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
}

/// One replica's own report (remote sources with several replicas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaReport {
    /// The replica's name (`resources.csv`'s `replica` column).
    pub replica: String,
    /// Its verdicts, judged on its series alone.
    pub report: LeakReport,
}

/// The verdicts of a run with all their numbers (`leak.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakReport {
    /// Overall verdict.
    pub verdict: Verdict,
    /// Why, one line per finding (empty for a clean PASS).
    pub reasons: Vec<String>,
    /// Per-metric reports.
    pub metrics: Vec<MetricReport>,
    /// Sampling facts.
    pub sampling: SamplingSummary,
    /// The thresholds used.
    pub config: LeakConfig,
    /// With several replicas: each replica's report (the fields above are then the total's, with the worst
    /// verdict and every replica's reasons); empty for one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaReport>,
}

impl LeakReport {
    /// Exit code of the overall verdict (see [`Verdict::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.verdict.exit_code()
    }

    /// The report of one metric.
    pub fn metric(&self, metric: Metric) -> Option<&MetricReport> {
        self.metrics.iter().find(|m| m.metric == metric)
    }
}

/// Judges a series. Pure: same series and config, same report.
pub fn analyze(series: &ResourceSeries, config: &LeakConfig) -> LeakReport {
    let load = load::load_shift(series, &config.load).map(|shift| UnsteadyLoad {
        steady_until: load::steady_until(series, &shift, &config.load),
        shift,
    });
    let metrics: Vec<MetricReport> = Metric::ALL
        .iter()
        .filter(|m| !is_unavailable(series, **m))
        .map(|&m| analyze_metric(series, m, load.as_ref(), config))
        .collect();
    let sampling = summarize_sampling(series, config);
    let (verdict, reasons) = overall(&metrics, &sampling);
    LeakReport {
        verdict,
        reasons,
        metrics,
        sampling,
        config: config.clone(),
        replicas: Vec::new(),
    }
}

/// The end of the reason for metrics a source cannot read.
const NOT_AVAILABLE: &str = "not available on this platform or source (not judged)";

/// Whether the platform that sampled the series could not read this metric.
fn is_unavailable(series: &ResourceSeries, metric: Metric) -> bool {
    series
        .unavailable_columns
        .iter()
        .any(|c| c == metric.column())
}

fn analyze_metric(
    series: &ResourceSeries,
    metric: Metric,
    load: Option<&UnsteadyLoad>,
    config: &LeakConfig,
) -> MetricReport {
    let steady = series::phase_points(series, metric, Phase::Steady);
    let trend = trend::judge(metric, &steady, config);
    let trend = match load {
        Some(load) if metric.is_memory() && trend.verdict == Verdict::Leak => {
            unsteady_load_guard(metric, &steady, trend, load, config)
        }
        _ => trend,
    };
    let drain = drain::check_drain(series, metric, config);
    let peak = drain::check_peak(series, metric, config);
    let gross_growth = gross::check_gross_growth(series, metric, &config.gross_growth);
    let peak_verdict = match (peak.exceeded, metric.is_memory()) {
        (false, _) => Verdict::Pass,
        (true, true) => Verdict::Leak,
        (true, false) => Verdict::Growth,
    };
    let verdict = [
        Some(trend.verdict),
        drain.as_ref().map(|d| d.verdict),
        gross_growth.as_ref().map(|g| g.verdict),
        Some(peak_verdict),
    ]
    .into_iter()
    .flatten()
    .max_by_key(|v| v.severity())
    .unwrap_or(Verdict::Pass);
    MetricReport {
        metric,
        verdict,
        trend,
        drain,
        peak,
        gross_growth,
    }
}

/// A material rise of the open connections late in the steady window, and when the load was still steady.
struct UnsteadyLoad {
    shift: LoadShift,
    steady_until: Option<f64>,
}

/// A memory LEAK under a material rise of the open connections is INCONCLUSIVE (never PASS), with both figures
/// and the whole window's numbers — unless the memory was already leaking while the load was steady: then the
/// stretch before the rise, judged alone, backs the LEAK. Counts are not touched (a socket leak is the
/// sockets/fds GROWTH verdict's).
fn unsteady_load_guard(
    metric: Metric,
    steady: &[(f64, f64)],
    trend: TrendJudgement,
    load: &UnsteadyLoad,
    config: &LeakConfig,
) -> TrendJudgement {
    let before: Vec<(f64, f64)> = load.steady_until.map_or_else(Vec::new, |until| {
        steady.iter().copied().filter(|p| p.0 < until).collect()
    });
    let stretch = trend::judge(metric, &before, config);
    if stretch.verdict == Verdict::Leak {
        let secs = before.last().map_or(0.0, |l| l.0) - before.first().map_or(0.0, |f| f.0);
        return TrendJudgement {
            reason: format!(
                "{} — judged on the first {secs:.0} s of the steady window, while the load was steady (then {})",
                stretch.reason,
                load.shift.describe()
            ),
            ..stretch
        };
    }
    TrendJudgement {
        verdict: Verdict::Inconclusive,
        reason: format!("{} (memory: {})", load.shift.reason(), trend.reason),
        ..trend
    }
}

fn summarize_sampling(series: &ResourceSeries, config: &LeakConfig) -> SamplingSummary {
    let span = |phase: Phase| {
        let times: Vec<f64> = series
            .samples
            .iter()
            .filter(|s| s.phase == phase)
            .map(|s| s.t_secs)
            .collect();
        times.last().zip(times.first()).map_or(0.0, |(l, f)| l - f)
    };
    let monitor_cpu = series
        .samples
        .iter()
        .map(|s| s.monitor_cpu_percent)
        .sum::<f64>()
        / series.samples.len().max(1) as f64;
    SamplingSummary {
        samples: series.samples.len(),
        interval_secs: series.interval_secs,
        max_gap_secs: series.max_gap_secs(),
        gaps: series.gaps_longer_than(config.max_gap_intervals),
        warmup_secs: span(Phase::WarmUp),
        steady_secs: span(Phase::Steady),
        drain_secs: span(Phase::Drain),
        exited_at_secs: series.exited_at_secs,
        exit_reason: series.exit_reason.clone(),
        monitor_cpu_percent: monitor_cpu,
        not_available_on_platform: Metric::ALL
            .into_iter()
            .filter(|&m| is_unavailable(series, m))
            .collect(),
    }
}

fn overall(metrics: &[MetricReport], sampling: &SamplingSummary) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    if !sampling.not_available_on_platform.is_empty() {
        let names: Vec<&str> = sampling
            .not_available_on_platform
            .iter()
            .map(|m| m.name())
            .collect();
        reasons.push(format!("{}: {NOT_AVAILABLE}", names.join(", ")));
    }
    if let Some(t) = sampling.exited_at_secs {
        reasons.push(sampling.exit_reason.clone().unwrap_or_else(|| {
            format!("the monitored process exited {t:.1} s after monitoring started")
        }));
    }
    if let Some(worst) = sampling
        .gaps
        .iter()
        .max_by(|a, b| a.length_secs.total_cmp(&b.length_secs))
    {
        reasons.push(format!(
            "{} sampling gap(s), the longest {:.1} s after t={:.1} s (interval {:.1} s): the data cannot back a PASS",
            sampling.gaps.len(),
            worst.length_secs,
            worst.after_secs,
            sampling.interval_secs
        ));
    }
    for m in metrics.iter().filter(|m| m.verdict != Verdict::Pass) {
        let checks = [
            Some(&m.trend.reason),
            m.drain
                .as_ref()
                .filter(|d| d.verdict != Verdict::Pass)
                .map(|d| &d.reason),
            m.gross_growth
                .as_ref()
                .filter(|g| g.verdict != Verdict::Pass)
                .map(|g| &g.reason),
        ];
        for reason in checks.into_iter().flatten() {
            reasons.push(format!("{}: {reason}", m.metric.name()));
        }
        if m.peak.exceeded {
            reasons.push(format!(
                "{}: peak {:.0} exceeds the limit {:.0}",
                m.metric.name(),
                m.peak.peak,
                m.peak.limit.unwrap_or(0.0)
            ));
        }
    }
    let worst_metric = |v: Verdict| metrics.iter().any(|m| m.verdict == v);
    let verdict = if sampling.exited_at_secs.is_some() {
        Verdict::Crashed
    } else if !sampling.gaps.is_empty() {
        Verdict::Invalid
    } else {
        [Verdict::Leak, Verdict::Growth, Verdict::Inconclusive]
            .into_iter()
            .find(|&v| worst_metric(v))
            .unwrap_or(Verdict::Pass)
    };
    (verdict, reasons)
}

/// Live slope estimate of a metric over the steady samples so far, per hour (for a progress line). `None`
/// before two steady samples exist. Cheap: at most 120 bin medians.
pub fn live_slope_per_hour(series: &ResourceSeries, metric: Metric) -> Option<f64> {
    let steady = series::phase_points(series, metric, Phase::Steady);
    stats::theil_sen_slope(&series::bin_medians(&steady, 120)).map(|s| s * 3600.0)
}

pub use trend::format_bytes;
