//! Proxy-behaviour figures of two runs: key fairness, Retry-After violations, failover masking and recovery per
//! fault window, the TTFT the proxy adds, stream buffering, and every behaviour check's outcome.
//!
//! Read from `engine.behaviour` (or a top-level `behaviour`) of `summary.json`: the `measurements` of a
//! `proxy_behaviour::BehaviourReport` for the figures, its `verdicts` for the checks. A figure that one run did
//! not measure, or measured without being able to judge (no upstream failure to mask, a recovery the run ended
//! too early to see), is "not compared" with the reason — never a regression, never left out. A check that
//! passed in the baseline and fails now is a regression by itself, whatever the figure's budget says: the
//! scenario's own limit was crossed.

use serde_json::Value;

use super::budget::RegressionBudget;
use super::delta::{judge, Better, Budget, CheckChange, Delta};
use crate::input::behaviour::{report_of, verdicts, BehaviourVerdict};

/// One behaviour figure of one run.
#[derive(Debug, Clone, PartialEq)]
enum Figure {
    /// Measured.
    Measured(f64),
    /// Not measured to the end, but at least this much (a recovery not seen within the time observed).
    AtLeast(f64, String),
    /// Absent or not judged, and why.
    Missing(String),
}

impl Figure {
    fn missing(why: impl Into<String>) -> Self {
        Figure::Missing(why.into())
    }

    fn value(&self) -> Option<f64> {
        match self {
            Figure::Measured(v) => Some(*v),
            _ => None,
        }
    }

    fn why_not(&self) -> Option<&str> {
        match self {
            Figure::Measured(_) => None,
            Figure::AtLeast(_, why) | Figure::Missing(why) => Some(why),
        }
    }
}

/// What a figure is and how it is judged.
struct FigureKind {
    metric: String,
    unit: &'static str,
    better: Better,
    budget: Option<Budget>,
}

/// Judges one figure of both runs; a side without a measurement makes it "not compared", except a lower bound
/// (`AtLeast`) that alone exceeds the budget.
fn compare_figure(kind: FigureKind, baseline: Figure, current: Figure) -> Delta {
    let judged = |current: Option<f64>| {
        judge(
            kind.metric.clone(),
            kind.unit,
            baseline.value(),
            current,
            kind.better,
            kind.budget,
        )
    };
    if let Figure::AtLeast(at_least, _) = current {
        let mut bound = judged(Some(at_least));
        if bound.regressed && kind.better == Better::Lower {
            // The current value shown is a lower bound: say so in the name.
            bound.metric = format!("{} (not recovered)", kind.metric);
            return bound;
        }
    }
    let mut delta = judged(current.value());
    delta.not_compared = why_not_compared(baseline.why_not(), current.why_not());
    delta
}

/// Why a row is not compared, from why each side has nothing to compare (`None`: that side is fine).
fn why_not_compared(baseline: Option<&str>, current: Option<&str>) -> Option<String> {
    match (baseline, current) {
        (None, None) => None,
        (Some(b), None) => Some(format!("baseline: {b}")),
        (None, Some(c)) => Some(format!("current: {c}")),
        (Some(b), Some(c)) if b == c => Some(format!("both runs: {b}")),
        (Some(b), Some(c)) => Some(format!("baseline: {b}; current: {c}")),
    }
}

/// The `measurements` object of a run's behaviour report, or why there is none.
fn measurements(summary: &Value) -> Result<&Value, String> {
    report_of(summary)
        .and_then(|report| report.get("measurements"))
        .filter(|m| m.is_object())
        .ok_or_else(|| "no behaviour measurements in summary.json".to_owned())
}

