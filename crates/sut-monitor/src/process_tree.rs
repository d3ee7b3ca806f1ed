//! Reading one snapshot of a process and all its descendants: memory, CPU time and identity through `sysinfo`
//! (any platform), the Linux extras through [`crate::linux_extras`].
//!
//! Why a tree: a Python proxy under uvicorn/gunicorn is a master plus workers, and a leak in a worker is still a
//! leak of the system under test. Why only the watched PIDs: refreshing every process on the machine costs a
//! `stat` read per process; `ProcessesToUpdate::Some` with a refresh kind of memory and CPU reads only what the
//! sample needs. New children are found by a detailed reading: on Linux from `/proc/PID/task/*/children`, else
//! (or on kernels without those files) from every process's parent PID, the one walk of the whole machine left.
//!
//! Processes that vanish between discovery and reading are skipped silently: that race is normal for a tree.

use std::collections::{HashMap, HashSet};

use sysinfo::{Pid, Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

use crate::linux_extras::{self, ProcessExtras};

/// One process of the tree as read at one instant.
#[derive(Debug, Clone)]
pub(crate) struct ProcessReading {
    /// The process id.
    pub pid: u32,
    /// Start time as `sysinfo` reports it (seconds); with the PID, identifies a process across PID reuse.
    pub start_time: u64,
    /// Seconds since the process started.
    pub run_time_secs: u64,
    /// User + system CPU time used so far, microseconds.
    pub cpu_micros: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Virtual memory size, bytes.
    pub vsize_bytes: u64,
    /// What only Linux reports (defaults elsewhere).
    pub extras: ProcessExtras,
}

/// What reading the tree found.
#[derive(Debug)]
pub(crate) enum TreeState {
    /// The root is alive; readings root first, then descendants.
    Alive(Vec<ProcessReading>),
    /// The root exited, became a zombie, or its PID now belongs to another process.
    Gone,
}

/// RSS and CPU time of the process running the monitor, read in the same refresh as the tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnUsage {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User + system CPU time used so far, microseconds.
    pub cpu_micros: u64,
}

/// A watched root process, identified by PID and start time so PID reuse is noticed.
#[derive(Debug)]
pub(crate) struct ProcessTree {
    root: u32,
    root_start_time: u64,
    own_pid: Pid,
    system: System,
    /// Descendants found by the last discovery (reused between rescans).
    descendants: Vec<u32>,
}

/// Only what a sample needs: memory and CPU time (parent, status and start time come with every refresh).
fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing().with_memory().with_cpu()
}

fn is_gone(process: &Process) -> bool {
    matches!(
        process.status(),
        ProcessStatus::Zombie | ProcessStatus::Dead
    )
}

impl ProcessTree {
    /// Attaches to a live process. `None` when it does not exist, is already gone, or the platform's process
    /// table cannot be read.
    pub fn attach(root: u32) -> Option<Self> {
        let mut system = System::new().ok()?;
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[Pid::from_u32(root)]),
            true,
            refresh_kind(),
        );
        let process = system
            .process(Pid::from_u32(root))
            .filter(|p| !is_gone(p))?;
        Some(Self {
            root,
            root_start_time: process.start_time(),
            own_pid: Pid::from_u32(std::process::id()),
            system,
            descendants: Vec::new(),
        })
    }

    /// The root PID.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Reads the root and its live descendants (and the monitor's own process, see [`ProcessTree::own_usage`]).
    /// A `detailed` reading also looks the descendants up afresh and resolves every fd to find the sockets;
    /// otherwise the last descendant list is reused (children that exited since are skipped, new ones wait for
    /// the next detailed reading) and fds are only counted. Discovery may mean reading every process's parent,
    /// and resolving costs a syscall per fd: too much for every sample.
    pub fn read(&mut self, detailed: bool) -> TreeState {
        if detailed {
            self.descendants = self.discover();
        }
        let pids: Vec<Pid> = [self.root]
            .iter()
            .chain(&self.descendants)
            .map(|&pid| Pid::from_u32(pid))
            .chain([self.own_pid])
            .collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            refresh_kind(),
        );
        let root_alive = self
            .system
            .process(Pid::from_u32(self.root))
            .is_some_and(|p| !is_gone(p) && p.start_time() == self.root_start_time);
        if !root_alive {
            return TreeState::Gone;
        }
        let readings = [self.root]
            .iter()
            .chain(&self.descendants)
            .filter_map(|&pid| self.read_process(pid, detailed))
            .collect();
        TreeState::Alive(readings)
    }

    /// The monitor's own process as of the last [`ProcessTree::read`].
    pub fn own_usage(&self) -> Option<OwnUsage> {
        self.system.process(self.own_pid).map(|p| OwnUsage {
            rss_bytes: p.memory(),
            cpu_micros: p.accumulated_cpu_time() * 1000,
        })
    }

    fn read_process(&self, pid: u32, detailed: bool) -> Option<ProcessReading> {
        let process = self
            .system
            .process(Pid::from_u32(pid))
            .filter(|p| !is_gone(p))?;
        Some(ProcessReading {
            pid,
            start_time: process.start_time(),
            run_time_secs: process.run_time(),
            cpu_micros: process.accumulated_cpu_time() * 1000,
            rss_bytes: process.memory(),
            vsize_bytes: process.virtual_memory(),
            extras: linux_extras::read_extras(pid, detailed)?,
        })
    }

    /// All live descendants of the root (not including it).
    fn discover(&self) -> Vec<u32> {
        match linux_extras::children(self.root) {
            Some(_) => walk(self.root, |pid| {
                linux_extras::children(pid).unwrap_or_default()
            }),
            None => {
                let parents = scan_parents();
                walk(self.root, |pid| {
                    parents.get(&pid).cloned().unwrap_or_default()
                })
            }
        }
    }
}

