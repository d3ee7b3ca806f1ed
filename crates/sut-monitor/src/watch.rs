//! `harness watch`: monitor-only mode. Samples a process tree that some other tool is loading (Locust, a
//! production replay) until `--duration`, Ctrl-C or the process's exit, then judges it like `harness run` does.
//! Instead of a PID it can read replicas' metrics (`--metrics-url`, repeatable, or `--prometheus`), judged per
//! replica and in total (progress lines then show the total).
//!
//! Why it exists: teams can put the leak verdict next to their existing locustfile from day one, without
//! porting their load to a scenario file. Outputs in `--out`: `resources.csv` (written as it goes) and
//! `leak.json` (the [`LeakReport`]); the verdict table goes to stdout, progress lines to stderr.
//! Exit code: the verdict's (0 pass, 1 leak/growth, 4 process exited = crashed, 5 invalid/inconclusive).
//! Ctrl-C is a normal way to end a watch, so it yields the verdict's code, not 130.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::leak::{self, format_bytes, LeakConfig, LeakReport, Metric};
use crate::monitor::{Monitor, MonitorConfig, MonitorHandle, Phase};
use crate::source::{MetricNames, MonitorSource, PrometheusSpec};

/// Command-line arguments of `watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// PID of the process to watch (its child processes are included).
    #[arg(
        long,
        required_unless_present_any = ["pid_file", "metrics_url", "prometheus"],
        conflicts_with_all = ["pid_file", "metrics_url", "prometheus"]
    )]
    pub pid: Option<u32>,
    /// File holding the PID (e.g. written by the proxy's launcher).
    #[arg(long, conflicts_with_all = ["metrics_url", "prometheus"])]
    pub pid_file: Option<PathBuf>,
    /// Instead of a PID: a replica's Prometheus `/metrics` URL, scraped every interval (repeat it, one per
    /// replica).
    #[arg(
        long = "metrics-url",
        value_name = "URL",
        conflicts_with = "prometheus"
    )]
    pub metrics_url: Vec<String>,
    /// Instead of a PID: a Prometheus server's base URL, queried every interval; one series per value of
    /// `--replica-label`.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Label selector added to the Prometheus queries, e.g. `{job="proxy"}`.
    #[arg(long, alias = "query-selector", conflicts_with_all = ["pid", "pid_file", "metrics_url"])]
    pub selector: Option<String>,
    /// The Prometheus label that tells replicas apart (default `pod`).
    #[arg(long, conflicts_with_all = ["pid", "pid_file", "metrics_url"])]
    pub replica_label: Option<String>,
    /// Stop after this long, e.g. `30m` (default: until Ctrl-C or the process exits).
    #[arg(long, value_parser = human_duration::parse)]
    pub duration: Option<Duration>,
    /// Directory for `resources.csv` and `leak.json` (created if missing).
    #[arg(long, default_value = "watch-results")]
    pub out: PathBuf,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_parser = human_duration::parse)]
    pub interval: Duration,
    /// Start of the watch excluded from trend analysis (caches and pools filling).
    #[arg(long, default_value = "60s", value_parser = human_duration::parse)]
    pub warmup: Duration,
    /// Leak settings file (TOML with `LeakConfig` fields, e.g. `alpha = 0.01`); the flags below override it.
    #[arg(long)]
    pub leak_config: Option<PathBuf>,
    /// Memory slope limit per hour, e.g. `4MiB` (RSS and RssAnon).
    #[arg(long, value_parser = parse_bytes)]
    pub memory_slope_limit: Option<f64>,
    /// Open-fd and TCP-socket slope limit per hour.
    #[arg(long)]
    pub fds_slope_limit: Option<f64>,
    /// Thread slope limit per hour.
    #[arg(long)]
    pub threads_slope_limit: Option<f64>,
    /// Hard ceiling on peak RSS, e.g. `2GiB`.
    #[arg(long, value_parser = parse_bytes)]
    pub max_rss: Option<f64>,
    /// Hard ceiling on peak open fds.
    #[arg(long)]
    pub max_fds: Option<u64>,
    /// Hard ceiling on peak threads.
    #[arg(long)]
    pub max_threads: Option<u64>,
    /// One-sided significance level of the trend test.
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value = "10s", value_parser = human_duration::parse)]
    pub progress_every: Duration,
}

/// Why the watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Duration,
    Interrupted,
    ProcessExited,
}

