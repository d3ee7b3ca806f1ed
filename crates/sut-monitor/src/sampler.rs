//! Turns one reading of the watched tree (plus the harness itself) into a [`Sample`].
//!
//! Kept apart from the sampling thread in [`crate::monitor`] so the per-sample work is one plain function call.

use std::collections::HashSet;
use std::fs;
use std::time::Instant;

use crate::cpu::{lifetime_percent, CpuMeter, ProcessKey};
use crate::monitor::{Phase, Sample, SLOW_REFRESH_SAMPLES, TCP_REFRESH_SAMPLES};
use crate::process_tree::{tally_owned, ProcessReading, ProcessTree, TcpTally, TreeState};
use crate::procfs_text::{parse_stat, parse_uptime_secs};

/// Samples one process tree; keeps the CPU meters between samples.
#[derive(Debug)]
pub(crate) struct Sampler {
    tree: ProcessTree,
    page_size: u64,
    ticks_per_sec: u64,
    tree_cpu: CpuMeter,
    harness_cpu: CpuMeter,
    thread_cpu: CpuMeter,
    samples_taken: u64,
    socket_fds: u64,
    tcp: TcpTally,
}

/// Where the harness and the sampling thread read their own usage.
const SELF_STAT: &str = "/proc/self/stat";
const THREAD_SELF_STAT: &str = "/proc/thread-self/stat";

impl Sampler {
    /// A sampler for an attached tree.
    pub fn new(tree: ProcessTree) -> Self {
        let ticks_per_sec = procfs::ticks_per_second();
        Self {
            tree,
            page_size: procfs::page_size(),
            ticks_per_sec,
            tree_cpu: CpuMeter::new(ticks_per_sec),
            harness_cpu: CpuMeter::new(ticks_per_sec),
            thread_cpu: CpuMeter::new(ticks_per_sec),
            samples_taken: 0,
            socket_fds: 0,
            tcp: TcpTally::default(),
        }
    }

    /// The watched root PID.
    pub fn root(&self) -> u32 {
        self.tree.root()
    }

    /// Reads the tree now. `None` when the root process is gone.
    pub fn sample(
        &mut self,
        at: Instant,
        t_secs: f64,
        unix_ms: u64,
        phase: Phase,
    ) -> Option<Sample> {
        let slow_due = self.samples_taken.is_multiple_of(SLOW_REFRESH_SAMPLES);
        let tcp_due = self.samples_taken.is_multiple_of(TCP_REFRESH_SAMPLES);
        self.samples_taken += 1;
        let TreeState::Alive(processes) = self.tree.read(slow_due) else {
            return None;
        };
        let keys: Vec<(ProcessKey, u64)> = processes
            .iter()
            .map(|p| ((p.pid, p.stat.start_ticks), p.stat.cpu_ticks))
            .collect();
        let cpu_percent = self
            .tree_cpu
            .observe(&keys, at)
            .unwrap_or_else(|| self.lifetime_cpu(&processes));
        if slow_due {
            let owned: HashSet<u64> = processes
                .iter()
                .flat_map(|p| p.socket_inodes.iter().copied())
                .collect();
            self.socket_fds = owned.len() as u64;
            if tcp_due {
                self.tcp = if owned.is_empty() {
                    TcpTally::default()
                } else {
                    tally_owned(&self.tree.tcp_tables(), &owned)
                };
            }
        }
        let tcp = self.tcp;
        let (harness_rss_bytes, harness_cpu_percent) = self.own_usage(SELF_STAT, at, true);
        let (_, monitor_cpu_percent) = self.own_usage(THREAD_SELF_STAT, at, false);
        Some(Sample {
            unix_ms,
            t_secs,
            phase,
            processes: processes.len() as u32,
            rss_bytes: processes.iter().map(|p| p.stat.rss_pages).sum::<u64>() * self.page_size,
            rss_anon_bytes: processes.iter().map(|p| p.rss_anon_bytes).sum(),
            vsize_bytes: processes.iter().map(|p| p.stat.vsize_bytes).sum(),
            cpu_percent,
            threads: processes.iter().map(|p| p.stat.threads).sum(),
            fds: processes.iter().map(|p| p.fds).sum(),
            socket_fds: self.socket_fds,
            tcp_sockets: tcp.total(),
            tcp_established: tcp.established,
            tcp_close_wait: tcp.close_wait,
            tcp_listen: tcp.listen,
            tcp_other: tcp.other,
            harness_rss_bytes,
            harness_cpu_percent,
            monitor_cpu_percent,
        })
    }

    fn lifetime_cpu(&self, processes: &[ProcessReading]) -> f64 {
        let uptime = fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|t| parse_uptime_secs(&t));
        let Some(uptime) = uptime else { return 0.0 };
        processes
            .iter()
            .map(|p| {
                lifetime_percent(
                    p.stat.cpu_ticks,
                    p.stat.start_ticks,
                    uptime,
                    self.ticks_per_sec,
                )
            })
            .sum()
    }

    /// RSS bytes and CPU % of the harness process (`whole_process`) or of the sampling thread itself.
    fn own_usage(&mut self, path: &str, at: Instant, whole_process: bool) -> (u64, f64) {
        let Some(stat) = fs::read_to_string(path).ok().and_then(|t| parse_stat(&t)) else {
            return (0, 0.0);
        };
        let meter = if whole_process {
            &mut self.harness_cpu
        } else {
            &mut self.thread_cpu
        };
        let cpu = meter
            .observe(&[((0, stat.start_ticks), stat.cpu_ticks)], at)
            .unwrap_or(0.0);
        (stat.rss_pages * self.page_size, cpu)
    }
}
