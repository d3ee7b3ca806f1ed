//! `harness compare <baseline> <current>`: deltas between two runs (or two suites of runs), judged against a
//! [`RegressionBudget`].
//!
//! Why over JSON values rather than the typed `Summary`: the baseline is often last week's file, written by an
//! older harness. Every figure is looked up by path; a load figure missing on either side is shown as `n/a` and a
//! behaviour figure as "not compared" with the reason, and neither is judged, instead of refusing the whole
//! comparison. [`compare`] takes typed summaries for callers that have them; [`compare_files`] reads files
//! leniently; [`compare_paths`] takes what the command line gives (runs or suite directories).
//!
//! Which way is better is a property of each metric (`Higher` throughput, `Lower` latency); the direction column
//! says better/worse with a dead band so noise does not flap, while regression decisions use the budget only.
//!
//! # Layout
//! - [`budget`]: [`RegressionBudget`], its defaults and the budget TOML.
//! - [`delta`]: one figure ([`Delta`]) and the rule judging it; verdict and check outcome changes.
//! - `load`: throughput, latency, errors, streaming TTFT, memory.
//! - `behaviour`: fairness, Retry-After, masking, recovery, TTFT overhead, stream buffering, check outcomes.
//! - `render`: the terminal table and the markdown table.
//! - [`suite`]: suite directories compared run by run, matched by scenario.

mod behaviour;
pub mod budget;
pub mod delta;
mod load;
mod render;
pub mod suite;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use load_stats::summary::Summary;

use crate::error::ReportError;
use crate::input::SUMMARY_FILE;
pub use budget::RegressionBudget;
pub use delta::{Better, Budget, CheckChange, Delta, Direction, VerdictChange};
pub use suite::{ScenarioComparison, SuiteComparison};

/// The result of comparing two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Figures in report order: load figures, then behaviour figures.
    pub deltas: Vec<Delta>,
    /// Overall verdicts.
    pub verdict: VerdictChange,
    /// Behaviour check outcomes and the stream pass-through state.
    pub checks: Vec<CheckChange>,
}

impl Comparison {
    /// True when any budget was exceeded (the exit code of `harness compare` is then 1).
    pub fn regressed(&self) -> bool {
        self.verdict.regressed
            || self.deltas.iter().any(|d| d.regressed)
            || self.checks.iter().any(|c| c.regressed)
    }

    /// What regressed: figure names, then check names (the verdict is not included).
    pub fn regressed_metrics(&self) -> Vec<&str> {
        let figures = self
            .deltas
            .iter()
            .filter(|d| d.regressed)
            .map(|d| d.metric.as_str());
        let checks = self
            .checks
            .iter()
            .filter(|c| c.regressed)
            .map(|c| c.check.as_str());
        figures.chain(checks).collect()
    }

    /// `metric: why` of every row that was not compared.
    pub fn not_compared(&self) -> Vec<String> {
        let figures = self
            .deltas
            .iter()
            .filter_map(|d| Some(format!("{}: {}", d.metric, d.not_compared.as_ref()?)));
        let checks = self
            .checks
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c.check, c.not_compared.as_ref()?)));
        figures.chain(checks).collect()
    }

    /// One line: `No regression beyond the budget.` or `REGRESSION: a, b; verdict PASS → FAIL.`
    pub fn conclusion(&self) -> String {
        let regressed = self.regressed_metrics();
        let verdict = format!(
            "verdict {} → {}",
            self.verdict.baseline, self.verdict.current
        );
        match (regressed.is_empty(), self.verdict.regressed) {
            (true, false) => "No regression beyond the budget.".into(),
            (true, true) => format!("REGRESSION: {verdict}."),
            (false, false) => format!("REGRESSION: {}.", regressed.join(", ")),
            (false, true) => format!("REGRESSION: {}; {verdict}.", regressed.join(", ")),
        }
    }
}

/// Compares two typed summaries.
pub fn compare(baseline: &Summary, current: &Summary, budget: &RegressionBudget) -> Comparison {
    let to_value = |s: &Summary| serde_json::to_value(s).unwrap_or(Value::Null);
    compare_json(&to_value(baseline), &to_value(current), budget)
}

/// Reads two runs leniently (missing fields become `n/a` or "not compared") and compares them; each path is a
/// `summary.json` or a results directory holding one.
pub fn compare_files(
    baseline: &Path,
    current: &Path,
    budget: &RegressionBudget,
) -> Result<Comparison, ReportError> {
    Ok(compare_json(
        &load_summary_json(&summary_path(baseline))?,
        &load_summary_json(&summary_path(current))?,
        budget,
    ))
}

