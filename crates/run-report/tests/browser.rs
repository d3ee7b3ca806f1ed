//! Opens a report rendered from a real results directory in headless Chromium: every chart must have rendered
//! (SVG with drawn lines or bars), the console must stay free of errors, and a full-page PNG screenshot is kept
//! as an artifact under `<target>/test-artifacts/run-report-browser/` next to the results it shows.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `CHROMIUM=/path` picks another binary). Without it
//! the test returns early and says so on stderr, unless `CI` is set: then it fails, naming Chromium.

mod support;

use std::path::{Path, PathBuf};

use run_report::browser::{chart_shapes, console_errors, require_chromium, run_chromium};
use run_report::{render_html, ReportInput};

const CHARTS_IN_FIXTURE: usize = 10;

fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts")
        .join("run-report-browser")
}

#[test]
fn report_renders_every_chart_in_headless_chromium_without_console_errors() {
    let Some(binary) = require_chromium() else {
        return;
    };
    let results = artifacts_dir();
    let _ = std::fs::remove_dir_all(&results);
    support::write_results_dir(&results);
    let input = ReportInput::load(&results).expect("fixture results dir loads");
    let report = results.join("report.html");
    std::fs::write(&report, render_html(&input)).unwrap();
    let profile = tempfile::tempdir().unwrap();

    let (dom, stderr) = run_chromium(
        &binary,
        profile.path(),
        &report,
        &["--virtual-time-budget=3000".into(), "--dump-dom".into()],
    );
    assert!(
        dom.contains("<p class=\"verdict\">"),
        "no DOM dumped; chromium stderr:\n{stderr}"
    );
    let charts = chart_shapes(&dom);
    assert_eq!(charts.len(), CHARTS_IN_FIXTURE, "charts: {charts:?}");
    for chart in &charts {
        assert!(chart.svg, "{}: no <svg> in the rendered DOM", chart.id);
        assert!(
            chart.polylines > 0 || chart.rects >= 3,
            "empty chart {chart:?}"
        );
    }
    assert!(
        !dom.contains("Chart could not be drawn"),
        "a chart failed to draw"
    );
    let errors = console_errors(&stderr);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    let png = results.join("report.png");
    let screenshot = [
        format!("--screenshot={}", png.display()),
        "--window-size=1400,3000".into(),
    ];
    let (_, stderr) = run_chromium(&binary, profile.path(), &report, &screenshot);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} missing or blank ({size} bytes); stderr:\n{stderr}",
        png.display()
    );
    assert!(
        console_errors(&stderr).is_empty(),
        "console errors while taking the screenshot"
    );
}

/// The console check itself must catch an error, or the assertion above could never fail.
#[test]
fn console_error_detection_catches_a_broken_page() {
    let Some(binary) = require_chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><script>console.error('boom'); undefinedFunction();</script></body></html>").unwrap();
    let (_, stderr) = run_chromium(
        &binary,
        &dir.path().join("profile"),
        &page,
        &["--dump-dom".into()],
    );
    let errors = console_errors(&stderr);
    assert!(
        errors.iter().any(|l| l.contains("boom")),
        "console.error not seen in: {stderr}"
    );
    assert!(
        errors.iter().any(|l| l.contains("Uncaught")),
        "uncaught exception not seen in: {stderr}"
    );
}