/// Every behaviour figure of both runs; one "not compared" row when neither run has behaviour measurements.
pub(super) fn behaviour_deltas(
    baseline: &Value,
    current: &Value,
    budget: &RegressionBudget,
) -> Vec<Delta> {
    let (b, c) = (measurements(baseline), measurements(current));
    if let (Err(why), Err(_)) = (&b, &c) {
        let mut row = judge("behaviour".into(), "", None, None, Better::Higher, None);
        row.not_compared = Some(format!("both runs: {why}"));
        return vec![row];
    }
    let mut deltas = vec![
        compare_figure(
            FigureKind {
                metric: "key fairness".into(),
                unit: "",
                better: Better::Higher,
                budget: budget.fairness_drop.map(Budget::Absolute),
            },
            fairness(&b),
            fairness(&c),
        ),
        compare_figure(
            FigureKind {
                metric: "Retry-After violations".into(),
                unit: "",
                better: Better::Lower,
                budget: budget.retry_after_violations_increase.map(Budget::Absolute),
            },
            retry_after_violations(&b),
            retry_after_violations(&c),
        ),
    ];
    deltas.extend(masking_deltas(&b, &c, budget));
    deltas.extend(recovery_deltas(&b, &c, budget));
    let ttft_budget = budget
        .ttft_overhead_increase_percent
        .map(|percent| Budget::PercentAtLeast {
            percent,
            at_least: millis(budget.ttft_overhead_increase_at_least),
        });
    deltas.push(compare_figure(
        FigureKind {
            metric: "TTFT overhead".into(),
            unit: "ms",
            better: Better::Lower,
            budget: ttft_budget,
        },
        ttft_overhead(&b),
        ttft_overhead(&c),
    ));
    deltas
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

type Measurements<'a> = Result<&'a Value, String>;

/// Applies `read` to a run's measurements, passing on why there are none.
fn figure(m: &Measurements, read: impl FnOnce(&Value) -> Figure) -> Figure {
    match m {
        Ok(m) => read(m),
        Err(why) => Figure::missing(why.clone()),
    }
}

fn fairness(m: &Measurements) -> Figure {
    figure(m, |m| {
        match m.get("distribution").filter(|d| !d.is_null()) {
            None => Figure::missing("key distribution not measured"),
            Some(d) => d.get("fairness").and_then(Value::as_f64).map_or(
                Figure::missing("no requests on any eligible key"),
                Figure::Measured,
            ),
        }
    })
}

fn retry_after_violations(m: &Measurements) -> Figure {
    figure(m, |m| {
        m.pointer("/retry_after/violations")
            .and_then(Value::as_f64)
            .map_or(
                Figure::missing("Retry-After not measured (the upstream ledger was not read)"),
                Figure::Measured,
            )
    })
}

fn ttft_overhead(m: &Measurements) -> Figure {
    figure(m, |m| {
        let streams = m.get("streams").filter(|s| {
            s.get("streams")
                .and_then(Value::as_u64)
                .is_some_and(|n| n > 0)
        });
        streams
            .and_then(|s| s.get("ttft_overhead_ms")?.as_f64())
            .map_or(
                Figure::missing("no streamed responses measured"),
                Figure::Measured,
            )
    })
}

/// Labels of a per-window list (`masking` by `window`, `recovery` by `label`) in both runs, baseline order first.
fn labels(b: &Measurements, c: &Measurements, list: &str, key: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for m in [b, c].into_iter().flatten() {
        let items = m.get(list).and_then(Value::as_array).into_iter().flatten();
        for label in items.filter_map(|item| item.get(key)?.as_str()) {
            if !all.iter().any(|known| known == label) {
                all.push(label.to_owned());
            }
        }
    }
    all
}

fn window<'a>(m: &'a Value, list: &str, key: &str, label: &str) -> Option<&'a Value> {
    m.get(list)?
        .as_array()?
        .iter()
        .find(|item| item.get(key).and_then(Value::as_str) == Some(label))
}