/// Runs a watch to its end and returns the exit code. Errors (exit 2 for the caller) are bad input: a PID that
/// does not exist, an unreadable PID or config file, an unwritable output directory.
pub async fn run(args: WatchArgs) -> anyhow::Result<i32> {
    let source = resolve_source(&args)?;
    let watched = describe_source(&source);
    let config = leak_config(&args)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let monitor_config = MonitorConfig {
        interval: args.interval,
        initial_phase: Phase::WarmUp,
        steady_after: Some(args.warmup),
    };
    let handle = Monitor::start_source(&source, monitor_config, &args.out.join("resources.csv"))?;
    eprintln!(
        "watching {watched} every {} (warm-up {}), writing to {}",
        human_duration::format(args.interval),
        human_duration::format(args.warmup),
        args.out.display()
    );
    let reason = wait_for_end(&handle, &config, args.duration, args.progress_every).await;
    let series = tokio::task::spawn_blocking(move || handle.stop())
        .await
        .context("monitor thread failed")?;
    let report = leak::analyze_replicas(&series, &config);
    write_report(&args.out.join("leak.json"), &report)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "watch of {watched} ended: {}", describe(reason))?;
    report.write_table(&mut stdout)?;
    Ok(report.exit_code())
}

/// The source the flags name: `--metrics-url`, `--prometheus`, or a PID.
fn resolve_source(args: &WatchArgs) -> anyhow::Result<MonitorSource> {
    if !args.metrics_url.is_empty() {
        return Ok(MonitorSource::Metrics {
            urls: args.metrics_url.clone(),
            names: MetricNames::default(),
        });
    }
    if let Some(url) = &args.prometheus {
        let mut spec = PrometheusSpec::new(url.clone());
        spec.selector = args.selector.clone().unwrap_or_default();
        if let Some(label) = &args.replica_label {
            spec.replica_label = label.clone();
        }
        return Ok(MonitorSource::Prometheus(spec));
    }
    Ok(MonitorSource::Process {
        pid: resolve_pid(args)?,
    })
}

fn describe_source(source: &MonitorSource) -> String {
    match source {
        MonitorSource::Process { pid } => format!("PID {pid}"),
        MonitorSource::Metrics { urls, .. } => format!("{} /metrics URL(s)", urls.len()),
        MonitorSource::Prometheus(spec) => format!(
            "Prometheus at {} (replicas by {:?})",
            spec.url, spec.replica_label
        ),
    }
}

fn resolve_pid(args: &WatchArgs) -> anyhow::Result<u32> {
    if let Some(pid) = args.pid {
        return Ok(pid);
    }
    let path = args
        .pid_file
        .as_ref()
        .context("--pid or --pid-file is required")?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read PID file {}", path.display()))?;
    text.trim().parse().with_context(|| {
        format!(
            "PID file {} does not hold a PID: {:?}",
            path.display(),
            text.trim()
        )
    })
}

/// The config file (if any) with the CLI overrides applied, validated.
fn leak_config(args: &WatchArgs) -> anyhow::Result<LeakConfig> {
    let mut config = match &args.leak_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read leak config {}", path.display()))?;
            toml::from_str(&text)
                .with_context(|| format!("invalid leak config {}", path.display()))?
        }
        None => LeakConfig::default(),
    };
    apply_overrides(&mut config, args);
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid leak settings: {e}"))?;
    Ok(config)
}

fn apply_overrides(config: &mut LeakConfig, args: &WatchArgs) {
    if let Some(limit) = args.memory_slope_limit {
        config.memory.abs_per_hour = limit;
    }
    if let Some(limit) = args.fds_slope_limit {
        config.fds.abs_per_hour = limit;
        config.sockets.abs_per_hour = limit;
    }
    if let Some(limit) = args.threads_slope_limit {
        config.threads.abs_per_hour = limit;
    }
    config.peak.rss_bytes = args.max_rss.map(|b| b as u64).or(config.peak.rss_bytes);
    config.peak.fds = args.max_fds.or(config.peak.fds);
    config.peak.threads = args.max_threads.or(config.peak.threads);
    config.alpha = args.alpha.unwrap_or(config.alpha);
}

/// Waits for the duration, Ctrl-C or the process's exit, printing a progress line now and then.
async fn wait_for_end(
    handle: &MonitorHandle,
    config: &LeakConfig,
    duration: Option<Duration>,
    progress_every: Duration,
) -> EndReason {
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let exited = async {
        while !handle.exited() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let progress = async {
        if progress_every.is_zero() {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(progress_every).await;
            eprintln!("{}", progress_line(handle, config));
        }
    };
    tokio::select! {
        _ = deadline => EndReason::Duration,
        _ = tokio::signal::ctrl_c() => EndReason::Interrupted,
        _ = exited => EndReason::ProcessExited,
        _ = progress => unreachable!("progress never ends"),
    }
}

/// `t=120s rss=45.2 MiB (1.2 MiB/h) fds=34 sockets=12 threads=8 cpu=12.0% monitor=0.10% verdict=PASS`: the
/// verdict is the series so far judged as if the watch ended now, so a user (or a script) sees when it is
/// decided.
fn progress_line(handle: &MonitorHandle, config: &LeakConfig) -> String {
    handle.inspect(|series| {
        let verdict_so_far = leak::analyze_replicas(series, config).verdict;
        let replicas = leak::replicas::split_by_replica(series, config.max_gap_intervals);
        let total;
        let series = if replicas.len() > 1 {
            total = leak::replicas::total_across_replicas(series, &replicas);
            &total
        } else {
            series
        };
        let Some(s) = series.samples.last() else {
            return "no sample yet".to_string();
        };
        let slope = match s.phase {
            Phase::WarmUp => "warm-up".to_string(),
            _ => leak::live_slope_per_hour(series, Metric::Rss)
                .map_or("-".into(), |v| format!("{}/h", format_bytes(v))),
        };
        format!(
            "t={:.0}s rss={} ({slope}) fds={} sockets={} threads={} cpu={:.1}% monitor={:.2}% verdict={}",
            s.t_secs,
            format_bytes(s.rss_bytes as f64),
            s.fds,
            s.socket_fds,
            s.threads,
            s.cpu_percent,
            s.monitor_cpu_percent,
            verdict_so_far
        )
    })
}

fn describe(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Duration => "duration reached",
        EndReason::Interrupted => "interrupted (Ctrl-C)",
        EndReason::ProcessExited => "the process exited",
    }
}