/// Breadth of the tree below `root`, each PID once.
fn walk(root: u32, children_of: impl Fn(u32) -> Vec<u32>) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![root];
    let mut seen = HashSet::from([root]);
    while let Some(pid) = queue.pop() {
        for child in children_of(pid) {
            if seen.insert(child) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// Parent → children map of every process on the machine (a fresh `System`, so the watched one keeps only the
/// tree). Used where no cheaper child listing exists.
fn scan_parents() -> HashMap<u32, Vec<u32>> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(mut system) = System::new() else {
        return parents;
    };
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
    for (pid, process) in system.processes() {
        if let Some(parent) = process.parent() {
            parents
                .entry(parent.as_u32())
                .or_default()
                .push(pid.as_u32());
        }
    }
    parents
}

/// Whether the root's open fds can be counted (on Linux, another user's process cannot be unless root).
pub(crate) fn fds_readable(root: u32) -> bool {
    linux_extras::fds_readable(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    fn kill_group(child: &mut std::process::Child) {
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        child.wait().expect("reap");
    }

    #[test]
    fn reads_a_real_tree_with_grandchildren() {
        // sh → sh → sleep: the grandchild must be found whichever discovery method the kernel allows.
        let mut child = Command::new("sh")
            .args(["-c", "sh -c 'sleep 30; true' & sleep 30; wait"])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let mut tree = ProcessTree::attach(child.id()).expect("attach");
        let fd_counts = |tree: &mut ProcessTree, detailed: bool| match tree.read(detailed) {
            TreeState::Alive(r) => r
                .iter()
                .map(|p| (p.extras.fds, p.rss_bytes))
                .collect::<Vec<_>>(),
            TreeState::Gone => Vec::new(),
        };
        // Processes are forking and exec-ing at first; wait until the tree is complete and settled.
        let mut last = Vec::new();
        let agreed = (0..100).any(|_| {
            last = fd_counts(&mut tree, true);
            let settled = last.len() >= 4 && last.iter().all(|&(fds, rss)| fds >= 1 && rss > 0);
            // Counting fds (one stat) must agree with listing them.
            let agree = settled && fd_counts(&mut tree, false) == last;
            if !agree {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            agree
        });
        kill_group(&mut child);
        assert!(
            last.len() >= 4,
            "found only {} processes in the tree",
            last.len()
        );
        assert!(
            agreed,
            "fd counts by stat and by listing never agreed: {last:?}"
        );
        assert!(matches!(tree.read(false), TreeState::Gone));
    }

    #[test]
    fn a_zombie_root_counts_as_gone() {
        let mut child = Command::new("true").spawn().expect("spawn");
        let tree = ProcessTree::attach(child.id());
        // Not reaped yet: either already a zombie at attach time (None) or it becomes one shortly.
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(mut tree) = tree {
            assert!(matches!(tree.read(true), TreeState::Gone));
        }
        child.wait().expect("reap");
    }
}
