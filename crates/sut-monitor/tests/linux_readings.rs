//! The sampler's Linux readings against the kernel's own figures: a real process with known threads, fds and
//! heap is sampled through the monitor, then `/proc/PID/status` and `/proc/PID/fd` are read directly. The
//! `resources.csv` columns must keep the meaning they had when the monitor parsed `/proc` itself.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use sut_monitor::monitor::{Monitor, MonitorConfig, Sample};

/// Holds 40 MiB of heap, 3 extra threads and 6 extra files open, says "ready", then waits.
const STEADY_PROCESS: &str = r#"
import sys, threading, time
hoard = bytearray(40 << 20)
for i in range(len(hoard) // 4096):
    hoard[i * 4096] = 1
files = [open("/dev/null") for _ in range(6)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"#;

fn spawn_ready() -> Child {
    let mut child = Command::new("python3")
        .args(["-c", STEADY_PROCESS])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read ready line");
    assert_eq!(line.trim(), "ready");
    child
}

/// A `/proc/PID/status` field in its own unit (kB for memory).
fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"))
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count() as u64
}

fn assert_close(what: &str, sampled: u64, direct: u64) {
    // RSS moves a little between the two reads (page faults, allocator); 2 MiB is far below the 40 MiB held.
    let tolerance = 2 << 20;
    assert!(
        sampled.abs_diff(direct) <= tolerance,
        "{what}: sampled {sampled} B, /proc says {direct} B"
    );
}

fn first_sample(pid: u32, dir: &std::path::Path) -> Sample {
    let handle = Monitor::start(pid, MonitorConfig::default(), &dir.join("resources.csv"))
        .expect("start monitor");
    let sample = handle.latest().expect("baseline sample taken at start");
    drop(handle);
    sample
}

#[test]
fn memory_threads_and_fds_match_proc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_ready();
    let pid = child.id();
    let sample = first_sample(pid, dir.path());
    let (rss_kb, anon_kb, threads, fds) = (
        status_field(pid, "VmRSS"),
        status_field(pid, "RssAnon"),
        status_field(pid, "Threads"),
        fd_count(pid),
    );
    let vsize_kb = status_field(pid, "VmSize");
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(sample.processes, 1);
    assert!(
        rss_kb > 40 << 10,
        "the test process should hold 40 MiB: {rss_kb} kB"
    );
    assert_close("rss_bytes", sample.rss_bytes, rss_kb * 1024);
    assert_close("rss_anon_bytes", sample.rss_anon_bytes, anon_kb * 1024);
    assert_close("vsize_bytes", sample.vsize_bytes, vsize_kb * 1024);
    assert_eq!(sample.threads, threads, "threads");
    assert_eq!(threads, 4, "python's main thread plus the 3 it started");
    assert_eq!(sample.fds, fds, "fds");
    assert!(fds >= 3 + 6, "stdio plus the 6 files: {fds}");
}
