//! Re-judges recorded runs offline: reads each `resources.csv` given, runs the leak verdicts with the default
//! thresholds (or `--config FILE`, a `[monitor.leak]`-style TOML table) and prints one line per run — overall and
//! per-metric verdicts, and the rise of open connections when the load was not steady (see `leak::load`).
//! `cargo run -p sut-monitor --example rejudge -- [--config leak.toml] [--full] DIR/results/resources.csv...`
//!
//! The process's exit status is not in the CSV, so a run that CRASHED is re-judged as if it had not (nor are a
//! replica's restarts; a replica that disappeared still shows). Files with several replicas are judged per
//! replica and in total, as `harness run` does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use sut_monitor::leak::load::load_shift;
use sut_monitor::leak::{analyze_replicas, LeakConfig, LeakReport, Metric};
use sut_monitor::monitor::ResourceSeries;

/// Re-judge recorded resources.csv files.
#[derive(Parser)]
struct Cli {
    /// Leak thresholds (TOML), defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the full verdict table of each run, not one line.
    #[arg(long)]
    full: bool,
    /// The resources.csv files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => toml::from_str::<LeakConfig>(&std::fs::read_to_string(path)?)
            .with_context(|| format!("{}", path.display()))?,
        None => LeakConfig::default(),
    };
    for path in &cli.files {
        let series = read_series(path)?;
        let report = analyze_replicas(&series, &config);
        if cli.full {
            println!("== {}", path.display());
            report.write_table(&mut std::io::stdout())?;
        } else {
            let shift = load_shift(&series, &config.load).map_or(String::new(), |s| {
                format!(
                    "  load not steady: {} {:.0} -> {:.0}",
                    s.metric.name(),
                    s.earlier,
                    s.final_quarter
                )
            });
            println!("{}{shift}", one_line(path, &report));
        }
    }
    Ok(())
}

/// The series of a recorded run; the interval is the median time between samples.
fn read_series(path: &Path) -> anyhow::Result<ResourceSeries> {
    let samples = sut_monitor::resources_csv::read_samples(path)?;
    let mut steps: Vec<f64> = samples
        .windows(2)
        .map(|w| w[1].t_secs - w[0].t_secs)
        .filter(|&step| step > 0.0) // the replicas of one tick share its time
        .collect();
    steps.sort_by(f64::total_cmp);
    let interval = steps.get(steps.len() / 2).copied().unwrap_or(1.0);
    let mut series = ResourceSeries::new(0, std::time::Duration::from_secs_f64(interval));
    // Replicas named other than by a PID come from a remote source, which has no RssAnon, sockets or TCP states.
    if samples
        .iter()
        .any(|s| !s.replica.is_empty() && s.replica.parse::<u32>().is_err())
    {
        series.unavailable_columns = sut_monitor::source::REMOTE_UNAVAILABLE_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect();
    }
    series.samples = samples;
    Ok(series)
}

fn one_line(path: &Path, report: &LeakReport) -> String {
    let verdict = |m| report.metric(m).map_or("-", |r| r.verdict.as_str());
    let run = path
        .ancestors()
        .nth(2)
        .and_then(Path::file_name)
        .map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
    let metrics: Vec<String> = Metric::ALL
        .iter()
        .map(|&m| format!("{}={}", m.name(), verdict(m)))
        .collect();
    format!(
        "{run:<10} {:<13} {}",
        report.verdict.as_str(),
        metrics.join(" ")
    )
}