/// One row per fault window in either run; one "not compared" row when neither run had a fault window.
fn masking_deltas(b: &Measurements, c: &Measurements, budget: &RegressionBudget) -> Vec<Delta> {
    let kind = |metric: String| FigureKind {
        metric,
        unit: "",
        better: Better::Higher,
        budget: budget.masking_drop.map(Budget::Absolute),
    };
    let windows = labels(b, c, "masking", "window");
    if windows.is_empty() {
        let none = |m: &Measurements| figure(m, |_| Figure::missing("no fault window"));
        return vec![compare_figure(
            kind("failover masking".into()),
            none(b),
            none(c),
        )];
    }
    let masking = |m: &Measurements, label: &str| {
        figure(m, |m| match window(m, "masking", "window", label) {
            None => Figure::missing("no such fault window"),
            Some(w) => w.get("masking").and_then(Value::as_f64).map_or(
                Figure::missing("no upstream failures (or no requests) in the window"),
                Figure::Measured,
            ),
        })
    };
    windows
        .iter()
        .map(|label| {
            compare_figure(
                kind(format!("failover masking · {label}")),
                masking(b, label),
                masking(c, label),
            )
        })
        .collect()
}

/// One row per fault window or load peak whose recovery either run measured.
fn recovery_deltas(b: &Measurements, c: &Measurements, budget: &RegressionBudget) -> Vec<Delta> {
    let kind = |label: &str| FigureKind {
        metric: format!("recovery · {label}"),
        unit: "ms",
        better: Better::Lower,
        budget: budget
            .recovery_increase_percent
            .map(|percent| Budget::PercentAtLeast {
                percent,
                at_least: millis(budget.recovery_increase_at_least),
            }),
    };
    let recovery = |m: &Measurements, label: &str| {
        figure(m, |m| match window(m, "recovery", "label", label) {
            None => Figure::missing("no such fault window or load peak"),
            Some(r) => recovery_figure(r.get("outcome").unwrap_or(&Value::Null)),
        })
    };
    labels(b, c, "recovery", "label")
        .iter()
        .map(|label| compare_figure(kind(label), recovery(b, label), recovery(c, label)))
        .collect()
}

/// A `proxy_behaviour::RecoveryOutcome` as a figure.
fn recovery_figure(outcome: &Value) -> Figure {
    let ms = |field: &str| outcome.get(field).and_then(Value::as_f64);
    match outcome.get("outcome").and_then(Value::as_str) {
        Some("recovered") => ms("after_ms").map_or(
            Figure::missing("recovered, but no time recorded"),
            Figure::Measured,
        ),
        Some("not_recovered") => {
            let observed = ms("observed_ms").unwrap_or(0.0);
            Figure::AtLeast(
                observed,
                format!(
                    "not back to baseline within the {:.1} s observed after the fault",
                    observed / 1000.0
                ),
            )
        }
        Some("no_baseline") => {
            Figure::missing("no measured interval before the fault to set a baseline")
        }
        Some("inconclusive") => Figure::missing(format!(
            "inconclusive: {}",
            outcome
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        )),
        _ => Figure::missing("recovery outcome not recognised"),
    }
}

/// The stream pass-through state of both runs (measured whether or not the scenario judges it).
pub(super) fn stream_change(
    baseline: &Value,
    current: &Value,
    budget: &RegressionBudget,
) -> Option<CheckChange> {
    let state = |summary: &Value| {
        let m = measurements(summary).ok()?;
        m.get("streams")?.get("verdict")?.as_str().map(String::from)
    };
    let (b, c) = (state(baseline), state(current));
    if b.is_none() && c.is_none() {
        return None;
    }
    let unjudged = |s: &Option<String>| match s.as_deref() {
        None => Some("no streamed responses measured"),
        Some("inconclusive") => Some("streams too short to tell buffering from pass-through"),
        _ => None,
    };
    let not_compared = why_not_compared(unjudged(&b), unjudged(&c));
    let forbidden = budget.streams_must_not_become_buffered;
    Some(CheckChange {
        check: "streams (pass_through or buffered)".into(),
        regressed: forbidden
            && b.as_deref() == Some("pass_through")
            && c.as_deref() == Some("buffered"),
        baseline: b,
        current: c,
        rule: if forbidden { "not buffered" } else { "-" },
        not_compared,
    })
}

