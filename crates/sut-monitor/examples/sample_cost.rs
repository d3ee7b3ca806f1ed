//! CPU time the monitor's sampling thread spends per sample on a tree of N processes, for
//! `bench/monitor-cost.sh`. Uses only the public `Monitor` API, so the same file measures older versions of the
//! crate too. Linux only: the thread's CPU time is read from `/proc/self/task/TID/schedstat` (nanoseconds).
//!
//! `cargo run --release -p sut-monitor --example sample_cost -- CHILDREN SECONDS`
//! prints `children=N samples=S cpu_us_per_sample=X`.
//!
//! The tree is a `sh` with CHILDREN `sleep` children. Samples are taken every 20 ms so that a few seconds give
//! hundreds of samples; the slow refreshes (sockets every 5th sample, TCP states every 15th) keep their 1 Hz
//! proportions. Each sample's cost includes appending its row to `resources.csv`.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use sut_monitor::monitor::{Monitor, MonitorConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [children, seconds] = args.as_slice() else {
        bail!("usage: sample_cost CHILDREN SECONDS");
    };
    let children: u32 = children.parse().context("CHILDREN must be a number")?;
    let seconds: f64 = seconds.parse().context("SECONDS must be a number")?;
    let script = format!("for i in $(seq {children}); do sleep 600 & done; wait");
    let mut tree = Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .spawn()
        .context("spawn sh")?;
    std::thread::sleep(Duration::from_millis(500)); // let every child start
    let dir = tempfile::tempdir()?;
    let config = MonitorConfig {
        interval: Duration::from_millis(20),
        ..MonitorConfig::default()
    };
    let handle = Monitor::start(tree.id(), config, &dir.path().join("resources.csv"))?;
    std::thread::sleep(Duration::from_millis(100)); // the sampling thread exists from now on
    let before = sampler_cpu_ns()?;
    let samples_before = handle.inspect(|s| s.samples.len());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let after = sampler_cpu_ns()?;
    let series = handle.stop();
    let samples = series.samples.len() - samples_before;
    let processes = series.samples.last().map_or(0, |s| s.processes);
    let pgid = nix::unistd::Pid::from_raw(tree.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = tree.wait();
    if processes != children + 1 {
        bail!(
            "the monitor saw {processes} processes, expected {}",
            children + 1
        );
    }
    let per_sample = (after - before) as f64 / 1e3 / samples.max(1) as f64;
    println!("children={children} samples={samples} cpu_us_per_sample={per_sample:.1}");
    Ok(())
}

/// CPU time so far of the thread named `sut-monitor` in this process, nanoseconds.
fn sampler_cpu_ns() -> anyhow::Result<u64> {
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        if std::fs::read_to_string(dir.join("comm"))?.trim() == "sut-monitor" {
            let schedstat = std::fs::read_to_string(dir.join("schedstat"))?;
            let ns = schedstat.split_whitespace().next().unwrap_or("");
            return ns.parse().context("parse schedstat");
        }
    }
    bail!("no sut-monitor thread in this process")
}
