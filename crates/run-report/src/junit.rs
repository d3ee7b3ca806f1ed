//! JUnit XML for CI: every threshold and every verdict becomes a `<testcase>`, so GitHub (test reporters),
//! GitLab (`artifacts:reports:junit`) and Jenkins (`junit` step) show a failed p95 or a leak natively.
//!
//! Shape (what those readers accept, as Gatling and pytest emit it):
//! `<testsuites name tests failures errors skipped time>` → `<testsuite name tests failures errors skipped time
//! timestamp>` with `<properties>` (scenario, seed, verdict) → `<testcase classname name time>` with a
//! `<failure message type>` (a limit or verdict that failed), an `<error message type>` (the run could not be
//! judged: CRASHED, INVALID, INCONCLUSIVE, INTERRUPTED) or `<skipped message>` (no verdict yet; a resource
//! metric too short to judge; a behaviour check with nothing to judge; every resource metric of a run with
//! `judge_leaks = false`).
//!
//! A resource verdict that did not count toward the exit code (`judge_leaks = false`) is `<skipped>` with the
//! message `LEAK — reported, not judged (judge_leaks = false): <reason>`, not a passed case: CI readers
//! (GitHub test reporters, GitLab, Jenkins) list skipped cases with their message and count them apart, while
//! a passed case's text is hidden, so the measured LEAK stays visible without failing the build.
//!
//! Suites: `thresholds` (one case per threshold result), `verdicts` (the overall verdict and one case per
//! resource metric of the leak report), and `behaviour` (one case per proxy-behaviour verdict, when the summary
//! carries them under `engine.behaviour`; see [`crate::input::behaviour`]).

use minijinja::Environment;
use serde::Serialize;

use load_stats::summary::Summary;
use sut_monitor::leak::LeakReport;

use crate::html::view;
use crate::leak_judging::LeakJudging;

const TEMPLATE: &str = include_str!("../templates/junit.xml.j2");

/// How a test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    /// Held.
    Passed,
    /// A limit or verdict failed (`<failure>`).
    Failed,
    /// The run could not be judged (`<error>`).
    Error,
    /// Nothing to judge yet (`<skipped>`).
    Skipped,
}

/// One `<testcase>`.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// `classname` attribute.
    pub classname: String,
    /// `name` attribute.
    pub name: String,
    /// Outcome.
    pub outcome: CaseOutcome,
    /// `message` attribute of the failure/error/skipped element.
    pub message: String,
    /// Element text: the numbers behind the outcome.
    pub details: String,
}

