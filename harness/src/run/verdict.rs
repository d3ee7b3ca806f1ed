//! The run's overall verdict and exit code from everything that was judged (pure).

use crate::exit::Exit;
use crate::sut::ExitInfo;
use load_stats::thresholds::ThresholdResult;

/// Why the load stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The run time was reached.
    Completed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The proxy exited during the run.
    Crashed(ExitInfo),
}

/// The resource (leak) verdict, as far as it affects the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceVerdict {
    /// No monitoring (no PID known) or leak judgement not requested.
    NotJudged,
    /// Judged and passed.
    Pass,
    /// LEAK or GROWTH (with the monitor's reason).
    Failed(String),
    /// INCONCLUSIVE or INVALID (with the reason).
    Invalid(String),
}

/// Overall verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `PASS`, `FAIL`, `CRASHED`, `INTERRUPTED` or `INVALID`.
    pub name: &'static str,
    /// Matching exit code.
    pub exit: Exit,
    /// One sentence per reason.
    pub reasons: Vec<String>,
}

/// Combines the stop cause, threshold results and the resource verdict. Precedence: interrupted, crashed,
/// failed (thresholds or leak), invalid, pass — every reason is listed whatever wins.
pub fn decide(
    cause: StopCause,
    thresholds: &[ThresholdResult],
    resources: &ResourceVerdict,
) -> Verdict {
    let mut reasons = Vec::new();
    match cause {
        StopCause::Completed => {}
        StopCause::Interrupted => {
            reasons.push("interrupted (Ctrl-C / SIGTERM); results cover the run so far".into())
        }
        StopCause::Crashed(info) => {
            reasons.push(format!("the proxy crashed during the run ({info})"))
        }
    }
    let failed: Vec<&ThresholdResult> = thresholds.iter().filter(|t| !t.passed).collect();
    reasons.extend(failed.iter().map(|t| format!("threshold failed: {t}")));
    match resources {
        ResourceVerdict::Failed(why) => reasons.push(format!("resources: {why}")),
        ResourceVerdict::Invalid(why) => reasons.push(format!("resources: {why}")),
        ResourceVerdict::NotJudged | ResourceVerdict::Pass => {}
    }
    let (name, exit) = match (cause, resources) {
        (StopCause::Interrupted, _) => ("INTERRUPTED", Exit::Interrupted),
        (StopCause::Crashed(_), _) => ("CRASHED", Exit::SutCrashed),
        (_, ResourceVerdict::Failed(_)) => ("FAIL", Exit::Failed),
        _ if !failed.is_empty() => ("FAIL", Exit::Failed),
        (_, ResourceVerdict::Invalid(_)) => ("INVALID", Exit::Invalid),
        _ => ("PASS", Exit::Pass),
    };
    Verdict {
        name,
        exit,
        reasons,
    }
}

impl Verdict {
    /// Adds failures judged elsewhere (proxy-behaviour verdicts): each becomes a reason, and a `PASS` or
    /// `INVALID` run becomes `FAIL` (exit 1) — interrupted and crashed runs keep their precedence.
    pub fn with_failures(mut self, failures: Vec<String>) -> Verdict {
        if failures.is_empty() {
            return self;
        }
        if matches!(self.exit, Exit::Pass | Exit::Invalid) {
            (self.name, self.exit) = ("FAIL", Exit::Failed);
        }
        self.reasons.extend(failures);
        self
    }
}

impl Verdict {
    /// Adds reasons that make a run prove nothing (an overloaded generator, an inconclusive or unmet required
    /// behaviour check): each becomes a reason, and a
    /// `PASS` becomes `INCONCLUSIVE` (exit 5) — a failed, invalid, crashed or interrupted run keeps its verdict.
    pub fn with_inconclusive(mut self, reasons: Vec<String>) -> Verdict {
        if reasons.is_empty() {
            return self;
        }
        if self.exit == Exit::Pass {
            (self.name, self.exit) = ("INCONCLUSIVE", Exit::Invalid);
        }
        self.reasons.extend(reasons);
        self
    }
}

