//! The report on a real run: the default system under test (in-process mock + the reference proxy as
//! its own process) with a fault window on one key; the run writes `report.html` and JUnit XML; headless
//! Chromium renders every chart with no console errors and keeps a screenshot as an artifact; `harness report`
//! re-renders it and `harness compare` judges a run against a baseline.

mod common;

use std::path::{Path, PathBuf};

use common::{describe, harness_bin, run_scenario, temp_dir};
use run_report::browser::{chart_shapes, console_errors, require_chromium, run_chromium};
// (The console check's own ability to fail is tested in run-report's browser test.)

/// 12 s of open-model load with one key answering 503 between seconds 4 and 7 of the mock's clock.
const SCENARIO: &str = r#"
name = "report_probe"
description = "short run with a fault window, for the report"
seed = 11

[load]
model = "open"
rate = 40
run_time = "12s"
timeout = "5s"

[[request]]
name = "chat"
weight = 3
method = "POST"
path = "/v1/chat/completions"
body = { model = "gpt-4", messages = [{ role = "user", content = "report probe" }], max_tokens = 16 }

[[request]]
name = "chat: streaming"
weight = 1
method = "POST"
path = "/v1/chat/completions"
stream = true
body = { model = "gpt-4", stream = true, messages = [{ role = "user", content = "stream" }], max_tokens = 16 }

[upstream]
keys = [{ id = "k1", secret = "sk-e2e-1" }, { id = "k2", secret = "sk-e2e-2" }, { id = "k3", secret = "sk-e2e-3" }]

[[upstream.rules]]
keys = ["k2"]
action = "error"
status = 503
from = "4s"
until = "7s"

[thresholds]
p99 = "2s"
max_error_percent_excluding_429 = 5.0
"#;

fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts")
        .join("e2e-report")
}

async fn harness(args: &[&std::ffi::OsStr]) -> std::process::Output {
    tokio::process::Command::new(harness_bin())
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run harness")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_renders_a_report_every_chart_draws_and_compare_judges_it() {
    let dir = temp_dir();
    let junit = dir.join("junit.xml");
    let (output, summary) = run_scenario(
        &dir,
        SCENARIO,
        &["--junit", junit.to_str().expect("utf-8 path")],
    )
    .await;
    let why = describe(&output, &summary);
    assert_eq!(output.status.code(), Some(0), "{why}");
    let results = dir.join("results");

    // JUnit: one suite per kind, every threshold a test case, no failures on a passing run.
    let xml = std::fs::read_to_string(&junit).expect("junit.xml written");
    assert!(
        xml.contains("<testsuites") && xml.contains("<testcase"),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");

    // The report renders in a real browser: every chart drew something, no console errors.
    let report = results.join("report.html");
    assert!(report.exists(), "report.html not written; {why}");
    if let Some(chromium) = require_chromium() {
        let profile = tempfile::tempdir().expect("profile dir");
        let dump = [
            "--virtual-time-budget=3000".to_string(),
            "--dump-dom".to_string(),
        ];
        let (dom, stderr) = run_chromium(&chromium, profile.path(), &report, &dump);
        let charts = chart_shapes(&dom);
        assert!(
            charts.len() >= 6,
            "only {} charts: {charts:?}",
            charts.len()
        );
        for chart in &charts {
            assert!(
                chart.polylines > 0 || chart.rects >= 3,
                "empty chart {chart:?}"
            );
        }
        assert!(console_errors(&stderr).is_empty(), "{stderr}");

        let artifacts = artifacts_dir();
        std::fs::create_dir_all(&artifacts).expect("artifacts dir");
        std::fs::copy(&report, artifacts.join("report.html")).expect("copy report");
        let png = artifacts.join("report.png");
        let shot = [
            format!("--screenshot={}", png.display()),
            "--window-size=1400,3000".into(),
        ];
        run_chromium(&chromium, profile.path(), &report, &shot);
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 20_000,
            "screenshot {} missing or blank",
            png.display()
        );
    }

    // `harness report` re-renders from summary.json alone.
    let rerendered = dir.join("again.html");
    let out = harness(&[
        "report".as_ref(),
        results.join("summary.json").as_os_str(),
        "-o".as_ref(),
        rerendered.as_os_str(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&rerendered).map(|m| m.len()).unwrap_or(0) > 10_000);

    // `harness compare`: the run against itself is no regression; against a baseline twice as fast it is.
    let current = results.join("summary.json");
    let same = harness(&["compare".as_ref(), current.as_os_str(), current.as_os_str()]).await;
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let mut faster = summary.clone();
    let rps = faster["aggregate"]["requests_per_sec"]
        .as_f64()
        .expect("requests_per_sec");
    faster["aggregate"]["requests_per_sec"] = serde_json::json!(rps * 2.0);
    let baseline = dir.join("baseline.json");
    std::fs::write(&baseline, faster.to_string()).expect("write baseline");
    let markdown = dir.join("compare.md");
    let worse = harness(&[
        "compare".as_ref(),
        baseline.as_os_str(),
        current.as_os_str(),
        "--markdown".as_ref(),
        markdown.as_os_str(),
    ])
    .await;
    assert_eq!(
        worse.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&worse.stdout)
    );
    assert!(std::fs::read_to_string(&markdown)
        .expect("markdown")
        .contains('|'));
}