/// `dir/summary.json` for a directory, the path itself otherwise.
fn summary_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(SUMMARY_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Reads a `summary.json` as JSON; errors when it is unreadable, not JSON, or clearly not a run summary.
pub fn load_summary_json(path: &Path) -> Result<Value, ReportError> {
    let text = ReportError::read_to_string(path)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ReportError::invalid(path, format!("not JSON: {e}")))?;
    if !value.get("aggregate").is_some_and(Value::is_object) {
        return Err(ReportError::invalid(
            path,
            "not a summary.json: no `aggregate` object",
        ));
    }
    Ok(value)
}

/// Compares two summaries given as JSON values.
pub fn compare_json(baseline: &Value, current: &Value, budget: &RegressionBudget) -> Comparison {
    let mut deltas = load::load_deltas(baseline, current, budget);
    deltas.extend(behaviour::behaviour_deltas(baseline, current, budget));
    let mut checks = behaviour::check_changes(baseline, current, budget);
    checks.extend(behaviour::stream_change(baseline, current, budget));
    let verdict = |v: &Value| v.get("verdict").and_then(Value::as_str).map(String::from);
    Comparison {
        deltas,
        verdict: VerdictChange::new(
            verdict(baseline),
            verdict(current),
            budget.verdict_must_not_worsen,
        ),
        checks,
    }
}

/// What `harness compare` compared: two runs, or two suites.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CompareOutcome {
    /// Two runs.
    Run(Comparison),
    /// Two suite directories, run by run.
    Suite(SuiteComparison),
}

impl CompareOutcome {
    /// True when anything regressed (exit code 1).
    pub fn regressed(&self) -> bool {
        match self {
            CompareOutcome::Run(c) => c.regressed(),
            CompareOutcome::Suite(s) => s.regressed(),
        }
    }

    /// The terminal table(s) with the closing conclusion.
    pub fn to_table(&self) -> String {
        match self {
            CompareOutcome::Run(c) => c.to_table(),
            CompareOutcome::Suite(s) => s.to_table(),
        }
    }

    /// Markdown for a PR comment.
    pub fn to_markdown(&self) -> String {
        match self {
            CompareOutcome::Run(c) => c.to_markdown(),
            CompareOutcome::Suite(s) => s.to_markdown(),
        }
    }
}

