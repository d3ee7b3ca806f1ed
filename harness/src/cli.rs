//! Command line (Locust-shaped where it can be): `harness run | check | list | watch | report | compare | merge`.
// The doc comments below are clap's `--help` text, printed verbatim: `<scenario>` there is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Load driver for API-key-router proxies.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (or a suite of them) against the proxy under test and write results + verdict.
    Run(Box<RunArgs>),
    /// Apply thresholds to a Locust `_stats.csv` or a `summary.json` (drop-in for check_load_test_results.py).
    Check(CheckArgs),
    /// List scenarios with description and tags.
    List(ListArgs),
    /// Monitor a process started elsewhere (e.g. beside Locust) and judge it for leaks.
    Watch(sut_monitor::watch::WatchArgs),
    /// Render (or re-render) the self-contained HTML report of a results directory or summary.json.
    Report(ReportArgs),
    /// Compare a run (or a suite of runs) with a baseline; exit 1 when the regression budget is exceeded.
    Compare(CompareArgs),
    /// Merge the results directories of a sharded run (`run --shard I/N`) and judge the whole once.
    Merge(MergeArgs),
    /// Internal: run the workspace's reference proxy (the harness re-executes itself with this).
    #[command(name = "__reference-proxy", hide = true)]
    ReferenceProxy(reference_proxy::Args),
}

/// `harness run`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Scenario file; or several files and directories of them (`scenarios/`), run one after another as a suite.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Suite runs: only scenarios with one of these scenario tags (comma-separated; `--tags` selects requests).
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub scenario_tags: Vec<String>,
    /// Proxy profile (TOML): how to start or reach your proxy, its request headers and key names; its fields win
    /// over the scenario's `[proxy]`, the command line wins over it.
    #[arg(long, value_name = "PROFILE")]
    pub proxy: Option<PathBuf>,
    /// Replace or add a header on every load request, like curl: 'Name: value' ('Name:' removes it); repeatable;
    /// `{env:NAME}` in the value reads the environment. Setup calls are not affected (see --setup-header).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Replace or add a header on every setup call of the proxy ('Name: value'); repeatable.
    #[arg(long = "setup-header", value_name = "HEADER")]
    pub setup_headers: Vec<String>,
    /// Base URL of an already running proxy (attach mode; no proxy is started).
    #[arg(long)]
    pub target: Option<String>,
    /// PID of the attached proxy, to monitor its resources (with --target).
    #[arg(long, requires = "target")]
    pub proxy_pid: Option<u32>,
    /// File holding the PID of the attached proxy (with --target).
    #[arg(long, requires = "target", conflicts_with = "proxy_pid")]
    pub proxy_pid_file: Option<PathBuf>,
    /// Base URL of an external mock-upstream to use instead of the in-process one, driven through its admin
    /// API (`/__admin`): reset, the scenario's rules, timeline rules, ledger. The proxy is pointed at it.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// PEM CA certificate of an external HTTPS mock (`--upstream https://…`, e.g. the `ca file:` that
    /// mock-upstream `--tls` prints): the harness's admin calls trust it, and a spawned proxy gets it as
    /// `{ca_file}`.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    pub upstream_ca: Option<PathBuf>,
    /// Bearer token of the external mock's admin API (used with --upstream).
    #[arg(long, env = "HARNESS_UPSTREAM_ADMIN_TOKEN", hide_env_values = true)]
    pub upstream_admin_token: Option<String>,
    /// Users (closed model; replaces the scenario's stages with a constant count).
    #[arg(short = 'u', long)]
    pub users: Option<u32>,
    /// Users started per second (closed model).
    #[arg(short = 'r', long)]
    pub spawn_rate: Option<f64>,
    /// Run time, e.g. 30s, 5m (stages beyond it are cut; the last stage holds if it is longer).
    #[arg(short = 't', long, value_parser = human_duration::parse)]
    pub run_time: Option<Duration>,
    /// Warm-up of the leak verdicts from the start of the load, e.g. 2m (replaces `[monitor] warmup`).
    #[arg(long, value_parser = human_duration::parse)]
    pub warmup: Option<Duration>,
    /// How long the proxy keeps running after the load for the drain check, e.g. 30s (replaces `[monitor] drain`).
    #[arg(long, value_parser = human_duration::parse)]
    pub drain: Option<Duration>,
    /// Arrival rate in requests/s: switches to the open model at a constant rate.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Only requests with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Drop requests with any of these tags (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude_tags: Vec<String>,
    /// Seed of every random choice (overrides the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Results directory (default: results/<scenario>-<UTC timestamp>/; a suite's: results/suite-<UTC timestamp>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the Locust CSVs as PREFIX_stats.csv, ... (like Locust's --csv) instead of into the results dir.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<String>,
    /// Also write summary.json to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Threshold overrides (replace the scenario's limits of the same name).
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// Maximum ratio of the last window's p95 to the first window's (replaces `max_p95_drift_ratio`).
    #[arg(long, value_name = "RATIO")]
    pub max_p95_drift_ratio: Option<f64>,
    /// Maximum p95 increase from the first window to the last, in ms (replaces `max_p95_drift_ms`).
    #[arg(long, value_name = "MS")]
    pub max_p95_drift_ms: Option<f64>,
    /// Also write every threshold and verdict as JUnit XML to this file (for CI test reports).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Do not write report.html into the results directory.
    #[arg(long)]
    pub no_report: bool,
    /// No live progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Run shard I of N (0-based, e.g. `0/3`): this process's share of the scenario's load (users, rates and
    /// stages divided), its own seed stream; only shard 0 drives the mock's admin API. Needs --target and
    /// --upstream. Writes shard.json and history.hlog for `harness merge`.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// Run one of N shards, the index (0-based) read from the environment variable JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Start the load at this time (RFC 3339, e.g. 2026-12-05T20:00:00Z), so shards start together; a load
    /// that starts late records how late (shard.json, summary.json).
    #[arg(long, value_name = "RFC3339")]
    pub start_at: Option<String>,
    /// Serve the run's live metrics as OpenMetrics text at `GET /metrics` on this address (IP:PORT or
    /// localhost:PORT, e.g. 127.0.0.1:9464) until the results are written; unauthenticated and read-only, so
    /// keep it on loopback or a trusted network.
    #[arg(long, value_name = "ADDR", value_parser = crate::live_metrics::parse_listen_addr)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// `harness merge`.
