//! A suite's index: `suite.json` (what `harness compare` and scripts read) and `report.html` (a page linking
//! each run's report, with its verdict and duration), written into the suite directory beside one results
//! directory per scenario.
//!
//! The index is rewritten after every run, so a suite cut short (Ctrl-C, a killed job) still leaves an index of
//! what ran; scenarios that never started are listed as "not run".

use crate::ReportError;
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::path::Path;

const TEMPLATE: &str = include_str!("../templates/suite.html.j2");

/// File name of the machine-readable index in a suite directory.
pub const SUITE_JSON: &str = "suite.json";
/// File name of the JUnit document of a whole suite.
pub const SUITE_JUNIT: &str = "junit.xml";

/// `suite.json`. Reading is lenient about everything but `runs` (older or hand-written indexes still compare).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteIndex {
    /// Always `"suite"` (tells a suite directory from a run's).
    #[serde(default = "suite_kind")]
    pub kind: String,
    /// When the suite started (RFC 3339, UTC).
    #[serde(default)]
    pub started: String,
    /// The proxy profile used, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// The worst run's verdict (`PASS` when every run passed; `RUNNING` while it runs).
    #[serde(default)]
    pub verdict: String,
    /// The suite's exit code: the worst run's by the documented precedence.
    #[serde(default)]
    pub exit_code: i32,
    /// Wall time so far, in seconds.
    #[serde(default)]
    pub duration_secs: f64,
    /// One entry per selected scenario, in run order.
    pub runs: Vec<SuiteRun>,
}

/// One scenario of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRun {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    #[serde(default)]
    pub file: String,
    /// Its results directory, relative to the suite directory.
    pub dir: String,
    /// `PASS`, `FAIL`, ... as in its `summary.json`; `ERROR` when it produced no results; `NOT RUN`.
    #[serde(default)]
    pub verdict: String,
    /// Its exit code (`null` when not run).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Its wall time in seconds.
    #[serde(default)]
    pub duration_secs: f64,
    /// The verdict's reasons (or the error that stopped it).
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl SuiteIndex {
    /// Reads `suite.json` from a suite directory.
    pub fn read(dir: &Path) -> Result<SuiteIndex, ReportError> {
        let path = dir.join(SUITE_JSON);
        let text = ReportError::read_to_string(&path)?;
        let index: SuiteIndex = serde_json::from_str(&text)
            .map_err(|e| ReportError::invalid(&path, format!("not a suite index: {e}")))?;
        if index.kind != "suite" {
            return Err(ReportError::invalid(
                &path,
                format!("`kind` is {:?}, expected \"suite\"", index.kind),
            ));
        }
        Ok(index)
    }

    /// Whether `dir` is a suite directory (holds `suite.json`).
    pub fn is_suite_dir(dir: &Path) -> bool {
        dir.is_dir() && dir.join(SUITE_JSON).is_file()
    }

    /// Writes `suite.json` and `report.html` into `dir` (each through a temporary file, so a reader never sees
    /// half a file).
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| ReportError::invalid(dir.join(SUITE_JSON), e.to_string()))?;
        write_atomically(&dir.join(SUITE_JSON), &json)?;
        write_atomically(&dir.join("report.html"), &self.render_html())
    }

    /// The index page.
    pub fn render_html(&self) -> String {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        let runs: Vec<_> = self
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scenario": r.scenario,
                    "file": r.file,
                    "dir": r.dir,
                    "verdict": r.verdict,
                    "class": verdict_class(&r.verdict),
                    "exit_code": r.exit_code,
                    "duration": crate::format::duration_secs(r.duration_secs),
                    "reasons": r.reasons,
                    "has_report": r.exit_code.is_some() && r.verdict != "ERROR",
                })
            })
            .collect();
        let context = serde_json::json!({
            "verdict": self.verdict,
            "class": verdict_class(&self.verdict),
            "exit_code": self.exit_code,
            "started": crate::format::timestamp(&self.started),
            "profile": self.profile,
            "duration": crate::format::duration_secs(self.duration_secs),
            "runs": runs,
            "passed": self.runs.iter().filter(|r| r.verdict == "PASS").count(),
            "total": self.runs.len(),
        });
        env.render_str(
            TEMPLATE,
            minijinja::Value::from(minijinja::value::Serde(&context)),
        )
        .unwrap_or_else(|e| format!("<!DOCTYPE html><p>template error: {e}</p>"))
    }
}

fn suite_kind() -> String {
    "suite".into()
}

/// CSS class of a verdict badge.
fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "PASS" => "pass",
        "FAIL" => "fail",
        "CRASHED" | "ERROR" => "crashed",
        "RUNNING" | "NOT RUN" => "neutral",
        _ => "warn",
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<(), ReportError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, verdict: &str, exit_code: Option<i32>) -> SuiteRun {
        SuiteRun {
            scenario: scenario.into(),
            file: format!("scenarios/{scenario}.toml"),
            dir: scenario.into(),
            verdict: verdict.into(),
            exit_code,
            duration_secs: 31.5,
            reasons: vec![format!("{scenario} <reason>")],
        }
    }

    #[test]
    fn index_round_trips_and_links_each_run_with_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = SuiteIndex {
            kind: "suite".into(),
            started: "2026-12-05T17:00:00Z".into(),
            profile: Some("examples/fastapi-proxy/profile.toml".into()),
            verdict: "FAIL".into(),
            exit_code: 1,
            duration_secs: 95.0,
            runs: vec![
                run("key_revoked", "PASS", Some(0)),
                run("upstream_outage", "FAIL", Some(1)),
                run("slow_upstream", "ERROR", Some(3)),
                run("soak", "NOT RUN", None),
            ],
        };
        index.write(dir.path()).expect("written");
        assert!(SuiteIndex::is_suite_dir(dir.path()));
        assert_eq!(SuiteIndex::read(dir.path()).expect("read"), index);
        let html = std::fs::read_to_string(dir.path().join("report.html")).expect("html");
        assert!(html.contains("href=\"key_revoked/report.html\""), "{html}");
        assert!(html.contains("href=\"upstream_outage/report.html\""));
        assert!(!html.contains("href=\"slow_upstream/report.html\""));
        assert!(!html.contains("href=\"soak/report.html\""));
        assert!(
            html.contains("upstream_outage &lt;reason&gt;"),
            "reasons are escaped"
        );
        assert!(html.contains("1 of 4 passed"), "{html}");
        let not_a_suite = tempfile::tempdir().expect("tempdir");
        std::fs::write(not_a_suite.path().join(SUITE_JSON), "{\"kind\": 3}").expect("write");
        let err = SuiteIndex::read(not_a_suite.path()).expect_err("invalid");
        assert!(err.to_string().contains("not a suite index"), "{err}");
    }
}
