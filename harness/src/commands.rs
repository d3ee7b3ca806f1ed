//! Dispatch of the subcommands; every error becomes a message on stderr and its documented exit code.

use crate::cli::{CheckArgs, Cli, Command, CompareArgs, ListArgs, ReportArgs, ThresholdArgs};
use crate::error::HarnessError;
use crate::exit::Exit;
use crate::scenario::Scenario;
use std::path::PathBuf;

/// Runs one command line; returns the process exit code.
pub async fn execute(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Run(args) => crate::run::run(*args).await.map(Exit::code),
        Command::Check(args) => check(&args).map(Exit::code),
        Command::List(args) => list(&args).map(Exit::code),
        Command::Watch(args) => watch(args).await,
        Command::Report(args) => report(&args).map(Exit::code),
        Command::Compare(args) => compare(&args).map(Exit::code),
        Command::Merge(args) => crate::merge::merge(&args).map(Exit::code),
        Command::ReferenceProxy(args) => reference_proxy(args).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("harness: {e}");
        e.exit().code()
    })
}

/// `harness list [dir]`: every scenario with its description and tags; invalid files are listed with their
/// error (exit 2 if any).
fn list(args: &ListArgs) -> Result<Exit, HarnessError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .map_err(|e| HarnessError::BadInput(format!("{}: {e}", args.dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut exit = Exit::Pass;
    for file in files {
        match Scenario::from_file(&file) {
            Ok(s) => println!(
                "{:<28} [{}]\n    {}\n    {}",
                s.name,
                s.tags.join(", "),
                s.description,
                file.display()
            ),
            Err(e) => {
                println!("{:<28} INVALID: {e}", file.display());
                exit = Exit::BadInput;
            }
        }
    }
    Ok(exit)
}

/// `harness check FILE`: thresholds (default: the users' CI targets, overridable) on a Locust `_stats.csv` or
/// a `summary.json`.
fn check(args: &CheckArgs) -> Result<Exit, HarnessError> {
    let mut thresholds = load_stats::thresholds::Thresholds::users_targets();
    thresholds.override_with(&args.thresholds.to_thresholds());
    let report = load_stats::check::check_path(&args.file, &thresholds)
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    print!("{report}");
    Ok(if report.passed() {
        Exit::Pass
    } else {
        Exit::Failed
    })
}

/// `harness report SUMMARY [-o FILE]`: the self-contained HTML report, re-rendered from a results directory.
fn report(args: &ReportArgs) -> Result<Exit, HarnessError> {
    let path = run_report::write_report(&args.summary, args.output.as_deref())
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    println!("{}", path.display());
    Ok(Exit::Pass)
}

/// `harness compare BASELINE CURRENT`: two runs or two suite directories; deltas with direction; exit 1 when the
/// regression budget is exceeded, 2 for unreadable input or a suite compared with a single run.
fn compare(args: &CompareArgs) -> Result<Exit, HarnessError> {
    let bad_input = |e: run_report::ReportError| HarnessError::BadInput(e.to_string());
    let budget = match &args.budget {
        Some(path) => run_report::RegressionBudget::from_toml_file(path).map_err(bad_input)?,
        None => run_report::RegressionBudget::default(),
    };
    let outcome =
        run_report::compare_paths(&args.baseline, &args.current, &budget).map_err(bad_input)?;
    print!("{}", outcome.to_table());
    if let Some(path) = &args.markdown {
        std::fs::write(path, outcome.to_markdown()).map_err(|e| HarnessError::io(path, e))?;
    }
    Ok(if outcome.regressed() {
        Exit::Failed
    } else {
        Exit::Pass
    })
}

/// `harness watch`: monitor-only mode (sut-monitor's logic).
async fn watch(args: sut_monitor::watch::WatchArgs) -> Result<i32, HarnessError> {
    sut_monitor::watch::run(args)
        .await
        .map_err(|e| HarnessError::BadInput(format!("{e:#}")))
}

/// The hidden `__reference-proxy` subcommand: the workspace's reference proxy in this process.
async fn reference_proxy(args: reference_proxy::Args) -> Result<i32, HarnessError> {
    match reference_proxy::run_standalone(args).await {
        Ok(()) => Ok(0),
        Err(e) if e.downcast_ref::<reference_proxy::ConfigError>().is_some() => {
            eprintln!("reference-proxy: {e:#}");
            Ok(reference_proxy::EXIT_BAD_CONFIG)
        }
        Err(e) => {
            eprintln!("reference-proxy: {e:#}");
            Ok(1)
        }
    }
}

impl ThresholdArgs {
    /// The limits given on the command line (unset ones stay unset).
    pub fn to_thresholds(&self) -> load_stats::thresholds::Thresholds {
        load_stats::thresholds::Thresholds::from_overall(&load_stats::thresholds::Limits {
            min_rps: self.min_rps,
            p50: self.p50,
            p95: self.p95,
            p99: self.p99,
            max_error_percent: self.max_error_percent,
            max_error_percent_excluding_429: self.max_error_percent_excluding_429,
        })
    }
}
