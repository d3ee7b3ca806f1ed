//! `check_path` on real Locust output (`tests/fixtures/locust/`) and on our own summary.json.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use load_stats::check::{check_path, CheckError, InputFormat};
use load_stats::summary::Summary;
use load_stats::thresholds::{Limits, Metric, Thresholds};
use load_stats::{Outcome, OutcomeResult, Recorder, RunStats};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/locust")
        .join(name)
}

fn verdicts(path: &Path, thresholds: &Thresholds) -> Vec<(Metric, bool)> {
    let report = check_path(path, thresholds).unwrap();
    report
        .results
        .iter()
        .map(|r| (r.metric, r.passed))
        .collect()
}

fn lenient() -> Thresholds {
    // The fixture ran 65 req/s with ~45 ms latencies; 4.4 % of requests failed other than with 429.
    Thresholds::from_overall(&Limits {
        min_rps: Some(50.0),
        p50: Some(Duration::from_millis(50)),
        p95: Some(Duration::from_millis(100)),
        p99: Some(Duration::from_millis(200)),
        max_error_percent: None,
        max_error_percent_excluding_429: Some(5.0),
    })
}

#[test]
fn real_locust_csv_with_users_defaults() {
    let report = check_path(&fixture("results_stats.csv"), &Thresholds::users_targets()).unwrap();
    assert_eq!(report.format, InputFormat::LocustStatsCsv);
    assert_eq!(report.failures_csv, Some(fixture("results_failures.csv")));
    // 590 requests, 355 failures; 31 HTTPError 429 + 298 LocustBadStatusCode(code=429).
    assert_eq!(
        (
            report.overall.requests,
            report.overall.failures,
            report.overall.failures_429
        ),
        (590, 355, 329)
    );
    let got: Vec<_> = report
        .results
        .iter()
        .map(|r| (r.metric, r.passed))
        .collect();
    assert_eq!(
        got,
        [
            (Metric::MinRps, false),
            (Metric::P50, true),
            (Metric::P95, true),
            (Metric::P99, true),
            (Metric::ErrorPercentExcluding429, false),
        ]
    );
    let table = report.to_string();
    assert!(table.contains("FAILED: 2 of 5"), "{table}");
}

#[test]
fn taking_429s_out_is_what_makes_the_error_limit_pass() {
    assert!(verdicts(&fixture("results_stats.csv"), &lenient())
        .iter()
        .all(|(_, passed)| *passed));
    // The same file without its sibling _failures.csv: 429s cannot be identified, 60 % errors fail.
    let dir = tempfile::tempdir().unwrap();
    let lonely = dir.path().join("results_stats.csv");
    std::fs::copy(fixture("results_stats.csv"), &lonely).unwrap();
    let report = check_path(&lonely, &lenient()).unwrap();
    assert!(report.notes[0].contains("429"), "{:?}", report.notes);
    let error_result = report
        .results
        .iter()
        .find(|r| r.metric == Metric::ErrorPercentExcluding429)
        .unwrap();
    assert!(
        !error_result.passed && error_result.measured.unwrap() > 60.0,
        "{error_result}"
    );
}

#[test]
fn per_request_limits_read_locust_rows() {
    let mut thresholds = Thresholds::default();
    thresholds.requests.insert(
        "/limited rapid".into(),
        Limits {
            max_error_percent: Some(0.0),
            ..Limits::default()
        },
    );
    thresholds.requests.insert(
        "/missing".into(),
        Limits {
            max_error_percent: Some(0.0),
            ..Limits::default()
        },
    );
    let report = check_path(&fixture("results_stats.csv"), &thresholds).unwrap();
    let got: Vec<_> = report
        .results
        .iter()
        .map(|r| (r.scope.as_str(), r.passed))
        .collect();
    assert_eq!(got, [("/limited rapid", true), ("/missing", false)]);
}

#[test]
fn empty_locust_run_is_a_clear_failure() {
    let report = check_path(
        &fixture("empty/results_stats.csv"),
        &Thresholds::users_targets(),
    )
    .unwrap();
    assert_eq!(report.results.len(), 1);
    assert_eq!(
        (report.results[0].metric, report.results[0].passed),
        (Metric::Requests, false)
    );
    assert!(
        report.to_string().contains("no requests were made"),
        "{report}"
    );
}