/// Compares what the command line names: two suite directories (holding `suite.json`) run by run, or two runs
/// (a results directory or its `summary.json`). A suite against a single run is an error naming both.
pub fn compare_paths(
    baseline: &Path,
    current: &Path,
    budget: &RegressionBudget,
) -> Result<CompareOutcome, ReportError> {
    match (suite::is_suite_dir(baseline), suite::is_suite_dir(current)) {
        (true, true) => Ok(CompareOutcome::Suite(suite::compare_suites(
            baseline, current, budget,
        )?)),
        (false, false) => Ok(CompareOutcome::Run(compare_files(
            baseline, current, budget,
        )?)),
        (suite_is_baseline, _) => {
            let (suite, run) = if suite_is_baseline {
                (baseline, current)
            } else {
                (current, baseline)
            };
            Err(ReportError::invalid(
                run,
                format!(
                    "a single run, but {} is a suite directory ({}): compare two suite directories, \
                     or two runs (e.g. {}/<scenario>)",
                    suite.display(),
                    crate::suite::SUITE_JSON,
                    suite.display()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(rps: f64, p95: f64, errors: f64, verdict: &str, rss_slope: f64) -> Value {
        json!({
            "verdict": verdict,
            "aggregate": {"requests_per_sec": rps, "error_percent": errors + 1.0, "error_percent_excluding_429": errors,
                          "latency": {"percentiles": {"p50": 10.0, "p95": p95, "p99": 2.0 * p95}}},
            "streaming": [{"name": "chat", "streams": 100, "cut": 1, "ttft": {"percentiles": {"p95": 50.0}}}],
            "leak_report": {"metrics": [{"metric": "rss", "trend": {"numbers": {"slope_per_hour": rss_slope}}, "peak": {"peak": 4.0e7}}]}
        })
    }

    fn with_fairness(mut summary: Value, fairness: f64, outcome: &str) -> Value {
        summary["engine"] = json!({"behaviour": {
            "measurements": {"distribution": {"fairness": fairness, "keys": []}},
            "verdicts": [{"check": "fairness", "measured": fairness, "limit": 0.8, "unit": "ratio", "outcome": outcome, "detail": "Jain"}]
        }});
        summary
    }

    const MIB: f64 = 1048576.0;

    #[test]
    fn within_budget_passes() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 0.5 * MIB),
            &summary(980.0, 105.0, 0.2, "PASS", 0.7 * MIB),
            &RegressionBudget::default(),
        );
        assert!(!c.regressed(), "{}", c.to_table());
        assert!(c.to_table().contains("No regression beyond the budget."));
        let p95 = c.deltas.iter().find(|d| d.metric == "p95 latency").unwrap();
        assert_eq!(
            (p95.direction, p95.change_percent().map(|p| p.round())),
            (Direction::Worse, Some(5.0))
        );
    }

    #[test]
    fn over_budget_fails_and_names_the_metrics() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 2.0 * MIB),
            &summary(850.0, 120.0, 0.1, "LEAK", 10.0 * MIB),
            &RegressionBudget::default(),
        );
        assert!(c.regressed());
        assert_eq!(
            c.regressed_metrics(),
            ["throughput", "p95 latency", "RSS slope (steady)"]
        );
        assert!(c.verdict.regressed);
        assert_eq!(c.verdict.direction(), Direction::Worse);
        let table = c.to_table();
        assert!(
            table.contains(
                "REGRESSION: throughput, p95 latency, RSS slope (steady); verdict PASS → LEAK."
            ),
            "{table}"
        );
        let md = c.to_markdown();
        assert!(
            md.contains(
                "| p95 latency | 100 ms | 120 ms | +20.0 % | worse | +10 % | ❌ **REGRESSED** |"
            ),
            "{md}"
        );
    }

    #[test]
    fn a_fairness_collapse_regresses_though_load_figures_are_unchanged() {
        let b = with_fairness(summary(1000.0, 100.0, 0.1, "FAIL", MIB), 0.86, "pass");
        let c = with_fairness(summary(1000.0, 100.0, 0.1, "FAIL", MIB), 0.33, "fail");
        let comparison = compare_json(&b, &c, &RegressionBudget::default());
        assert_eq!(
            comparison.regressed_metrics(),
            ["key fairness", "check fairness"]
        );
        let table = comparison.to_table();
        assert!(
            table.contains("REGRESSION: key fairness, check fairness."),
            "{table}"
        );
        assert!(
            table.lines().any(|l| l.starts_with("key fairness")
                && l.contains("0.860")
                && l.contains("0.330")
                && l.contains("-0.530")
                && l.ends_with("REGRESSED")),
            "{table}"
        );
        assert!(
            table.lines().any(|l| l.starts_with("check fairness")
                && l.contains("pass")
                && l.contains("fail")
                && l.ends_with("REGRESSED")),
            "{table}"
        );
        // Not measured here: listed with the reason, not a regression.
        assert!(
            table.contains("Not compared:\n")
                && table.contains("  - TTFT overhead: both runs: no streamed responses measured"),
            "{table}"
        );
    }

    #[test]
    fn rss_slope_below_the_floor_is_not_a_regression() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 0.1 * MIB),
            &summary(1000.0, 100.0, 0.1, "PASS", 0.9 * MIB),
            &RegressionBudget::default(),
        );
        let slope = c
            .deltas
            .iter()
            .find(|d| d.metric.starts_with("RSS slope"))
            .unwrap();
        assert_eq!(
            (slope.direction, slope.regressed),
            (Direction::Worse, false)
        );
    }

    #[test]
    fn missing_fields_are_not_available_not_a_crash() {
        let partial = json!({"aggregate": {"requests_per_sec": 900.0}});
        let c = compare_json(
            &partial,
            &summary(1000.0, 100.0, 0.1, "PASS", MIB),
            &RegressionBudget::default(),
        );
        assert!(!c.regressed());
        let p95 = c.deltas.iter().find(|d| d.metric == "p95 latency").unwrap();
        assert_eq!(
            (p95.baseline, p95.direction, p95.regressed),
            (None, Direction::NotAvailable, false)
        );
        assert_eq!(c.verdict.baseline, "n/a");
        let table = c.to_table();
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("p95 latency") && l.contains("n/a")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("TTFT p95 · chat") && l.contains("n/a")),
            "{table}"
        );
        assert!(
            table.contains("  - behaviour: both runs: no behaviour measurements in summary.json"),
            "{table}"
        );
    }
}