#[derive(Debug, Serialize)]
struct Suite {
    name: String,
    cases: Vec<Case>,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: String,
    timestamp: String,
    properties: Vec<(&'static str, String)>,
}

impl Suite {
    /// A `<testsuite>` of one run's `cases` (names and messages made XML-safe).
    fn new(name: String, mut cases: Vec<Case>, run: &RunFacts) -> Self {
        for c in &mut cases {
            (c.classname, c.name, c.message, c.details) = (
                xml_safe(&c.classname),
                xml_safe(&c.name),
                xml_safe(&c.message),
                xml_safe(&c.details),
            );
        }
        let count = |o: CaseOutcome| cases.iter().filter(|c| c.outcome == o).count();
        Self {
            name: xml_safe(&name),
            tests: cases.len(),
            failures: count(CaseOutcome::Failed),
            errors: count(CaseOutcome::Error),
            skipped: count(CaseOutcome::Skipped),
            cases,
            time: run.time.clone(),
            timestamp: run.timestamp.clone(),
            properties: run.properties.clone(),
        }
    }
}

/// What every `<testsuite>` of one run repeats: its duration, start and properties.
struct RunFacts {
    time: String,
    timestamp: String,
    properties: Vec<(&'static str, String)>,
}

impl RunFacts {
    fn of(summary: &Summary, scenario: &str) -> RunFacts {
        let mut properties = vec![
            ("scenario", xml_safe(scenario)),
            ("verdict", xml_safe(&summary.verdict)),
        ];
        if let Some(seed) = view::seed(&summary.config) {
            properties.push(("seed", seed));
        }
        RunFacts {
            time: format!("{:.3}", summary.duration_secs),
            timestamp: summary
                .started_at
                .get(..19)
                .unwrap_or(&summary.started_at)
                .to_owned(),
            properties,
        }
    }
}

/// The outcome of an overall or per-metric verdict.
pub fn verdict_outcome(verdict: &str) -> CaseOutcome {
    match verdict {
        "PASS" => CaseOutcome::Passed,
        "FAIL" | "LEAK" | "GROWTH" => CaseOutcome::Failed,
        "PENDING" => CaseOutcome::Skipped,
        _ => CaseOutcome::Error,
    }
}

/// The outcome of one resource metric's verdict. Unlike the overall verdict, a metric that is INCONCLUSIVE
/// (too short a steady window to judge) is `<skipped>`: the engine decides whether that fails the run, and a
/// smoke run that passes must not show as errors in CI.
pub fn metric_outcome(verdict: &str) -> CaseOutcome {
    match verdict {
        "INCONCLUSIVE" => CaseOutcome::Skipped,
        other => verdict_outcome(other),
    }
}

/// The threshold cases.
pub fn threshold_cases(summary: &Summary) -> Vec<Case> {
    summary
        .thresholds
        .iter()
        .map(|t| {
            let op = if matches!(
                t.metric,
                load_stats::thresholds::Metric::MinRps | load_stats::thresholds::Metric::Requests
            ) {
                ">="
            } else {
                "<="
            };
            let limit = crate::format::with_unit(Some(t.limit), &t.unit);
            Case {
                classname: format!("harness.thresholds.{}", t.scope),
                name: format!("{} {op} {limit}", t.metric),
                outcome: if t.passed {
                    CaseOutcome::Passed
                } else {
                    CaseOutcome::Failed
                },
                message: t.detail.clone(),
                details: format!(
                    "scope {}: measured {}, limit {limit}",
                    t.scope,
                    crate::format::with_unit(t.measured, &t.unit)
                ),
            }
        })
        .collect()
}

/// The overall verdict case and one case per resource metric.
pub fn verdict_cases(summary: &Summary) -> Vec<Case> {
    let reasons = if summary.verdict_reasons.is_empty() {
        "no reasons given".to_owned()
    } else {
        summary.verdict_reasons.join("; ")
    };
    let mut cases = vec![Case {
        classname: "harness.verdict".into(),
        name: "overall verdict".into(),
        outcome: verdict_outcome(&summary.verdict),
        message: format!("{}: {reasons}", summary.verdict),
        details: format!(
            "verdict {}, exit code {}",
            summary.verdict, summary.exit_code
        ),
    }];
    if summary.leak_report.is_null() {
        return cases;
    }
    let judging = LeakJudging::from_config(&summary.config);
    match serde_json::from_value::<LeakReport>(summary.leak_report.clone()) {
        Ok(leak) => cases.extend(leak.metrics.iter().map(|m| Case {
            classname: "harness.resources".into(),
            name: format!("{} leak/growth", m.metric.name()),
            outcome: if judging.counts() {
                metric_outcome(m.verdict.as_str())
            } else {
                CaseOutcome::Skipped
            },
            message: format!("{}: {}", judging.label(m.verdict.as_str()), m.trend.reason),
            details: serde_json::to_string(&m.trend.numbers).unwrap_or_default(),
        })),
        Err(e) => cases.push(Case {
            classname: "harness.resources".into(),
            name: "leak report".into(),
            outcome: CaseOutcome::Error,
            message: format!("leak_report in summary.json could not be read: {e}"),
            details: String::new(),
        }),
    }
    cases
}

/// The proxy-behaviour cases (`skipped` verdicts become `<skipped>`: a limit with nothing to judge;
/// `inconclusive` ones `<error>`: measured, but the data could not tell a pass from a failure).
pub fn behaviour_cases(summary: &Summary) -> Vec<Case> {
    let document = serde_json::to_value(summary).unwrap_or_default();
    let verdicts = match crate::input::behaviour::verdicts(&document) {
        Ok(verdicts) => verdicts,
        Err(e) => {
            let message = format!("behaviour verdicts in summary.json could not be read: {e}");
            return vec![Case {
                classname: "harness.behaviour".into(),
                name: "behaviour report".into(),
                outcome: CaseOutcome::Error,
                message,
                details: String::new(),
            }];
        }
    };
    verdicts
        .into_iter()
        .map(|v| Case {
            classname: "harness.behaviour".into(),
            name: match &v.subject {
                Some(subject) => format!("{} ({subject})", v.check),
                None => v.check.clone(),
            },
            outcome: match v.outcome.as_str() {
                "pass" => CaseOutcome::Passed,
                "fail" => CaseOutcome::Failed,
                "inconclusive" => CaseOutcome::Error,
                _ => CaseOutcome::Skipped,
            },
            details: format!(
                "measured {}, limit {} {}",
                v.measured.map_or(
                    crate::format::NOT_AVAILABLE.into(),
                    crate::format::significant
                ),
                crate::format::significant(v.limit),
                v.unit
            ),
            message: v.detail,
        })
        .collect()
}

/// Characters XML 1.0 forbids (control characters other than tab, LF, CR) are replaced by U+FFFD.
fn xml_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Escapes the five XML special characters.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Serialize)]
struct Document {
    name: String,
    time: String,
    suites: Vec<Suite>,
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

/// Writes [`render`]'s output to `path` (`harness run --junit FILE`).
pub fn write(summary: &Summary, path: &std::path::Path) -> Result<(), crate::ReportError> {
    std::fs::write(path, render(summary)).map_err(|source| crate::ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Renders the JUnit XML document of a run.
pub fn render(summary: &Summary) -> String {
    let scenario = view::scenario_name(&summary.config).unwrap_or_else(|| "load test".into());
    let facts = RunFacts::of(summary, &scenario);
    let mut suites = vec![
        Suite::new("thresholds".into(), threshold_cases(summary), &facts),
        Suite::new("verdicts".into(), verdict_cases(summary), &facts),
    ];
    let behaviour = behaviour_cases(summary);
    if !behaviour.is_empty() {
        suites.push(Suite::new("behaviour".into(), behaviour, &facts));
    }
    render_document(format!("harness: {scenario}"), facts.time.clone(), suites)
}

/// One scenario of a suite run, for [`render_suite`].
#[derive(Debug)]
pub enum SuiteEntry<'a> {
    /// The run ended with results (whatever its verdict).
    Ran {
        /// Scenario name.
        scenario: &'a str,
        /// Its `summary.json`.
        summary: &'a Summary,
    },
    /// The run ended before it had results: bad input, a proxy that never started, ...
    NoResults {
        /// Scenario name.
        scenario: &'a str,
        /// Why (the harness's message).
        message: &'a str,
        /// The exit code it ended with.
        exit_code: i32,
    },
}

/// Renders one JUnit document for a suite: a `<testsuite>` per scenario holding every threshold, verdict and
/// behaviour case of that run (class names prefixed with the scenario), or one `<error>` case for a scenario that
/// produced no results.
pub fn render_suite(name: &str, total_secs: f64, entries: &[SuiteEntry]) -> String {
    let suites = entries
        .iter()
        .map(|entry| match entry {
            SuiteEntry::Ran { scenario, summary } => {
                let facts = RunFacts::of(summary, scenario);
                let cases = threshold_cases(summary)
                    .into_iter()
                    .chain(verdict_cases(summary))
                    .chain(behaviour_cases(summary))
                    .map(|mut c| {
                        c.classname = format!("{scenario}.{}", c.classname);
                        c
                    })
                    .collect();
                Suite::new(scenario.to_string(), cases, &facts)
            }
            SuiteEntry::NoResults {
                scenario,
                message,
                exit_code,
            } => {
                let facts = RunFacts {
                    time: "0".into(),
                    timestamp: String::new(),
                    properties: vec![("scenario", xml_safe(scenario))],
                };
                let case = Case {
                    classname: format!("{scenario}.harness"),
                    name: "run".into(),
                    outcome: CaseOutcome::Error,
                    message: format!("no results (exit {exit_code})"),
                    details: message.to_string(),
                };
                Suite::new(scenario.to_string(), vec![case], &facts)
            }
        })
        .collect();
    render_document(name.to_string(), format!("{total_secs:.3}"), suites)
}

fn render_document(name: String, time: String, suites: Vec<Suite>) -> String {
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum();
    let document = Document {
        name: xml_safe(&name),
        time,
        tests: total(|s| s.tests),
        failures: total(|s| s.failures),
        errors: total(|s| s.errors),
        skipped: total(|s| s.skipped),
        suites,
    };
    let mut env = Environment::new();
    // Every value printed by the template is XML-escaped here (minijinja's HTML escaping would also turn `/`
    // into `&#x2f;`, valid but unreadable in CI logs).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(|out, _state, value| {
        out.write_str(&xml_escape(&value.to_string()))
            .map_err(minijinja::Error::from)
    });
    env.render_str(TEMPLATE, minijinja::Value::from(minijinja::value::Serde(&document)))
        .unwrap_or_else(|e| format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- template error: {} -->\n<testsuites/>\n", xml_safe(&e.to_string()).replace("--", "- -")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_tables() {
        for (verdict, overall, metric) in [
            ("PASS", CaseOutcome::Passed, CaseOutcome::Passed),
            ("FAIL", CaseOutcome::Failed, CaseOutcome::Failed),
            ("LEAK", CaseOutcome::Failed, CaseOutcome::Failed),
            ("GROWTH", CaseOutcome::Failed, CaseOutcome::Failed),
            ("INCONCLUSIVE", CaseOutcome::Error, CaseOutcome::Skipped),
            ("INVALID", CaseOutcome::Error, CaseOutcome::Error),
            ("CRASHED", CaseOutcome::Error, CaseOutcome::Error),
            ("INTERRUPTED", CaseOutcome::Error, CaseOutcome::Error),
            ("PENDING", CaseOutcome::Skipped, CaseOutcome::Skipped),
        ] {
            assert_eq!(
                (verdict_outcome(verdict), metric_outcome(verdict)),
                (overall, metric),
                "{verdict}"
            );
        }
    }

    #[test]
    fn xml_escape_and_control_characters() {
        assert_eq!(
            xml_escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(
            xml_safe("ok\tline\n\u{1}\u{7f}"),
            "ok\tline\n\u{fffd}\u{fffd}"
        );
    }
}