#[derive(Debug, Args, Clone, Default)]
pub struct MergeArgs {
    /// The shards' results directories (each with shard.json, summary.json and history.hlog).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Results directory of the merged run (default: results/<scenario>-merged-<UTC timestamp>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write every threshold and verdict of the merged run as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Threshold overrides (replace the limits the shards ran with, of the same name).
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
    /// Do not write report.html into the merged results directory.
    #[arg(long)]
    pub no_report: bool,
    /// No report on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `harness report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's `summary.json` or its results directory.
    pub summary: PathBuf,
    /// Where to write the HTML (default: report.html beside summary.json).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// `harness compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a run's results directory or summary.json (e.g. last night's), or a suite directory
    /// (holding suite.json) to compare run by run, matched by scenario.
    pub baseline: PathBuf,
    /// The current run: the same kind as the baseline (a run, or a suite directory).
    pub current: PathBuf,
    /// Regression budget TOML (default: p95 +10 %, p99 +20 %, throughput -10 %, RSS slope +50 %, key fairness
    /// -0.1, Retry-After violations +5, recovery +50 % (min 1 s), TTFT overhead +50 % (min 20 ms), ...).
    #[arg(long)]
    pub budget: Option<PathBuf>,
    /// Also write the comparison as markdown (for a PR comment) to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

/// `harness check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Locust `_stats.csv` or `summary.json`.
    pub file: PathBuf,
    /// Limits (defaults: 1000 req/s, p50 50ms, p95 100ms, p99 200ms, 1 % errors excluding 429).
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

/// Threshold limits on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct ThresholdArgs {
    /// Minimum requests per second.
    #[arg(long)]
    pub min_rps: Option<f64>,
    /// Maximum median latency (e.g. 50ms).
    #[arg(long, value_parser = human_duration::parse)]
    pub p50: Option<Duration>,
    /// Maximum 95th percentile latency.
    #[arg(long, value_parser = human_duration::parse)]
    pub p95: Option<Duration>,
    /// Maximum 99th percentile latency.
    #[arg(long, value_parser = human_duration::parse)]
    pub p99: Option<Duration>,
    /// Maximum failures in percent, 429s included.
    #[arg(long)]
    pub max_error_percent: Option<f64>,
    /// Maximum failures other than 429 in percent.
    #[arg(long)]
    pub max_error_percent_excluding_429: Option<f64>,
}

/// `harness list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Directory of scenario files.
    #[arg(default_value = "scenarios")]
    pub dir: PathBuf,
}
