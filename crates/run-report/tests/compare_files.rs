//! `compare_files` on real `summary.json` files written by load-stats (via the shared fixture), and on bad files.

mod support;

use run_report::compare::{compare_files, Direction, RegressionBudget};

#[test]
fn a_real_summary_compared_with_itself_does_not_regress_and_with_a_slower_copy_does() {
    let dir = tempfile::tempdir().unwrap();
    let summary = support::write_results_dir(dir.path());
    let path = dir.path().join("summary.json");
    let same = compare_files(&path, &path, &RegressionBudget::default()).unwrap();
    assert!(!same.regressed(), "{}", same.to_table());
    assert!(same
        .deltas
        .iter()
        .filter(|d| d.baseline.is_some())
        .all(|d| d.direction == Direction::Same));
    assert!(
        same.deltas
            .iter()
            .any(|d| d.metric == "RSS slope (steady)" && d.current.is_some()),
        "leak report read"
    );

    let mut slower = summary.clone();
    slower.aggregate.requests_per_sec *= 0.5;
    let slower_path = dir.path().join("slower.json");
    slower
        .write_json(std::fs::File::create(&slower_path).unwrap())
        .unwrap();
    let worse = compare_files(&path, &slower_path, &RegressionBudget::default()).unwrap();
    assert!(worse.regressed());
    assert!(worse.to_markdown().contains("| throughput |"));
}

#[test]
fn unreadable_or_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let not_json = dir.path().join("bad.json");
    let foreign = dir.path().join("other.json");
    std::fs::write(&not_json, "{ not json").unwrap();
    std::fs::write(&foreign, r#"{"name": "package.json"}"#).unwrap();
    for (path, expected) in [
        (&missing, "cannot read"),
        (&not_json, "not JSON: "),
        (&foreign, "not a summary.json"),
    ] {
        let err = compare_files(path, path, &RegressionBudget::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&path.display().to_string()) && err.contains(expected),
            "{err}"
        );
    }
}
