//! `ReportInput::load`: absent optional files become notes in the report; broken files are errors that name
//! the file and the problem.

mod support;

use std::fs;

use run_report::{render_html, ReportInput};

#[test]
fn summary_alone_renders_with_notes_instead_of_failing() {
    let full = tempfile::tempdir().unwrap();
    support::write_results_dir(full.path());
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        full.path().join("summary.json"),
        dir.path().join("summary.json"),
    )
    .unwrap();
    let input = ReportInput::load(&dir.path().join("summary.json")).unwrap();
    assert_eq!(
        (
            input.history.len(),
            input.resources.len(),
            input.timeline.len()
        ),
        (0, 0, 0)
    );
    let keys = input
        .keys
        .as_ref()
        .expect("key distribution from the summary's behaviour report");
    assert!(
        keys.keys.iter().all(|k| k.rate_limited == 0),
        "no ledger.json: no per-key 429 counters"
    );
    let notes = input.notes.join("\n");
    for absent in [
        "_stats_history.csv",
        "resources.csv is absent",
        "timeline.csv is absent",
    ] {
        assert!(notes.contains(absent), "{notes}");
    }
    let html = render_html(&input);
    assert!(html.contains("No interval history") && html.contains("resources.csv is absent"));
    assert!(html.contains("<p class=\"verdict\">FAIL</p>"));
    for external in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
    ] {
        assert!(
            !html.contains(external),
            "self-contained: found `{external}`"
        );
    }
}

#[test]
fn write_report_writes_next_to_the_summary_or_where_told() {
    let dir = tempfile::tempdir().unwrap();
    support::write_results_dir(dir.path());
    let written = run_report::write_report(&dir.path().join("summary.json"), None).unwrap();
    assert_eq!(written, dir.path().join("report.html"));
    assert!(fs::read_to_string(&written)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    let elsewhere = dir.path().join("nested/missing/report.html");
    let err = run_report::write_report(dir.path(), Some(&elsewhere))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot write"), "{err}");
}

#[test]
fn the_full_fixture_loads_every_file() {
    let dir = tempfile::tempdir().unwrap();
    support::write_results_dir(dir.path());
    let input = ReportInput::load(dir.path()).unwrap();
    assert_eq!(input.history.len(), support::RUN_SECS as usize);
    assert_eq!(input.resources.len(), support::RUN_SECS as usize + 11);
    assert_eq!(input.timeline.len(), 1);
    assert_eq!(input.keys.as_ref().map(|k| k.keys.len()), Some(3));
    assert!(input.notes.is_empty(), "{:?}", input.notes);
    let first = input.history[0].timestamp as f64 - input.started_unix;
    assert!(
        (first - 1.0).abs() < 1.0,
        "history aligned to the run start: {first}"
    );
}

#[test]
fn broken_or_missing_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = ReportInput::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("summary.json: cannot read"), "{err}");

    support::write_results_dir(dir.path());
    let cases = [
        (
            "timeline.csv",
            "start_s,end_s,label\n5,1,backwards\n",
            "timeline.csv: line 2: end_s must be",
        ),
        ("resources.csv", "unix_ms,t_secs\nsoon,1\n", "resources.csv"),
        (
            "results_stats_history.csv",
            "Timestamp,Name\n",
            "missing column `User Count`",
        ),
        ("ledger.json", "[]", "ledger.json"),
        (
            "summary.json",
            "{\"schema_version\": 1}",
            "summary.json: not a valid summary.json",
        ),
    ];
    for (file, content, expected) in cases {
        let path = dir.path().join(file);
        let original = fs::read(&path).unwrap();
        fs::write(&path, content).unwrap();
        let err = ReportInput::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(expected), "{file}: {err}");
        fs::write(&path, original).unwrap();
    }
}
