//! Headless Chromium as a test instrument: load a page, dump its DOM after rendering, collect console errors,
//! take a screenshot. Needs Debian's `chromium` (`.ci/run` installs it); `CHROMIUM=/path` picks another binary.
//! Without it, [`require_chromium`] fails the test with an install hint unless `HARNESS_SKIP_BROWSER_TESTS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one Chromium invocation may take.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// The Chromium binary, if one is installed.
pub fn chromium() -> Option<PathBuf> {
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

/// The Chromium binary; panics with an install hint when missing, or returns `None` when the caller may skip
/// (`HARNESS_SKIP_BROWSER_TESTS=1`).
pub fn require_chromium() -> Option<PathBuf> {
    match chromium() {
        Some(binary) => Some(binary),
        None if std::env::var("HARNESS_SKIP_BROWSER_TESTS").as_deref() == Ok("1") => {
            eprintln!("skipped: HARNESS_SKIP_BROWSER_TESTS=1 and no chromium");
            None
        }
        None => panic!(
            "headless Chromium is required for this test: `apt-get install -y chromium` \
             (or CHROMIUM=/path, or HARNESS_SKIP_BROWSER_TESTS=1 to skip)"
        ),
    }
}

/// Runs Chromium headless (flags that keep it off the network) on `page` with `args`; returns
/// (stdout, stderr). Bounded in time.
pub fn run_chromium(
    binary: &Path,
    profile: &Path,
    page: &Path,
    args: &[String],
) -> (String, String) {
    let io_dir = profile.join("io");
    std::fs::create_dir_all(&io_dir).expect("chromium io dir");
    let (stdout_path, stderr_path) = (io_dir.join("stdout"), io_dir.join("stderr"));
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args(["--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(stdout_path).unwrap_or_default(),
        std::fs::read_to_string(stderr_path).unwrap_or_default(),
    )
}

/// Console errors and uncaught exceptions in Chromium's stderr log.
pub fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// One chart of the report as rendered: its id and how many lines, paths and bars it drew.
#[derive(Debug)]
pub struct ChartShapes {
    /// The chart figure's id.
    pub id: String,
    /// Whether the figure holds an `<svg>` at all.
    pub svg: bool,
    /// `<polyline>` elements (series lines).
    pub polylines: usize,
    /// `<path>` elements.
    pub paths: usize,
    /// `<rect>` elements (bars, shaded windows, frame).
    pub rects: usize,
}

/// Every `<figure class="chart">` in a dumped DOM with its drawn shapes.
pub fn chart_shapes(dom: &str) -> Vec<ChartShapes> {
    dom.split("<figure class=\"chart\"")
        .skip(1)
        .map(|chunk| {
            let figure = &chunk[..chunk.find("</figure>").unwrap_or(chunk.len())];
            let svg = figure.find("<svg").map_or("", |at| &figure[at..]);
            ChartShapes {
                id: figure.split('"').nth(1).unwrap_or("").to_owned(),
                svg: figure.contains("<svg"),
                polylines: svg.matches("<polyline").count(),
                paths: svg.matches("<path").count(),
                rects: svg.matches("<rect").count(),
            }
        })
        .collect()
}