fn write_report(path: &Path, report: &LeakReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("cannot serialize the leak report")?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

/// A byte size flag that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ByteSizeError {
    /// No number at the start.
    #[error("{0:?} is not a size (try 4MiB or 1048576)")]
    NotASize(String),
    /// A unit that is not B, KiB, MiB, GiB, KB, MB, GB (or K, M, G).
    #[error("unknown size unit {unit:?} in {text:?} (use B, KiB, MiB, GiB, KB, MB, GB)")]
    UnknownUnit {
        /// The unit given.
        unit: String,
        /// The whole flag value.
        text: String,
    },
}

/// Parses a byte size: `1048576`, `512KiB`, `4MiB`, `2GiB`, `100MB`, `1.5G` (K/M/G alone are binary).
pub fn parse_bytes(text: &str) -> Result<f64, ByteSizeError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| ByteSizeError::NotASize(text.to_string()))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(ByteSizeError::UnknownUnit {
                unit: other.to_string(),
                text: text.to_string(),
            })
        }
    };
    Ok(value * multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        let cases = [
            ("1048576", Ok(1048576.0)),
            ("512KiB", Ok(524288.0)),
            ("4MiB", Ok(4194304.0)),
            ("1.5G", Ok(1.5 * 1073741824.0)),
            ("100MB", Ok(1e8)),
            (" 2 gib ", Ok(2147483648.0)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_bytes(text), want, "{text}");
        }
        for bad in ["", "MiB", "4 parsecs", "-1MiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_overrides_apply_on_top_of_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            watch: WatchArgs,
        }
        let cli = Cli::try_parse_from([
            "watch",
            "--pid",
            "42",
            "--memory-slope-limit",
            "8MiB",
            "--fds-slope-limit",
            "10",
            "--max-rss",
            "1GiB",
            "--alpha",
            "0.05",
        ])
        .expect("parses");
        let config = leak_config(&cli.watch).expect("valid");
        assert_eq!(config.memory.abs_per_hour, 8.0 * 1024.0 * 1024.0);
        assert_eq!(
            (config.fds.abs_per_hour, config.sockets.abs_per_hour),
            (10.0, 10.0)
        );
        assert_eq!((config.peak.rss_bytes, config.alpha), (Some(1 << 30), 0.05));
        assert!(Cli::try_parse_from(["watch"]).is_err(), "a PID is required");
        let sources = [
            (vec!["--pid", "7"], Some("PID 7")),
            (
                vec![
                    "--metrics-url",
                    "http://a:1/metrics",
                    "--metrics-url",
                    "http://b:2/metrics",
                ],
                Some("2 /metrics URL(s)"),
            ),
            (
                vec![
                    "--prometheus",
                    "http://p:9090",
                    "--query-selector",
                    "{job=\"x\"}",
                    "--replica-label",
                    "instance",
                ],
                Some("Prometheus at http://p:9090 (replicas by \"instance\")"),
            ),
            (
                vec!["--pid", "7", "--metrics-url", "http://a:1/metrics"],
                None,
            ),
            (
                vec![
                    "--metrics-url",
                    "http://a:1/metrics",
                    "--prometheus",
                    "http://p:9090",
                ],
                None,
            ),
            (vec!["--pid", "7", "--selector", "{}"], None),
        ];
        for (flags, want) in sources {
            let parsed = Cli::try_parse_from(std::iter::once("watch").chain(flags.iter().copied()));
            let got = parsed
                .ok()
                .map(|cli| describe_source(&resolve_source(&cli.watch).expect("source")));
            assert_eq!(got.as_deref(), want, "{flags:?}");
        }
        assert!(Cli::try_parse_from(["watch", "--pid", "1", "--pid-file", "x"]).is_err());
        let bad = Cli::try_parse_from(["watch", "--pid", "1", "--alpha", "2"]).expect("parses");
        assert!(leak_config(&bad.watch).is_err_and(|e| e.to_string().contains("alpha")));
    }
}
