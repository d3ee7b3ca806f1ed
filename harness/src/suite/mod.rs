//! Suite runs: `harness run scenarios/ --proxy my-proxy.toml --scenario-tags failure` runs each selected
//! scenario one after another, each as a normal run with its own results directory, and gives one verdict.
//!
//! A nightly job or a PR check wants one command, one exit code and one JUnit file, not fourteen. Each run is a
//! full `harness run`: with a `[proxy]` profile (or none) every scenario gets a fresh proxy and mock, so one
//! scenario's faults cannot leak into the next; with an `[attach]` profile the running proxy is kept and the
//! external mock is reset by each run. The suite directory holds `suite.json` and `report.html` (rewritten after
//! every run, so a suite cut short still has an index), `junit.xml`, and one results directory per scenario.
//! The suite exits with its worst run's code (precedence in [`Exit::severity`]); Ctrl-C ends the current run
//! (its results are written) and runs nothing more.

mod select;

pub use select::{select, Selected};

use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::exit::Exit;
use crate::profile::Profile;
use load_stats::summary::Summary;
use run_report::suite::{SuiteIndex, SuiteRun, SUITE_JSON, SUITE_JUNIT};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Whether `harness run` was given a suite: several scenario files, a directory, or `--scenario-tags`.
pub fn is_suite(args: &RunArgs) -> bool {
    args.scenarios.len() > 1
        || args.scenarios.iter().any(|p| p.is_dir())
        || !args.scenario_tags.is_empty()
}

/// Runs the suite and returns its exit code (the worst run's).
pub async fn run(args: RunArgs) -> Result<Exit, HarnessError> {
    if args.csv.is_some() || args.json.is_some() {
        return Err(HarnessError::BadInput(
            "--csv and --json name one run's files; a suite writes each run's files into its own directory \
             (use --out for the suite directory, --junit for one JUnit file of the whole suite)"
                .into(),
        ));
    }
    let profile = args.proxy.as_deref().map(Profile::from_file).transpose()?;
    let selected = select(&args.scenarios, &args.scenario_tags)?;
    let dir = suite_dir(args.out.as_deref())?;
    let started = Instant::now();
    let mut index = SuiteIndex {
        kind: "suite".into(),
        started: now_rfc3339(),
        profile: args.proxy.as_ref().map(|p| p.display().to_string()),
        verdict: "RUNNING".into(),
        exit_code: 0,
        duration_secs: 0.0,
        runs: selected
            .iter()
            .map(|s| SuiteRun {
                scenario: s.scenario.name.clone(),
                file: s.file.display().to_string(),
                dir: s.dir.clone(),
                verdict: "NOT RUN".into(),
                exit_code: None,
                duration_secs: 0.0,
                reasons: Vec::new(),
            })
            .collect(),
    };
    write_index(&index, &dir)?;
    let total = selected.len();
    if !args.quiet {
        eprintln!(
            "harness: suite of {total} scenario{} — results in {}",
            if total == 1 { "" } else { "s" },
            dir.display()
        );
    }
    let mut worst = Exit::Pass;
    for (i, chosen) in selected.into_iter().enumerate() {
        if !args.quiet {
            eprintln!(
                "harness: [{}/{total}] {} ({})",
                i + 1,
                chosen.scenario.name,
                chosen.file.display()
            );
        }
        let run_dir = dir.join(&chosen.dir);
        let mut run_args = args.clone();
        run_args.scenarios = vec![chosen.file.clone()];
        run_args.out = Some(run_dir.clone());
        run_args.junit = None;
        let run_started = Instant::now();
        let ended = crate::run::run_scenario(chosen.scenario, run_args, profile.as_ref()).await;
        let entry = &mut index.runs[i];
        entry.duration_secs = run_started.elapsed().as_secs_f64();
        let exit = match ended {
            Ok(exit) => {
                (entry.verdict, entry.reasons) = match read_summary(&run_dir) {
                    Some(summary) => (summary.verdict, summary.verdict_reasons),
                    None => ("ERROR".into(), vec!["the run left no summary.json".into()]),
                };
                exit
            }
            Err(e) => {
                eprintln!("harness: {}: {e}", entry.scenario);
                (entry.verdict, entry.reasons) = ("ERROR".into(), vec![e.to_string()]);
                e.exit()
            }
        };
        entry.exit_code = Some(exit.code());
        if exit.severity() > worst.severity() {
            index.verdict = entry.verdict.clone();
        }
        worst = worst.worst(exit);
        index.exit_code = worst.code();
        index.duration_secs = started.elapsed().as_secs_f64();
        write_index(&index, &dir)?;
        if exit == Exit::Interrupted {
            break;
        }
    }
    if worst == Exit::Pass {
        index.verdict = "PASS".into();
    }
    index.duration_secs = started.elapsed().as_secs_f64();
    write_index(&index, &dir)?;
    write_junit(&index, &dir, args.junit.as_deref())?;
    if !args.quiet {
        print_summary(&index, &dir);
    }
    Ok(worst)
}