/// Every behaviour check judged in either run, matched by check and subject.
pub(super) fn check_changes(
    baseline: &Value,
    current: &Value,
    budget: &RegressionBudget,
) -> Vec<CheckChange> {
    let (b, c) = match (verdicts(baseline), verdicts(current)) {
        (Ok(b), Ok(c)) => (b, c),
        (b, c) => {
            let problem =
                |side: &str, r: Result<_, String>| r.err().map(|e| format!("{side}: {e}"));
            let why = [problem("baseline", b), problem("current", c)];
            return vec![CheckChange {
                check: "behaviour checks".into(),
                baseline: None,
                current: None,
                regressed: false,
                rule: "-",
                not_compared: Some(why.into_iter().flatten().collect::<Vec<_>>().join("; ")),
            }];
        }
    };
    let name = |v: &BehaviourVerdict| match &v.subject {
        Some(subject) => format!("{} [{subject}]", v.check),
        None => v.check.clone(),
    };
    let mut names: Vec<String> = b.iter().map(name).collect();
    for n in c.iter().map(name) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let find = |list: &[BehaviourVerdict], n: &str| list.iter().find(|v| name(v) == n).cloned();
    names
        .iter()
        .map(|n| check_change(n, find(&b, n), find(&c, n), budget))
        .collect()
}

