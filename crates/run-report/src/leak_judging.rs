//! Whether a run's resource (leak/growth) verdicts counted toward its exit code.
//!
//! A scenario with `[monitor] judge_leaks = false` still analyses the proxy's resources and records the leak
//! report in `summary.json`, but its LEAK or GROWTH does not fail the run. Shown like a judged verdict, a red
//! LEAK under a green PASS reads as a contradiction; every renderer (HTML report, JUnit, the terminal after a
//! run) therefore asks this module how to present a resource verdict, and says [`NOT_JUDGED`] in neutral style
//! when it did not count.
//!
//! The setting is read from the configuration echo, `config.monitor.judge_leaks`. A summary without it (another
//! engine, or one written before the echo had the field) is shown as recorded, i.e. as judged.

use load_stats::summary::Summary;
use sut_monitor::leak::LeakReport;

/// What every renderer says next to a resource verdict that did not decide the exit code.
pub const NOT_JUDGED: &str = "reported, not judged (judge_leaks = false)";

/// How a run's resource verdicts were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakJudging {
    /// They decide the exit code (`judge_leaks = true`, or the summary does not say).
    Judged,
    /// They are in the report only (`judge_leaks = false`).
    ReportedOnly,
}

impl LeakJudging {
    /// From a `summary.json` configuration echo (`config.monitor.judge_leaks`).
    pub fn from_config(config: &serde_json::Value) -> Self {
        match config
            .pointer("/monitor/judge_leaks")
            .and_then(serde_json::Value::as_bool)
        {
            Some(false) => LeakJudging::ReportedOnly,
            Some(true) | None => LeakJudging::Judged,
        }
    }

    /// Whether the verdicts counted.
    pub fn counts(self) -> bool {
        self == LeakJudging::Judged
    }

    /// The CSS class of a resource verdict: its own colour when judged, neutral otherwise.
    pub fn class(self, verdict: &str) -> &'static str {
        match self {
            LeakJudging::Judged => crate::html::view::verdict_class(verdict),
            LeakJudging::ReportedOnly => "neutral",
        }
    }

    /// `VERDICT` when judged, `VERDICT — reported, not judged (judge_leaks = false)` otherwise.
    pub fn label(self, verdict: &str) -> String {
        match self {
            LeakJudging::Judged => verdict.to_owned(),
            LeakJudging::ReportedOnly => format!("{verdict} — {NOT_JUDGED}"),
        }
    }
}

/// The resource verdicts for the terminal after a run: the overall verdict, then one line per metric that did
/// not pass (with its reason); with several replicas, the total's lines, then each replica's verdict and its own
/// lines (a restart or disappearance as its reason). Empty when the run has no leak report; one line when it
/// cannot be read.
pub fn terminal_lines(summary: &Summary) -> Vec<String> {
    if summary.leak_report.is_null() {
        return Vec::new();
    }
    let judging = LeakJudging::from_config(&summary.config);
    let report: LeakReport = match serde_json::from_value(summary.leak_report.clone()) {
        Ok(report) => report,
        Err(e) => return vec![format!("resources: leak_report could not be read: {e}")],
    };
    let overall = format!("resources {}", judging.label(report.verdict.as_str()));
    let mut lines = vec![overall];
    lines.extend(failing_metric_lines(&report, ""));
    for replica in &report.replicas {
        let own = &replica.report;
        lines.push(format!(
            "  replica {} {}",
            replica.replica,
            judging.label(own.verdict.as_str())
        ));
        lines.extend(
            own.sampling
                .exit_reason
                .iter()
                .map(|why| format!("    {why}")),
        );
        lines.extend(failing_metric_lines(own, "  "));
    }
    lines
}

fn failing_metric_lines<'a>(
    report: &'a LeakReport,
    indent: &'a str,
) -> impl Iterator<Item = String> + 'a {
    report
        .metrics
        .iter()
        .filter(|m| m.verdict.as_str() != "PASS")
        .map(move |m| {
            format!(
                "{indent}  {} {}: {}",
                m.verdict.as_str(),
                m.metric.name(),
                m.trend.reason
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn judging_follows_the_configuration_echo() {
        for (config, judging) in [
            (
                json!({"monitor": {"judge_leaks": false}}),
                LeakJudging::ReportedOnly,
            ),
            (
                json!({"monitor": {"judge_leaks": true}}),
                LeakJudging::Judged,
            ),
            (json!({"monitor": {}}), LeakJudging::Judged),
            (
                json!({"monitor": {"judge_leaks": "no"}}),
                LeakJudging::Judged,
            ),
            (serde_json::Value::Null, LeakJudging::Judged),
        ] {
            assert_eq!(LeakJudging::from_config(&config), judging, "{config}");
        }
    }

    #[test]
    fn a_verdict_that_did_not_count_is_neutral_and_says_so() {
        for (judging, verdict, class, label) in [
            (LeakJudging::Judged, "LEAK", "fail", "LEAK"),
            (LeakJudging::Judged, "PASS", "pass", "PASS"),
            (
                LeakJudging::ReportedOnly,
                "LEAK",
                "neutral",
                "LEAK — reported, not judged (judge_leaks = false)",
            ),
            (
                LeakJudging::ReportedOnly,
                "GROWTH",
                "neutral",
                "GROWTH — reported, not judged (judge_leaks = false)",
            ),
        ] {
            assert_eq!(judging.class(verdict), class, "{judging:?} {verdict}");
            assert_eq!(judging.label(verdict), label);
        }
    }
}