impl Verdict {
    /// The run is not what it claims to be (a merge of shards that is not one whole run): `INVALID` (exit 5)
    /// whatever was judged, the `problems` first among the reasons.
    pub fn invalid_because(mut self, problems: Vec<String>) -> Verdict {
        if problems.is_empty() {
            return self;
        }
        (self.name, self.exit) = ("INVALID", Exit::Invalid);
        self.reasons.splice(0..0, problems);
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_replaces_every_verdict_and_comes_first() {
        let failed = decide(StopCause::Completed, &[], &ResourceVerdict::Pass)
            .with_failures(vec!["behaviour: x".into()]);
        let v = failed.invalid_because(vec!["shard 1/3 is missing".into()]);
        assert_eq!((v.name, v.exit), ("INVALID", Exit::Invalid));
        assert_eq!(v.reasons, ["shard 1/3 is missing", "behaviour: x"]);
        let pass = decide(StopCause::Completed, &[], &ResourceVerdict::Pass);
        assert_eq!(pass.clone().invalid_because(vec![]), pass);
    }

    #[test]
    fn inconclusive_only_replaces_a_pass() {
        let pass = || decide(StopCause::Completed, &[], &ResourceVerdict::Pass);
        let v = pass().with_inconclusive(vec!["generator overloaded: x".into()]);
        assert_eq!((v.name, v.exit), ("INCONCLUSIVE", Exit::Invalid));
        assert_eq!(v.reasons, vec!["generator overloaded: x".to_string()]);
        assert_eq!(pass().with_inconclusive(vec![]).exit, Exit::Pass);
        let failed = pass().with_failures(vec!["behaviour".into()]);
        let v = failed.with_inconclusive(vec!["generator overloaded: x".into()]);
        assert_eq!((v.name, v.exit, v.reasons.len()), ("FAIL", Exit::Failed, 2));
        let interrupted = decide(StopCause::Interrupted, &[], &ResourceVerdict::Pass);
        let v = interrupted.with_inconclusive(vec!["generator overloaded: x".into()]);
        assert_eq!(v.exit, Exit::Interrupted);
    }

    use super::*;
    use load_stats::thresholds::Metric;

    fn threshold(passed: bool) -> ThresholdResult {
        ThresholdResult {
            scope: "Aggregated".into(),
            metric: Metric::P95,
            limit: 100.0,
            measured: Some(if passed { 50.0 } else { 150.0 }),
            unit: "ms".into(),
            passed,
            detail: "p95".into(),
        }
    }

    #[test]
    fn precedence_table() {
        let crash = StopCause::Crashed(ExitInfo {
            code: None,
            signal: Some(9),
        });
        let leak = ResourceVerdict::Failed("LEAK rss".into());
        let invalid = ResourceVerdict::Invalid("gap".into());
        let ok = ResourceVerdict::Pass;
        let cases = [
            (
                StopCause::Completed,
                vec![threshold(true)],
                ok.clone(),
                "PASS",
                Exit::Pass,
            ),
            (
                StopCause::Completed,
                vec![],
                ResourceVerdict::NotJudged,
                "PASS",
                Exit::Pass,
            ),
            (
                StopCause::Completed,
                vec![threshold(false)],
                ok.clone(),
                "FAIL",
                Exit::Failed,
            ),
            (
                StopCause::Completed,
                vec![threshold(true)],
                leak.clone(),
                "FAIL",
                Exit::Failed,
            ),
            (
                StopCause::Completed,
                vec![threshold(true)],
                invalid.clone(),
                "INVALID",
                Exit::Invalid,
            ),
            (
                StopCause::Completed,
                vec![threshold(false)],
                invalid,
                "FAIL",
                Exit::Failed,
            ),
            (
                crash,
                vec![threshold(false)],
                leak.clone(),
                "CRASHED",
                Exit::SutCrashed,
            ),
            (
                StopCause::Interrupted,
                vec![threshold(false)],
                leak,
                "INTERRUPTED",
                Exit::Interrupted,
            ),
        ];
        for (cause, thresholds, resources, name, exit) in cases {
            let v = decide(cause, &thresholds, &resources);
            assert_eq!((v.name, v.exit), (name, exit), "{cause:?} {resources:?}");
        }
        let v = decide(crash, &[threshold(false)], &ResourceVerdict::NotJudged);
        assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
        for (resources, cause, name) in [
            (ResourceVerdict::Pass, StopCause::Completed, "FAIL"),
            (
                ResourceVerdict::Invalid("gap".into()),
                StopCause::Completed,
                "FAIL",
            ),
            (ResourceVerdict::Pass, StopCause::Interrupted, "INTERRUPTED"),
            (ResourceVerdict::Pass, crash, "CRASHED"),
        ] {
            let judged = decide(cause, &[], &resources).with_failures(vec!["behaviour".into()]);
            assert_eq!(judged.name, name, "{resources:?} {cause:?}");
            assert!(judged.reasons.contains(&"behaviour".to_string()));
        }
        let unchanged =
            decide(StopCause::Completed, &[], &ResourceVerdict::Pass).with_failures(vec![]);
        assert_eq!(unchanged.exit, Exit::Pass);
        assert!(
            v.reasons[0].contains("killed by signal 9"),
            "{:?}",
            v.reasons
        );
    }
}
