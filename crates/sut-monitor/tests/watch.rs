//! `watch` end to end against real child processes: verdict, exit code and files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use sut_monitor::leak::{LeakReport, Verdict};
use sut_monitor::watch::{run, WatchArgs};

/// Settings that let a few-second watch reach a verdict (the defaults want ≥ 30 s of steady samples), and
/// tolerate the sampling delays of a busy test machine (gap detection is tested on synthetic series).
const FAST_LEAK_CONFIG: &str = "min_steady = \"1s\"\nmin_points = 5\nmax_gap_intervals = 50\n";

fn args(pid: u32, out: &Path, config: &Path, duration: Duration) -> WatchArgs {
    WatchArgs {
        pid: Some(pid),
        pid_file: None,
        metrics_url: Vec::new(),
        prometheus: None,
        selector: None,
        replica_label: None,
        duration: Some(duration),
        out: out.to_path_buf(),
        interval: Duration::from_millis(100),
        warmup: Duration::from_millis(500),
        leak_config: Some(config.to_path_buf()),
        memory_slope_limit: None,
        fds_slope_limit: None,
        threads_slope_limit: None,
        max_rss: None,
        max_fds: None,
        max_threads: None,
        alpha: None,
        progress_every: Duration::from_secs(1),
    }
}

struct Watched {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn start(program: &str, script_args: &[&str]) -> Watched {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("leak.toml");
    std::fs::write(&config, FAST_LEAK_CONFIG).expect("write config");
    let child = Command::new(program)
        .args(script_args)
        .spawn()
        .expect("spawn");
    Watched { child, dir, config }
}

impl Watched {
    async fn watch(&mut self, duration: Duration) -> (i32, LeakReport) {
        let out = self.dir.path().join("out");
        let code = run(args(self.child.id(), &out, &self.config, duration))
            .await
            .expect("watch runs");
        let json = std::fs::read(out.join("leak.json")).expect("leak.json written");
        let csv =
            std::fs::read_to_string(out.join("resources.csv")).expect("resources.csv written");
        assert!(csv.lines().count() > 5, "csv has rows");
        let _ = self.child.kill();
        let _ = self.child.wait();
        (
            code,
            serde_json::from_slice(&json).expect("leak.json parses"),
        )
    }
}

#[tokio::test]
async fn idle_process_passes() {
    let mut watched = start("sleep", &["30"]);
    let (code, report) = watched.watch(Duration::from_secs(3)).await;
    assert_eq!(
        (code, report.verdict),
        (0, Verdict::Pass),
        "{:?}",
        report.reasons
    );
}

#[tokio::test]
async fn growing_process_is_a_leak() {
    // Touches 2 MiB more every 100 ms.
    let script = "import time\nhoard = []\nfor _ in range(100):\n    hoard.append('x' * (2 << 20))\n    time.sleep(0.1)\n";
    let mut watched = start("python3", &["-c", script]);
    let (code, report) = watched.watch(Duration::from_secs(3)).await;
    assert_eq!(
        (code, report.verdict),
        (1, Verdict::Leak),
        "{:?}",
        report.reasons
    );
}

#[tokio::test]
async fn exiting_process_is_crashed() {
    // Not reaped until the watch ends: the zombie counts as gone.
    let mut watched = start("sh", &["-c", "sleep 1.2"]);
    let (code, report) = watched.watch(Duration::from_secs(10)).await;
    assert_eq!(
        (code, report.verdict),
        (4, Verdict::Crashed),
        "{:?}",
        report.reasons
    );
    assert!(report.sampling.exited_at_secs.is_some_and(|t| t < 5.0));
}

#[tokio::test]
async fn missing_pid_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("leak.toml");
    std::fs::write(&config, FAST_LEAK_CONFIG).expect("write config");
    let err = run(args(
        u32::MAX - 3,
        dir.path(),
        &config,
        Duration::from_secs(1),
    ))
    .await
    .expect_err("no such pid");
    assert!(err.to_string().contains("no running process"), "{err}");
}
