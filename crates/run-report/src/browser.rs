//! Headless Chromium as a test instrument (feature `test-support`): load a page, dump its DOM after rendering,
//! collect console errors, take a screenshot. Needs Debian's `chromium` (`.ci/run` installs it); `CHROMIUM=/path`
//! picks another binary. Without it, [`require_chromium`] lets the test return early and says so on stderr — so
//! `cargo test --workspace` passes on a fresh laptop — except when the `CI` environment variable is set: there a
//! missing browser fails the test, naming Chromium, so CI always proves the report renders.

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

/// The Chromium binary. When there is none: `None` (the caller returns early; a note goes to stderr), unless
/// the `CI` environment variable is set (to anything but `false` or `0`), which panics with an install hint.
pub fn require_chromium() -> Option<PathBuf> {
    if let Some(binary) = chromium() {
        return Some(binary);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if in_ci {
        panic!(
            "headless Chromium is required for this test in CI (CI is set): \
             `apt-get install -y chromium`, or CHROMIUM=/path/to/chromium"
        );
    }
    // Written to the process's stderr, not through `eprintln!`, which the test harness captures and hides for a
    // passing test: the skip must be visible in `cargo test` output.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "browser test skipped: no Chromium found (apt-get install -y chromium, or CHROMIUM=/path); \
         set CI=1 to make this a failure"
    );
    None
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