fn check_change(
    name: &str,
    baseline: Option<BehaviourVerdict>,
    current: Option<BehaviourVerdict>,
    budget: &RegressionBudget,
) -> CheckChange {
    let outcome = |v: &Option<BehaviourVerdict>| v.as_ref().map(|v| v.outcome.clone());
    let unjudged = |v: &Option<BehaviourVerdict>| match v {
        None => Some("not judged".to_owned()),
        Some(v) if v.outcome == "skipped" || v.outcome == "inconclusive" => {
            Some(format!("{}: {}", v.outcome, v.detail))
        }
        Some(_) => None,
    };
    let forbidden = budget.behaviour_checks_must_not_fail;
    CheckChange {
        check: format!("check {name}"),
        baseline: outcome(&baseline),
        current: outcome(&current),
        regressed: forbidden
            && outcome(&baseline).as_deref() == Some("pass")
            && outcome(&current).as_deref() == Some("fail"),
        rule: if forbidden { "pass stays pass" } else { "-" },
        not_compared: why_not_compared(
            unjudged(&baseline).as_deref(),
            unjudged(&current).as_deref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A summary whose behaviour report has `measurements` and `verdicts`.
    fn run(measurements: Value, verdicts: Value) -> Value {
        json!({"aggregate": {}, "engine": {"behaviour": {"measurements": measurements, "verdicts": verdicts}}})
    }

    fn measured(
        fairness: f64,
        violations: u64,
        masking: Option<f64>,
        recovery: Value,
        ttft: f64,
    ) -> Value {
        json!({
            "distribution": {"fairness": fairness, "keys": [], "total_requests": 900},
            "retry_after": {"violations": violations, "races": 0, "rate_limited": 40, "per_key": {}},
            "masking": [{"window": "key2 rate-limited", "masking": masking}],
            "recovery": [{"label": "key2 rate-limited", "outcome": recovery}],
            "streams": {"streams": 200, "ttft_overhead_ms": ttft, "verdict": "pass_through", "ttft_position": 0.03},
        })
    }

    fn recovered(ms: f64) -> Value {
        json!({"outcome": "recovered", "after_ms": ms})
    }

    fn row<'a>(deltas: &'a [Delta], metric: &str) -> &'a Delta {
        deltas
            .iter()
            .find(|d| d.metric == metric)
            .unwrap_or_else(|| panic!("no row {metric} in {deltas:#?}"))
    }

    /// (metric, regressed, not-compared reason contains) of each behaviour row.
    fn judged(baseline: &Value, current: &Value) -> Vec<(String, bool, Option<String>)> {
        behaviour_deltas(baseline, current, &RegressionBudget::default())
            .into_iter()
            .map(|d| (d.metric, d.regressed, d.not_compared))
            .collect()
    }

    #[test]
    fn budgets_table() {
        let base = || measured(0.86, 0, Some(0.97), recovered(2000.0), 3.1);
        #[rustfmt::skip]
        let cases: Vec<(&str, Value, &[&str])> = vec![
            ("a rerun", measured(0.85, 2, Some(0.95), recovered(3000.0), 4.3), &[]),
            ("fairness collapses", measured(0.33, 0, Some(0.97), recovered(2000.0), 3.1), &["key fairness"]),
            ("Retry-After ignored", measured(0.86, 120, Some(0.97), recovered(2000.0), 3.1), &["Retry-After violations"]),
            ("failures reach the client", measured(0.86, 0, Some(0.2), recovered(2000.0), 3.1), &["failover masking · key2 rate-limited"]),
            ("slow recovery", measured(0.86, 0, Some(0.97), recovered(3500.0), 3.1), &["recovery · key2 rate-limited"]),
            ("no recovery seen for long", measured(0.86, 0, Some(0.97), json!({"outcome": "not_recovered", "observed_ms": 9000.0, "confirmable_ms": 8000.0}), 3.1), &["recovery · key2 rate-limited (not recovered)"]),
            ("TTFT added", measured(0.86, 0, Some(0.97), recovered(2000.0), 60.0), &["TTFT overhead"]),
            ("everything better", measured(1.0, 0, Some(1.0), recovered(1000.0), 1.0), &[]),
        ];
        for (what, current, expected) in cases {
            let regressed: Vec<String> = judged(&run(base(), json!([])), &run(current, json!([])))
                .into_iter()
                .filter(|(_, regressed, _)| *regressed)
                .map(|(metric, ..)| metric)
                .collect();
            assert_eq!(regressed, expected, "{what}");
        }
    }

    #[test]
    fn absent_or_unjudged_figures_are_not_compared_with_the_reason() {
        let full = run(
            measured(0.86, 0, Some(0.97), recovered(2000.0), 3.1),
            json!([]),
        );
        let old_harness = json!({"aggregate": {}});
        let unjudged = run(
            json!({
                "distribution": {"fairness": null, "keys": []},
                "masking": [{"window": "key2 rate-limited", "masking": null}],
                "recovery": [{"label": "key2 rate-limited", "outcome": {"outcome": "not_recovered", "observed_ms": 500.0, "confirmable_ms": 0.0}}],
                "streams": {"streams": 0, "ttft_overhead_ms": 0.0, "verdict": "inconclusive"},
            }),
            json!([]),
        );
        let no_windows = run(json!({"masking": []}), json!([]));
        #[rustfmt::skip]
        let cases: Vec<(&str, &Value, &Value, &str, &str)> = vec![
            ("old baseline", &old_harness, &full, "key fairness", "baseline: no behaviour measurements"),
            ("old baseline", &old_harness, &full, "failover masking · key2 rate-limited", "baseline: no behaviour measurements"),
            ("no requests", &full, &unjudged, "key fairness", "current: no requests on any eligible key"),
            ("no ledger", &full, &unjudged, "Retry-After violations", "current: Retry-After not measured"),
            ("nothing to mask", &full, &unjudged, "failover masking · key2 rate-limited", "current: no upstream failures"),
            ("run ended early", &full, &unjudged, "recovery · key2 rate-limited", "current: not back to baseline within the 0.5 s observed"),
            ("no streams", &full, &unjudged, "TTFT overhead", "current: no streamed responses measured"),
            ("no windows", &old_harness, &no_windows, "failover masking", "baseline: no behaviour measurements in summary.json; current: no fault window"),
            ("neither", &old_harness, &old_harness, "behaviour", "both runs: no behaviour measurements"),
        ];
        for (what, baseline, current, metric, why) in cases {
            let deltas = behaviour_deltas(baseline, current, &RegressionBudget::default());
            let d = row(&deltas, metric);
            assert!(!d.regressed, "{what}: {d:?}");
            assert_eq!(d.result_text(), "not compared", "{what}");
            let reason = d.not_compared.clone().unwrap_or_default();
            assert!(reason.contains(why), "{what}: {reason}");
        }
    }

    #[test]
    fn turned_off_budgets_show_figures_without_judging_them() {
        let budget = RegressionBudget {
            fairness_drop: None,
            ..RegressionBudget::default()
        };
        let b = run(
            measured(0.86, 0, Some(0.97), recovered(2000.0), 3.1),
            json!([]),
        );
        let c = run(
            measured(0.33, 0, Some(0.97), recovered(2000.0), 3.1),
            json!([]),
        );
        let deltas = behaviour_deltas(&b, &c, &budget);
        let fairness = row(&deltas, "key fairness");
        assert_eq!(
            (fairness.regressed, fairness.result_text(), fairness.current),
            (false, "-", Some(0.33))
        );
    }

    fn verdict(check: &str, subject: Option<&str>, outcome: &str) -> Value {
        json!({"check": check, "subject": subject, "measured": 1.0, "limit": 0.9, "unit": "ratio", "outcome": outcome, "detail": "why"})
    }

    #[test]
    fn checks_pass_to_fail_regress_and_one_sided_ones_are_not_compared() {
        let b = run(
            json!({}),
            json!([
                verdict("fairness", None, "pass"),
                verdict("retry_after", None, "pass"),
                verdict("failover_masking", Some("w"), "skipped"),
                verdict("key_report", None, "fail")
            ]),
        );
        let c = run(
            json!({}),
            json!([
                verdict("fairness", None, "fail"),
                verdict("retry_after", None, "pass"),
                verdict("failover_masking", Some("w"), "fail"),
                verdict("recovery", Some("peak"), "pass")
            ]),
        );
        let changes = check_changes(&b, &c, &RegressionBudget::default());
        let got: Vec<(&str, bool, Option<&str>)> = changes
            .iter()
            .map(|c| (c.check.as_str(), c.regressed, c.not_compared.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("check fairness", true, None),
                ("check retry_after", false, None),
                (
                    "check failover_masking [w]",
                    false,
                    Some("baseline: skipped: why")
                ),
                ("check key_report", false, Some("current: not judged")),
                ("check recovery [peak]", false, Some("baseline: not judged")),
            ]
        );
        let off = RegressionBudget {
            behaviour_checks_must_not_fail: false,
            ..RegressionBudget::default()
        };
        assert!(check_changes(&b, &c, &off).iter().all(|c| !c.regressed));
    }

    #[test]
    fn streams_that_become_buffered_regress() {
        let streams = |verdict: &str| {
            run(
                json!({"streams": {"streams": 10, "ttft_overhead_ms": 1.0, "verdict": verdict}}),
                json!([]),
            )
        };
        let budget = RegressionBudget::default();
        for (b, c, regressed, not_compared) in [
            ("pass_through", "buffered", true, false),
            ("buffered", "pass_through", false, false),
            ("pass_through", "pass_through", false, false),
            ("inconclusive", "buffered", false, true),
        ] {
            let change = stream_change(&streams(b), &streams(c), &budget).unwrap();
            assert_eq!(
                (change.regressed, change.not_compared.is_some()),
                (regressed, not_compared),
                "{b} -> {c}"
            );
        }
        assert!(stream_change(&json!({}), &json!({}), &budget).is_none());
    }
}