/// `--out`, or `results/suite-<UTC timestamp>/`; a directory that already holds a suite is refused rather
/// than overwritten.
fn suite_dir(out: Option<&Path>) -> Result<PathBuf, HarnessError> {
    let dir = out.map_or_else(
        || PathBuf::from("results").join(format!("suite-{}", crate::run::utc_stamp())),
        Path::to_path_buf,
    );
    if dir.join(SUITE_JSON).exists() {
        return Err(HarnessError::BadInput(format!(
            "--out {}: already holds a suite; choose another directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
    Ok(dir)
}

fn write_index(index: &SuiteIndex, dir: &Path) -> Result<(), HarnessError> {
    index
        .write(dir)
        .map_err(|e| HarnessError::Environment(e.to_string()))
}

fn read_summary(run_dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(run_dir.join("summary.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// `junit.xml` in the suite directory (and at `--junit FILE`): a `<testsuite>` per scenario.
fn write_junit(index: &SuiteIndex, dir: &Path, extra: Option<&Path>) -> Result<(), HarnessError> {
    let summaries: Vec<Option<Summary>> = index
        .runs
        .iter()
        .map(|r| {
            r.exit_code
                .is_some()
                .then(|| read_summary(&dir.join(&r.dir)))
                .flatten()
        })
        .collect();
    let no_results = "the run produced no results".to_string();
    let entries: Vec<run_report::junit::SuiteEntry> = index
        .runs
        .iter()
        .zip(&summaries)
        .filter(|(r, _)| r.exit_code.is_some())
        .map(|(r, summary)| match summary {
            Some(summary) => run_report::junit::SuiteEntry::Ran {
                scenario: &r.scenario,
                summary,
            },
            None => run_report::junit::SuiteEntry::NoResults {
                scenario: &r.scenario,
                message: r.reasons.first().unwrap_or(&no_results),
                exit_code: r.exit_code.unwrap_or_default(),
            },
        })
        .collect();
    let xml = run_report::junit::render_suite("harness suite", index.duration_secs, &entries);
    for path in std::iter::once(dir.join(SUITE_JUNIT)).chain(extra.map(Path::to_path_buf)) {
        std::fs::write(&path, &xml).map_err(|e| HarnessError::io(&path, e))?;
    }
    Ok(())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One line per scenario, then the suite's verdict.
fn print_summary(index: &SuiteIndex, dir: &Path) {
    let passed = index.runs.iter().filter(|r| r.verdict == "PASS").count();
    eprintln!("\nsuite: {passed} of {} scenarios passed", index.runs.len());
    let width = index
        .runs
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(0);
    for r in &index.runs {
        let first_reason = r.reasons.first().map(String::as_str).unwrap_or("");
        eprintln!(
            "  {:<12} {:<width$}  {:>6}  {first_reason}",
            r.verdict,
            r.scenario,
            run_report::format::duration_secs(r.duration_secs),
        );
    }
    eprintln!(
        "verdict: {} (exit {}) — {}",
        index.verdict,
        index.exit_code,
        dir.join("report.html").display()
    );
}