#[test]
fn summary_json_is_checked_like_the_csv() {
    let t0 = SystemTime::UNIX_EPOCH;
    let mut run = RunStats::new(t0);
    let mut recorder = Recorder::new();
    for i in 0..100u64 {
        let status = if i % 10 == 0 { 429 } else { 200 };
        recorder.record(&Outcome {
            name: "chat",
            method: "POST",
            result: OutcomeResult::Status(status),
            success: status == 200,
            latency: Duration::from_millis(10 + i),
            bytes: 1,
            stream: None,
        });
    }
    run.merge(&recorder.take());
    run.close_interval(t0 + Duration::from_secs(1), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    Summary::from_run(&run, serde_json::Value::Null, Vec::new())
        .write_json(std::fs::File::create(&path).unwrap())
        .unwrap();
    let report = check_path(&path, &lenient()).unwrap();
    assert_eq!(report.format, InputFormat::SummaryJson);
    assert_eq!(
        (report.overall.requests, report.overall.failures_429),
        (100, 10)
    );
    let got: Vec<_> = report
        .results
        .iter()
        .map(|r| (r.metric, r.passed))
        .collect();
    // 100 req/s ok; p50 ~60 ms > 50; p95 ~105 > 100; p99 ~109 <= 200; 0 % errors without 429.
    assert_eq!(
        got,
        [
            (Metric::MinRps, true),
            (Metric::P50, false),
            (Metric::P95, false),
            (Metric::P99, true),
            (Metric::ErrorPercentExcluding429, true),
        ]
    );
}

#[test]
fn bad_inputs_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let header_only = write(
        "h_stats.csv",
        "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n",
    );
    let bad_number = write(
        "b_stats.csv",
        "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n,Aggregated,lots,0,1.0,1,2,3\n",
    );
    let not_summary = write("summary.json", "{\"hello\": 1}");
    let cases: [(PathBuf, &str); 5] = [
        (dir.path().join("missing_stats.csv"), "cannot read"),
        (
            fixture("results_stats_history.csv"),
            "missing column `Request Count`",
        ),
        (header_only, "no `Aggregated` row"),
        (bad_number, "line 2: column `Request Count` is \"lots\""),
        (not_summary, "is not a harness summary.json"),
    ];
    for (path, needle) in cases {
        let err: CheckError = check_path(&path, &Thresholds::users_targets()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(needle), "{message}");
        assert!(
            message.contains(path.file_name().unwrap().to_str().unwrap()),
            "{message}"
        );
    }
}

#[test]
fn our_own_csvs_check_like_our_summary() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut run = RunStats::new(t0);
    let mut recorder = Recorder::new();
    for i in 0..300u64 {
        let (result, success) = match i % 6 {
            0 => (OutcomeResult::Status(429), false),
            1 => (OutcomeResult::Status(503), false),
            2 => (
                OutcomeResult::Error(load_stats::ErrorClass::Timeout, "timed out after 429 ms"),
                false,
            ),
            _ => (OutcomeResult::Status(200), true),
        };
        recorder.record(&Outcome {
            name: if i % 2 == 0 { "chat" } else { "models" },
            method: "POST",
            result,
            success,
            latency: Duration::from_micros(800 + i * 97),
            bytes: 1,
            stream: None,
        });
    }
    run.merge(&recorder.take());
    run.close_interval(t0 + Duration::from_secs(3), 1);
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("ours_stats.csv");
    load_stats::locust::write_stats_csv(std::fs::File::create(&stats_path).unwrap(), &run).unwrap();
    let failures = std::fs::File::create(dir.path().join("ours_failures.csv")).unwrap();
    load_stats::locust::write_failures_csv(failures, &run.totals().errors).unwrap();
    let summary_path = dir.path().join("summary.json");
    Summary::from_run(&run, serde_json::Value::Null, Vec::new())
        .write_json(std::fs::File::create(&summary_path).unwrap())
        .unwrap();

    let from_csv = check_path(&stats_path, &lenient()).unwrap();
    let from_json = check_path(&summary_path, &lenient()).unwrap();
    let counts = |m: &load_stats::thresholds::Measured| (m.requests, m.failures, m.failures_429);
    assert_eq!(
        counts(&from_csv.overall),
        (300, 150, 50),
        "a timeout that mentions 429 ms is not a 429"
    );
    assert_eq!(counts(&from_csv.overall), counts(&from_json.overall));
    assert!((from_csv.overall.requests_per_sec - from_json.overall.requests_per_sec).abs() < 1e-9);
    let verdicts =
        |r: &load_stats::check::CheckReport| r.results.iter().map(|r| r.passed).collect::<Vec<_>>();
    assert_eq!(verdicts(&from_csv), verdicts(&from_json));
}

#[test]
fn directories_and_csv_prefixes_resolve_to_the_results_file() {
    use load_stats::check::resolve_input;
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("run_stats.csv");
    std::fs::copy(fixture("results_stats.csv"), &stats).unwrap();
    assert_eq!(
        resolve_input(&dir.path().join("run")),
        stats,
        "Locust --csv prefix"
    );
    assert_eq!(
        resolve_input(dir.path()),
        stats,
        "directory with one _stats.csv"
    );
    std::fs::write(dir.path().join("summary.json"), "{}").unwrap();
    assert_eq!(
        resolve_input(dir.path()),
        dir.path().join("summary.json"),
        "summary.json preferred"
    );
    let missing = dir.path().join("nothing_here.csv");
    assert_eq!(resolve_input(&missing), missing);
    let report = check_path(&fixture("results"), &Thresholds::users_targets()).unwrap();
    assert_eq!(report.path, fixture("results_stats.csv"));
}

#[test]
fn a_newer_summary_version_is_read_with_a_note() {
    let run = RunStats::new(SystemTime::UNIX_EPOCH);
    let mut summary =
        serde_json::to_value(Summary::from_run(&run, serde_json::Value::Null, Vec::new())).unwrap();
    summary["schema_version"] = 2.into();
    summary["a_field_from_the_future"] = true.into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.json");
    std::fs::write(&path, summary.to_string()).unwrap();
    let report = check_path(&path, &Thresholds::users_targets()).unwrap();
    assert!(
        report.notes.iter().any(|n| n.contains("schema version 2")),
        "{:?}",
        report.notes
    );
    assert!(!report.passed(), "an empty run fails");
}
