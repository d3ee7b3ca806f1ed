//! Opens a report rendered from a real results directory in headless Chromium: every chart must have rendered
//! (SVG with drawn lines or bars), the console must stay free of errors, and a full-page PNG screenshot is kept
//! as an artifact under `<target>/test-artifacts/run-report-browser/` next to the results it shows.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`); the test FAILS without it unless
//! `HARNESS_SKIP_BROWSER_TESTS=1` is set. `CHROMIUM=/path` picks another binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use run_report::{render_html, ReportInput};

const CHARTS_IN_FIXTURE: usize = 10;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Runs Chromium headless on `page` with `args`; returns (stdout, stderr). Bounded to 90 s.
fn run_chromium(binary: &Path, profile: &Path, page: &Path, args: &[String]) -> (String, String) {
    let out_dir = profile.join("io");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (stdout_path, stderr_path) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .args([
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(stdout_path).unwrap_or_default(),
        std::fs::read_to_string(stderr_path).unwrap_or_default(),
    )
}

/// Console errors and uncaught exceptions in Chromium's stderr log.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// For each chart figure in the DOM: (id, polylines, paths, rects).
fn chart_shapes(dom: &str) -> Vec<(String, usize, usize, usize)> {
    dom.split("<figure class=\"chart\"")
        .skip(1)
        .map(|chunk| {
            let figure = &chunk[..chunk.find("</figure>").unwrap_or(chunk.len())];
            let id = figure.split('"').nth(1).unwrap_or("").to_owned();
            assert!(
                figure.contains("<svg"),
                "{id}: no <svg> in the rendered DOM"
            );
            (
                id,
                figure.matches("<polyline").count(),
                figure.matches("<path").count(),
                figure.matches("<rect").count(),
            )
        })
        .collect()
}

fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts")
        .join("run-report-browser")
}

#[test]
fn report_renders_every_chart_in_headless_chromium_without_console_errors() {
    let Some(binary) = chromium() else {
        if std::env::var("HARNESS_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped: HARNESS_SKIP_BROWSER_TESTS=1 and no chromium");
            return;
        }
        panic!("headless Chromium is required for this test: install it with `apt-get install -y chromium` (or set CHROMIUM=/path, or HARNESS_SKIP_BROWSER_TESTS=1 to skip)");
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
    for (id, polylines, paths, rects) in &charts {
        assert!(
            *polylines > 0 || *rects >= 3,
            "{id}: empty chart ({polylines} polylines, {paths} paths, {rects} rects)"
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
    let Some(binary) = chromium() else {
        assert_eq!(
            std::env::var("HARNESS_SKIP_BROWSER_TESTS").as_deref(),
            Ok("1"),
            "install chromium: `apt-get install -y chromium`"
        );
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
