//! Two suite directories (`harness run` over several scenarios) compared run by run.
//!
//! A suite directory holds `suite.json` (`{"kind": "suite", "runs": [{"scenario", "dir", "verdict",
//! "exit_code", ...}]}`) and one results directory per run. Runs are matched by `scenario`, not by position or
//! directory name, because suites grow and get reordered; a scenario run in one suite only is listed as not
//! compared rather than counted as a regression. A run whose `summary.json` is absent (its proxy never started,
//! say) is compared by the verdict `suite.json` gives it, so a scenario that stopped running still shows.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use super::render::escape;
use super::{compare_json, load_summary_json, Comparison, RegressionBudget};
use crate::error::ReportError;
use crate::input::SUMMARY_FILE;
use crate::suite::{SuiteIndex, SuiteRun, SUITE_JSON};

/// True when `path` is a directory holding `suite.json`.
pub fn is_suite_dir(path: &Path) -> bool {
    SuiteIndex::is_suite_dir(path)
}

/// The suite's index; runs are matched by scenario, so a scenario listed twice cannot be compared.
fn read_index(dir: &Path) -> Result<SuiteIndex, ReportError> {
    let index = SuiteIndex::read(dir)?;
    let mut seen = BTreeSet::new();
    if let Some(run) = index.runs.iter().find(|r| !seen.insert(&r.scenario)) {
        return Err(ReportError::invalid(
            dir.join(SUITE_JSON),
            format!(
                "scenario {:?} is listed twice in `runs`: runs are matched by scenario",
                run.scenario
            ),
        ));
    }
    Ok(index)
}

/// A run's summary as JSON, or — when its `summary.json` is absent — only its verdict from `suite.json`, with a
/// note saying so. A present but broken summary is an error.
fn run_summary(
    suite: &Path,
    run: &SuiteRun,
    side: &str,
) -> Result<(Value, Option<String>), ReportError> {
    let path = suite.join(&run.dir).join(SUMMARY_FILE);
    if path.exists() {
        return load_summary_json(&path).map(|summary| (summary, None));
    }
    let exit = run
        .exit_code
        .map_or(String::new(), |code| format!(", exit code {code}"));
    let note = format!(
        "{side}: no {} (verdict {}{exit}): only the verdict is compared",
        path.display(),
        Some(run.verdict.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or("unknown")
    );
    Ok((json!({ "verdict": run.verdict }), Some(note)))
}

/// One scenario of both suites.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioComparison {
    /// The scenario's name (`runs[].scenario`).
    pub scenario: String,
    /// Its two runs compared.
    pub comparison: Comparison,
    /// Runs without a `summary.json`, one line each.
    pub notes: Vec<String>,
}

/// The result of comparing two suite directories.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteComparison {
    /// The baseline suite directory.
    pub baseline: PathBuf,
    /// The current suite directory.
    pub current: PathBuf,
    /// Scenarios run in both suites, in the baseline's order.
    pub scenarios: Vec<ScenarioComparison>,
    /// Scenarios run in the baseline suite only (not compared).
    pub only_in_baseline: Vec<String>,
    /// Scenarios run in the current suite only (not compared).
    pub only_in_current: Vec<String>,
}

/// Reads both suite indexes and compares the runs of every scenario in both.
pub fn compare_suites(
    baseline: &Path,
    current: &Path,
    budget: &RegressionBudget,
) -> Result<SuiteComparison, ReportError> {
    let (b, c) = (read_index(baseline)?, read_index(current)?);
    let in_current = |scenario: &str| c.runs.iter().find(|r| r.scenario == scenario);
    let mut scenarios = Vec::new();
    let mut only_in_baseline = Vec::new();
    for run in &b.runs {
        let Some(other) = in_current(&run.scenario) else {
            only_in_baseline.push(run.scenario.clone());
            continue;
        };
        let (b_summary, b_note) = run_summary(baseline, run, "baseline")?;
        let (c_summary, c_note) = run_summary(current, other, "current")?;
        scenarios.push(ScenarioComparison {
            scenario: run.scenario.clone(),
            comparison: compare_json(&b_summary, &c_summary, budget),
            notes: b_note.into_iter().chain(c_note).collect(),
        });
    }
    let only_in_current = c
        .runs
        .iter()
        .filter(|r| !b.runs.iter().any(|known| known.scenario == r.scenario))
        .map(|r| r.scenario.clone())
        .collect();
    Ok(SuiteComparison {
        baseline: baseline.to_path_buf(),
        current: current.to_path_buf(),
        scenarios,
        only_in_baseline,
        only_in_current,
    })
}

impl SuiteComparison {
    /// True when any scenario regressed.
    pub fn regressed(&self) -> bool {
        self.scenarios.iter().any(|s| s.comparison.regressed())
    }

    /// One line per scenario: its conclusion, or that it ran on one side only.
    pub fn summary_lines(&self) -> Vec<String> {
        let compared = self
            .scenarios
            .iter()
            .map(|s| format!("{}: {}", s.scenario, s.comparison.conclusion()));
        let one_sided = |names: &[String], side: &str| {
            names
                .iter()
                .map(|n| format!("{n}: only in {side}, not compared."))
                .collect::<Vec<_>>()
        };
        compared
            .chain(one_sided(&self.only_in_baseline, "baseline"))
            .chain(one_sided(&self.only_in_current, "current"))
            .collect()
    }

    /// The closing line: the regressed scenarios with what regressed in each, or that none did.
    pub fn conclusion(&self) -> String {
        let regressed: Vec<String> = self
            .scenarios
            .iter()
            .filter(|s| s.comparison.regressed())
            .map(|s| {
                let c = &s.comparison;
                let mut what: Vec<String> = c
                    .regressed_metrics()
                    .into_iter()
                    .map(String::from)
                    .collect();
                if c.verdict.regressed {
                    what.push(format!(
                        "verdict {} → {}",
                        c.verdict.baseline, c.verdict.current
                    ));
                }
                format!("{} ({})", s.scenario, what.join(", "))
            })
            .collect();
        let compared = self.scenarios.len();
        if regressed.is_empty() {
            format!("No regression beyond the budget in the {compared} scenarios compared.")
        } else {
            format!(
                "REGRESSION in {} of {compared} scenarios: {}.",
                regressed.len(),
                regressed.join("; ")
            )
        }
    }

    /// One table per scenario, then one line per scenario and the closing conclusion.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "== {} ({} vs {})",
                s.scenario,
                self.baseline.display(),
                self.current.display()
            );
            for note in &s.notes {
                let _ = writeln!(out, "note: {note}");
            }
            let _ = writeln!(out, "{}", s.comparison.to_table());
        }
        let _ = writeln!(out, "== suite");
        for line in self.summary_lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "{}", self.conclusion());
        out
    }

    /// Markdown for a PR comment: the conclusion and per-scenario lines first, then one section per scenario.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### Load test suite: comparison with baseline\n\n");
        let _ = writeln!(out, "**{}**\n", self.conclusion());
        for line in self.summary_lines() {
            let _ = writeln!(out, "- {}", escape(&line));
        }
        for s in &self.scenarios {
            let _ = writeln!(out, "\n#### {}\n", escape(&s.scenario));
            for note in &s.notes {
                let _ = writeln!(out, "_{}_\n", escape(note));
            }
            out.push_str(&s.comparison.markdown_body());
        }
        out
    }
}
