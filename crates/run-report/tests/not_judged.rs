//! A resource verdict that did not count toward the exit code (`[monitor] judge_leaks = false`): the HTML
//! report and the JUnit file say "reported, not judged (judge_leaks = false)" and show it neutral, never as a
//! failure; the same leak report judged (`judge_leaks = true`) is still a red LEAK and a `<failure>`.
//!
//! The leak report is sut-monitor's real analysis of a synthetic series leaking 256 KiB a minute (a LEAK);
//! the rest of the results directory is the shared fixture. A real run against a leaking proxy is checked end
//! to end in the `tests` package (`leak_not_judged`).

mod support;

use std::fs::File;

use load_stats::summary::Summary;
use run_report::leak_judging::NOT_JUDGED;
use run_report::{render_html, ReportInput};
use sut_monitor::leak::synthetic::{
    build, noisy_memory, rng, steady_counts, warmed, Noise, Run, KIB, MIB,
};
use sut_monitor::leak::{analyze, LeakConfig, Verdict};

/// sut-monitor's report of ten minutes leaking 256 KiB a minute.
fn leaking_report() -> serde_json::Value {
    let run = Run::TEN_MINUTES;
    let mut r = rng(3);
    let level = |t: f64| warmed(80.0 * MIB)(t) + 256.0 * KIB * t / 60.0;
    let rss = noisy_memory(level, Noise::REALISTIC, run.len(), &mut r);
    let report = analyze(
        &build(run, &rss, steady_counts(3), &mut r),
        &LeakConfig::default(),
    );
    assert_eq!(report.verdict, Verdict::Leak, "{:?}", report.reasons);
    serde_json::to_value(&report).unwrap()
}

/// The fixture's results directory with the leaking report, judged or not, and the overall verdict that
/// judging gives: PASS (exit 0) when the leak did not count, FAIL (exit 1) when it did.
fn leaking_run(dir: &std::path::Path, judge_leaks: bool) -> Summary {
    let mut summary = support::write_results_dir(dir);
    summary.thresholds.clear();
    summary.thresholds_passed = true;
    summary.engine = serde_json::Value::Null;
    summary.leak_report = leaking_report();
    summary.config["monitor"] = serde_json::json!({ "judge_leaks": judge_leaks });
    (summary.verdict, summary.exit_code, summary.verdict_reasons) = if judge_leaks {
        ("FAIL".into(), 1, vec!["resources: LEAK: rss rising".into()])
    } else {
        ("PASS".into(), 0, Vec::new())
    };
    summary
        .write_json(File::create(dir.join("summary.json")).unwrap())
        .unwrap();
    summary
}

/// `(name, message)` of the `harness.resources` cases' outcome elements, with the element name.
fn resource_outcomes(xml: &str) -> Vec<(String, String)> {
    xml.split("<testcase ")
        .filter(|case| case.contains("classname=\"harness.resources\""))
        .map(|case| {
            let body = case
                .split_once('>')
                .map_or("", |(_, rest)| rest)
                .trim_start();
            let element = body
                .trim_start_matches('<')
                .split([' ', '>'])
                .next()
                .unwrap_or_default()
                .to_owned();
            let message = body
                .split_once("message=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or(String::new(), |(m, _)| m.to_owned());
            (element, message)
        })
        .collect()
}

#[test]
fn a_leak_that_did_not_count_is_skipped_in_junit_and_neutral_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let summary = leaking_run(dir.path(), false);

    let xml = run_report::junit::render(&summary);
    assert!(!xml.contains("<failure"), "no failure at all:\n{xml}");
    let resources = resource_outcomes(&xml);
    assert!(!resources.is_empty(), "{xml}");
    for (element, message) in &resources {
        assert_eq!(element, "skipped", "{message}");
        assert!(message.contains(NOT_JUDGED), "{message}");
    }
    assert!(
        resources
            .iter()
            .any(|(_, m)| m.starts_with(&format!("LEAK — {NOT_JUDGED}"))),
        "{resources:?}"
    );

    let html = render_html(&ReportInput::load(dir.path()).unwrap());
    assert!(html.contains("<header class=\"banner pass\""));
    assert!(
        html.contains(&format!(
            "<p class=\"not-judged\">Proxy resources: LEAK — {NOT_JUDGED}</p>"
        )),
        "banner says the leak did not count"
    );
    assert!(html.contains(&format!(
        "<span class=\"badge neutral\">LEAK</span> <span class=\"caption not-judged\">{NOT_JUDGED}</span>"
    )));
    assert!(
        !html.contains("badge fail") && !html.contains("<tr class=\"failed\">"),
        "nothing styled as a failure"
    );
}

#[test]
fn a_judged_leak_is_still_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let summary = leaking_run(dir.path(), true);

    let xml = run_report::junit::render(&summary);
    assert!(!xml.contains(NOT_JUDGED));
    let resources = resource_outcomes(&xml);
    assert!(
        resources
            .iter()
            .any(|(element, m)| element == "failure" && m.starts_with("LEAK: ")),
        "{resources:?}"
    );

    let html = render_html(&ReportInput::load(dir.path()).unwrap());
    assert!(html.contains("<header class=\"banner fail\""));
    assert!(html.contains("<span class=\"badge fail\">LEAK</span>"));
    assert!(!html.contains(NOT_JUDGED) && !html.contains("class=\"not-judged\""));
}
