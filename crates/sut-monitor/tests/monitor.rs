//! The monitor against real processes: a Python process tree that allocates, holds sockets and then exits.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sut_monitor::monitor::{Monitor, MonitorConfig, MonitorError, Phase};
use sut_monitor::resources_csv::read_samples;

/// Listens, connects to itself, starts a `sleep` child, grows its heap by 1 MiB every 50 ms, exits after ~3 s.
const GROWING_TREE: &str = r#"
import socket, subprocess, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
child = subprocess.Popen(["sleep", "30"])
hoard = []
for _ in range(60):
    hoard.append(bytearray(1 << 20))
    time.sleep(0.05)
"#;

fn spawn_tree() -> Child {
    Command::new("python3")
        .args(["-c", GROWING_TREE])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("python3 is needed for this test")
}

fn kill_group(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

#[test]
fn samples_a_growing_tree_until_it_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("sub/resources.csv");
    let mut child = spawn_tree();
    std::thread::sleep(Duration::from_millis(300)); // let python import and open its sockets
    let config = MonitorConfig {
        interval: Duration::from_millis(100),
        steady_after: Some(Duration::from_millis(300)),
        ..MonitorConfig::default()
    };
    let handle = Monitor::start(child.id(), config, &csv).expect("start");
    assert!(handle.latest().is_some(), "baseline sample taken at start");
    let reaper = std::thread::spawn(move || {
        let _ = child.wait();
        child
    });
    // Generous: the machine may be busy (CI runs tests in parallel on few cores).
    for _ in 0..600 {
        if handle.exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let series = handle.stop();
    let mut child = reaper.join().expect("reaper");
    kill_group(&mut child);

    let exited = series.exited_at_secs.expect("exit detected");
    let samples = &series.samples;
    assert!(samples.len() >= 4, "only {} samples", samples.len());
    assert!(samples.iter().all(|s| s.t_secs <= exited));
    // The process tears down at exit, so judge the peak, not the very last sample.
    let first = &samples[0];
    let last = samples.last().expect("non-empty");
    let peak = samples
        .iter()
        .max_by_key(|s| s.rss_bytes)
        .expect("non-empty");
    assert!(
        peak.rss_bytes > first.rss_bytes + 5 * (1 << 20),
        "{} -> {}",
        first.rss_bytes,
        peak.rss_bytes
    );
    assert!(peak.rss_anon_bytes > first.rss_anon_bytes + 5 * (1 << 20));
    assert!(
        samples.iter().any(|s| s.processes >= 2),
        "the sleep child is part of the tree"
    );
    assert!(samples.iter().any(|s| s.cpu_percent > 0.0));
    assert!(peak.fds >= 3 && peak.threads >= 1 && peak.vsize_bytes > peak.rss_bytes);
    assert!(
        samples
            .iter()
            .any(|s| s.tcp_listen >= 1 && s.tcp_established >= 2),
        "{samples:?}"
    );
    assert_eq!(first.phase, Phase::WarmUp);
    assert_eq!(last.phase, Phase::Steady);
    assert_eq!(read_samples(&csv).expect("csv reads back"), *samples);
}

#[test]
fn explicit_phase_wins_and_stop_returns_the_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
    let config = MonitorConfig {
        interval: Duration::from_millis(50),
        ..MonitorConfig::default()
    };
    let handle = Monitor::start(child.id(), config, &dir.path().join("r.csv")).expect("start");
    std::thread::sleep(Duration::from_millis(120));
    handle.set_phase(Phase::Drain);
    assert_eq!(handle.phase(), Phase::Drain);
    std::thread::sleep(Duration::from_millis(160));
    let series = handle.stop();
    child.kill().expect("kill sleep");
    child.wait().expect("reap sleep");
    assert!(series.exited_at_secs.is_none());
    assert!(series.samples.iter().any(|s| s.phase == Phase::WarmUp));
    assert_eq!(series.samples.last().map(|s| s.phase), Some(Phase::Drain));
    assert!(series.gaps_longer_than(3.0).is_empty());
}

#[test]
fn start_refuses_missing_process_and_unwritable_csv() {
    let err = Monitor::start(
        u32::MAX - 1,
        MonitorConfig::default(),
        std::path::Path::new("/tmp/x.csv"),
    )
    .expect_err("no such pid");
    assert!(matches!(err, MonitorError::NoSuchProcess { .. }), "{err}");
    let me = std::process::id();
    let err = Monitor::start(
        me,
        MonitorConfig::default(),
        std::path::Path::new("/proc/nope/r.csv"),
    )
    .expect_err("unwritable");
    assert!(err.to_string().contains("/proc/nope/r.csv"), "{err}");
}
