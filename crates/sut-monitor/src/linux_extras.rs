//! The metrics only Linux exposes, read through the `procfs` crate: anonymous resident memory (`RssAnon`),
//! threads, open fds, the sockets among them and the TCP state of those sockets; plus the cheap way to find a
//! process's children (`/proc/PID/task/*/children`).
//!
//! Why a separate module: memory, CPU and the process tree come from `sysinfo` on every platform
//! (`process_tree`); these extras have no portable source, so other platforms report them as not
//! available ([`UNAVAILABLE_COLUMNS`]) rather than as zeros that would look like a healthy proxy.

use std::collections::HashSet;

/// What Linux adds to the portable reading of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessExtras {
    /// `RssAnon` in bytes (0 when the kernel does not report it).
    pub rss_anon_bytes: u64,
    /// Number of threads.
    pub threads: u64,
    /// Number of open file descriptors.
    pub fds: u64,
    /// Inodes of the sockets among those fds (only read by a detailed reading, else empty).
    pub socket_inodes: Vec<u64>,
}

/// TCP sockets owned by the tree, by state. TIME_WAIT sockets belong to no file any more (inode 0), so they
/// cannot be attributed to a process and are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TcpTally {
    pub established: u64,
    pub close_wait: u64,
    pub listen: u64,
    pub other: u64,
}

/// The TCP states the tally tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpKind {
    Established,
    CloseWait,
    Listen,
    Other,
}

impl TcpTally {
    /// All owned TCP sockets.
    pub fn total(&self) -> u64 {
        self.established + self.close_wait + self.listen + self.other
    }

    fn count(&mut self, kind: TcpKind) {
        match kind {
            TcpKind::Established => self.established += 1,
            TcpKind::CloseWait => self.close_wait += 1,
            TcpKind::Listen => self.listen += 1,
            TcpKind::Other => self.other += 1,
        }
    }
}

/// Counts the (state, inode) rows of TCP tables whose inode is owned by the tree (each inode once, even if
/// shared by workers or listed in both the IPv4 and IPv6 tables).
pub(crate) fn tally_owned(
    rows: impl IntoIterator<Item = (TcpKind, u64)>,
    owned: &HashSet<u64>,
) -> TcpTally {
    let mut tally = TcpTally::default();
    let mut seen = HashSet::new();
    for (kind, inode) in rows {
        if inode != 0 && owned.contains(&inode) && seen.insert(inode) {
            tally.count(kind);
        }
    }
    tally
}

/// `resources.csv` columns this platform cannot fill: they are written as 0, and the leak report lists them as
/// not available on this platform instead of judging them.
#[cfg(target_os = "linux")]
pub const UNAVAILABLE_COLUMNS: &[&str] = &[];
/// `resources.csv` columns this platform cannot fill: they are written as 0, and the leak report lists them as
/// not available on this platform instead of judging them.
#[cfg(not(target_os = "linux"))]
pub const UNAVAILABLE_COLUMNS: &[&str] = &[
    "rss_anon_bytes",
    "threads",
    "fds",
    "socket_fds",
    "tcp_sockets",
    "tcp_established",
    "tcp_close_wait",
    "tcp_listen",
    "tcp_other",
];

#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
pub(crate) use elsewhere::*;

#[cfg(target_os = "linux")]
mod linux {
    use super::{tally_owned, ProcessExtras, TcpKind, TcpTally};
    use procfs::net::TcpState;
    use procfs::process::{FDTarget, Process};
    use std::collections::HashSet;

    /// Reads the extras of one process; `None` when it vanished. A `detailed` reading resolves every fd to find
    /// the sockets (a syscall per fd); otherwise fds are only counted (one `stat` on Linux ≥ 6.2).
    pub(crate) fn read_extras(pid: u32, detailed: bool) -> Option<ProcessExtras> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        let status = process.status().ok()?;
        let (fds, socket_inodes) = if detailed {
            list_fds(&process)
        } else {
            (process.fd_count().map_or(0, |n| n as u64), Vec::new())
        };
        Some(ProcessExtras {
            rss_anon_bytes: status.rssanon.unwrap_or(0) * 1024,
            threads: status.threads,
            fds,
            socket_inodes,
        })
    }

    fn list_fds(process: &Process) -> (u64, Vec<u64>) {
        let Ok(fds) = process.fd() else {
            return (0, Vec::new());
        };
        let mut count = 0;
        let mut sockets = Vec::new();
        for fd in fds.flatten() {
            count += 1;
            if let FDTarget::Socket(inode) = fd.target {
                sockets.push(inode);
            }
        }
        (count, sockets)
    }

    /// Children listed in `/proc/PID/task/*/children`; `None` when the kernel lacks those files
    /// (`CONFIG_PROC_CHILDREN`) or the process is gone.
    pub(crate) fn children(pid: u32) -> Option<Vec<u32>> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        let mut children = Vec::new();
        let mut any_file = false;
        for task in process.tasks().ok()?.flatten() {
            if let Ok(pids) = task.children() {
                any_file = true;
                children.extend(pids);
            }
        }
        any_file.then_some(children)
    }

    /// Whether the process's fd directory can be listed (it cannot for another user's process unless root).
    pub(crate) fn fds_readable(pid: u32) -> bool {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok()
    }

    /// Tallies the TCP sockets in `owned` from the tables of `root`'s network namespace.
    pub(crate) fn tcp_tally(root: u32, owned: &HashSet<u64>) -> TcpTally {
        let Some(process) = i32::try_from(root).ok().and_then(|p| Process::new(p).ok()) else {
            return TcpTally::default();
        };
        let rows = [process.tcp(), process.tcp6()]
            .into_iter()
            .flat_map(Result::unwrap_or_default)
            .map(|entry| (kind_of(entry.state), entry.inode));
        tally_owned(rows, owned)
    }

    fn kind_of(state: TcpState) -> TcpKind {
        match state {
            TcpState::Established => TcpKind::Established,
            TcpState::CloseWait => TcpKind::CloseWait,
            TcpState::Listen => TcpKind::Listen,
            _ => TcpKind::Other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod elsewhere {
    use super::{ProcessExtras, TcpTally};
    use std::collections::HashSet;

    /// Nothing beyond the portable metrics is read here (see [`super::UNAVAILABLE_COLUMNS`]).
    pub(crate) fn read_extras(_pid: u32, _detailed: bool) -> Option<ProcessExtras> {
        Some(ProcessExtras::default())
    }

    /// No cheap child listing: the tree is found from every process's parent.
    pub(crate) fn children(_pid: u32) -> Option<Vec<u32>> {
        None
    }

    /// There is no fd directory to check.
    pub(crate) fn fds_readable(_pid: u32) -> bool {
        true
    }

    /// TCP states are not read on this platform.
    pub(crate) fn tcp_tally(_root: u32, _owned: &HashSet<u64>) -> TcpTally {
        TcpTally::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_only_owned_inodes_once() {
        use TcpKind::*;
        let table = [
            (Established, 11),
            (CloseWait, 12),
            (Listen, 13),
            (Other, 0),
            (Established, 99),
        ];
        let owned = HashSet::from([11, 12, 13, 0]);
        let tally = tally_owned(table.iter().chain(table.iter()).copied(), &owned);
        assert_eq!(
            tally,
            TcpTally {
                established: 1,
                close_wait: 1,
                listen: 1,
                other: 0
            }
        );
        assert_eq!(tally.total(), 3);
    }
}
