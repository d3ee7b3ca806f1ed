//! `compare_paths` on suite directories built from real `summary.json` files (the shared fixture, with a
//! behaviour report added), on a suite against a single run, and on broken suite indexes.

mod support;

use std::path::Path;

use run_report::compare::{compare_paths, CompareOutcome, RegressionBudget};
use serde_json::{json, Value};

/// Writes `dir/<scenario>/summary.json` (the fixture summary with key fairness `fairness`, `None` for no
/// summary at all) for each run, and `dir/suite.json` listing them.
fn write_suite(dir: &Path, runs: &[(&str, Option<f64>)]) {
    let mut index = Vec::new();
    for (scenario, fairness) in runs {
        let run_dir = dir.join(scenario);
        std::fs::create_dir_all(&run_dir).unwrap();
        let verdict = match fairness {
            Some(fairness) => {
                support::write_results_dir(&run_dir);
                add_fairness(&run_dir.join("summary.json"), *fairness);
                if *fairness >= 0.8 {
                    "PASS"
                } else {
                    "FAIL"
                }
            }
            None => "INVALID",
        };
        index.push(json!({"scenario": scenario, "file": format!("scenarios/{scenario}.toml"),
                          "dir": scenario, "verdict": verdict, "exit_code": 0, "duration_secs": 8.0}));
    }
    let suite = json!({"kind": "suite", "started": "2026-12-05T17:00:00Z", "profile": null,
                       "verdict": "PASS", "exit_code": 0, "runs": index});
    std::fs::write(dir.join("suite.json"), suite.to_string()).unwrap();
}

fn add_fairness(path: &Path, fairness: f64) {
    let mut summary: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let outcome = if fairness >= 0.8 { "pass" } else { "fail" };
    summary["verdict"] = json!(if fairness >= 0.8 { "PASS" } else { "FAIL" });
    summary["engine"]["behaviour"] = json!({
        "measurements": {"distribution": {"fairness": fairness, "keys": [], "total_requests": 900}},
        "verdicts": [{"check": "fairness", "measured": fairness, "limit": 0.8, "unit": "ratio",
                      "outcome": outcome, "detail": "Jain's fairness index"}]
    });
    std::fs::write(path, summary.to_string()).unwrap();
}

fn suite(outcome: CompareOutcome) -> run_report::SuiteComparison {
    match outcome {
        CompareOutcome::Suite(s) => s,
        CompareOutcome::Run(_) => panic!("compared as runs"),
    }
}

#[test]
fn suites_compare_run_by_run_matched_by_scenario() {
    let (baseline, current) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_suite(
        baseline.path(),
        &[
            ("key_rate_limited", Some(0.86)),
            ("normal_load", Some(0.99)),
            ("retired", Some(0.99)),
            ("upstream_down", Some(0.95)),
        ],
    );
    // Reordered, one scenario gone, one new, one without a summary.
    write_suite(
        current.path(),
        &[
            ("normal_load", Some(0.98)),
            ("key_rate_limited", Some(0.33)),
            ("brand_new", Some(0.99)),
            ("upstream_down", None),
        ],
    );
    let compared = suite(
        compare_paths(
            baseline.path(),
            current.path(),
            &RegressionBudget::default(),
        )
        .unwrap(),
    );
    assert!(compared.regressed());
    let scenarios: Vec<(&str, bool)> = compared
        .scenarios
        .iter()
        .map(|s| (s.scenario.as_str(), s.comparison.regressed()))
        .collect();
    assert_eq!(
        scenarios,
        [
            ("key_rate_limited", true),
            ("normal_load", false),
            ("upstream_down", true)
        ]
    );
    assert_eq!(
        (
            &compared.only_in_baseline[..],
            &compared.only_in_current[..]
        ),
        (&["retired".to_owned()][..], &["brand_new".to_owned()][..])
    );
    let missing = &compared.scenarios[2];
    assert!(
        missing.notes[0].starts_with("current: no ")
            && missing.notes[0].contains("verdict INVALID, exit code 0"),
        "{:?}",
        missing.notes
    );

    let table = compared.to_table();
    for expected in [
        "== key_rate_limited (",
        "key_rate_limited: REGRESSION: key fairness, check fairness; verdict PASS → FAIL.",
        "normal_load: No regression beyond the budget.",
        "retired: only in baseline, not compared.",
        "brand_new: only in current, not compared.",
        "REGRESSION in 2 of 3 scenarios: key_rate_limited (key fairness, check fairness, verdict PASS → FAIL); \
         upstream_down (verdict PASS → INVALID).",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
    let markdown = compared.to_markdown();
    for expected in [
        "### Load test suite: comparison with baseline",
        "#### key_rate_limited",
        "| key fairness | 0.860 | 0.330 | -0.530 | worse | -0.100 | ❌ **REGRESSED** |",
        "- retired: only in baseline, not compared.",
    ] {
        assert!(
            markdown.contains(expected),
            "missing {expected:?} in\n{markdown}"
        );
    }
}

#[test]
fn a_suite_and_its_own_copy_do_not_regress() {
    let (baseline, current) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let runs = [
        ("key_rate_limited", Some(0.86)),
        ("normal_load", Some(0.99)),
    ];
    write_suite(baseline.path(), &runs);
    write_suite(current.path(), &runs);
    let compared = suite(
        compare_paths(
            baseline.path(),
            current.path(),
            &RegressionBudget::default(),
        )
        .unwrap(),
    );
    assert!(!compared.regressed(), "{}", compared.to_table());
    assert!(compared
        .to_table()
        .ends_with("No regression beyond the budget in the 2 scenarios compared.\n"));
}

#[test]
fn a_suite_against_a_single_run_or_a_broken_index_is_a_clear_error() {
    let suite_dir = tempfile::tempdir().unwrap();
    write_suite(suite_dir.path(), &[("normal_load", Some(0.99))]);
    let run_dir = suite_dir.path().join("normal_load");
    let summary = run_dir.join("summary.json");
    for (baseline, current) in [
        (suite_dir.path(), run_dir.as_path()),
        (summary.as_path(), suite_dir.path()),
    ] {
        let err = compare_paths(baseline, current, &RegressionBudget::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a single run, but")
                && err.contains("is a suite directory (suite.json)")
                && err.contains("compare two suite directories, or two runs"),
            "{err}"
        );
    }
    // A results directory and its summary.json are the same single run.
    let same = compare_paths(&run_dir, &summary, &RegressionBudget::default()).unwrap();
    assert!(matches!(same, CompareOutcome::Run(ref c) if !c.regressed()));

    let broken = tempfile::tempdir().unwrap();
    for (index, expected) in [
        (
            r#"{"kind": "run", "runs": []}"#,
            "`kind` is \"run\", expected \"suite\"",
        ),
        (
            r#"{"kind": "suite"}"#,
            "not a suite index: missing field `runs`",
        ),
        (
            r#"{"runs": [{"scenario": "a", "dir": "a"}, {"scenario": "a", "dir": "b"}]}"#,
            "scenario \"a\" is listed twice",
        ),
    ] {
        std::fs::write(broken.path().join("suite.json"), index).unwrap();
        let err = compare_paths(
            broken.path(),
            suite_dir.path(),
            &RegressionBudget::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(&broken.path().join("suite.json").display().to_string())
                && err.contains(expected),
            "{err}"
        );
    }
}
