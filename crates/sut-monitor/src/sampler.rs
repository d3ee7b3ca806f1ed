//! Turns one reading of the watched tree (plus the harness itself) into a [`Sample`].
//!
//! Kept apart from the sampling thread in [`crate::monitor`] so the per-sample work is one plain function call.

use std::collections::HashSet;
use std::time::Instant;

use crate::cpu::{lifetime_percent, CpuMeter, ProcessKey};
use crate::linux_extras::{self, TcpTally};
use crate::monitor::{Phase, Sample, SLOW_REFRESH_SAMPLES, TCP_REFRESH_SAMPLES};
use crate::process_tree::{ProcessReading, ProcessTree, TreeState};

/// Samples one process tree; keeps the CPU meters between samples.
#[derive(Debug)]
pub(crate) struct Sampler {
    tree: ProcessTree,
    tree_cpu: CpuMeter,
    harness_cpu: CpuMeter,
    thread_cpu: CpuMeter,
    samples_taken: u64,
    socket_fds: u64,
    tcp: TcpTally,
}

impl Sampler {
    /// A sampler for an attached tree.
    pub fn new(tree: ProcessTree) -> Self {
        Self {
            tree,
            tree_cpu: CpuMeter::default(),
            harness_cpu: CpuMeter::default(),
            thread_cpu: CpuMeter::default(),
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
            .map(|p| ((p.pid, p.start_time), p.cpu_micros))
            .collect();
        let cpu_percent = self
            .tree_cpu
            .observe(&keys, at)
            .unwrap_or_else(|| lifetime_cpu(&processes));
        if slow_due {
            self.refresh_sockets(&processes, tcp_due);
        }
        let tcp = self.tcp;
        let own = self.tree.own_usage();
        let harness_cpu_percent = own
            .and_then(|own| self.harness_cpu.observe(&[((0, 0), own.cpu_micros)], at))
            .unwrap_or(0.0);
        let monitor_cpu_percent = thread_cpu_micros()
            .and_then(|micros| self.thread_cpu.observe(&[((0, 0), micros)], at))
            .unwrap_or(0.0);
        let sum = |metric: fn(&ProcessReading) -> u64| processes.iter().map(metric).sum::<u64>();
        Some(Sample {
            unix_ms,
            t_secs,
            phase,
            processes: processes.len() as u32,
            rss_bytes: sum(|p| p.rss_bytes),
            rss_anon_bytes: sum(|p| p.extras.rss_anon_bytes),
            vsize_bytes: sum(|p| p.vsize_bytes),
            cpu_percent,
            threads: sum(|p| p.extras.threads),
            fds: sum(|p| p.extras.fds),
            socket_fds: self.socket_fds,
            tcp_sockets: tcp.total(),
            tcp_established: tcp.established,
            tcp_close_wait: tcp.close_wait,
            tcp_listen: tcp.listen,
            tcp_other: tcp.other,
            harness_rss_bytes: own.map_or(0, |own| own.rss_bytes),
            harness_cpu_percent,
            monitor_cpu_percent,
            replica: self.tree.root().to_string(),
        })
    }

    /// Recounts the tree's distinct socket fds and, when due, their TCP states.
    fn refresh_sockets(&mut self, processes: &[ProcessReading], tcp_due: bool) {
        let owned: HashSet<u64> = processes
            .iter()
            .flat_map(|p| p.extras.socket_inodes.iter().copied())
            .collect();
        self.socket_fds = owned.len() as u64;
        if tcp_due {
            self.tcp = if owned.is_empty() {
                TcpTally::default()
            } else {
                linux_extras::tcp_tally(self.tree.root(), &owned)
            };
        }
    }
}

/// The tree's average CPU over each process's life: the first sample has no previous reading to diff against.
fn lifetime_cpu(processes: &[ProcessReading]) -> f64 {
    processes
        .iter()
        .map(|p| lifetime_percent(p.cpu_micros, p.run_time_secs as f64))
        .sum()
}

/// CPU time of the calling thread (the sampling thread), microseconds.
#[cfg(unix)]
pub(crate) fn thread_cpu_micros() -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    let spent = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let micros = spent.tv_sec() as i128 * 1_000_000 + spent.tv_nsec() as i128 / 1_000;
    u64::try_from(micros).ok()
}

/// No per-thread CPU clock is read on this platform: the monitor's own cost shows as 0.
#[cfg(not(unix))]
pub(crate) fn thread_cpu_micros() -> Option<u64> {
    None
}
