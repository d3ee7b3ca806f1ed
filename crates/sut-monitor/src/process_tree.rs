//! Reading one snapshot of a process and all its descendants from `/proc`.
//!
//! Why a tree: a Python proxy under uvicorn/gunicorn is a master plus workers, and a leak in a worker is still a
//! leak of the system under test. Why not sysinfo: refreshing sysinfo walks every process on the machine; here
//! only the watched PIDs are read, plus — on kernels without `/proc/PID/task/TID/children`
//! (`CONFIG_PROC_CHILDREN`) — one `stat` read per process to find parents, which is the cheapest way left.
//!
//! Processes that vanish between discovery and reading are skipped silently: that race is normal for a tree.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::procfs_text::{parse_rss_anon, parse_stat, parse_tcp_table, socket_inode, ProcStat};

/// One process of the tree as read at one instant.
#[derive(Debug, Clone)]
pub(crate) struct ProcessReading {
    /// The process id.
    pub pid: u32,
    /// Its parsed `stat` line.
    pub stat: ProcStat,
    /// `RssAnon` in bytes (0 when the kernel does not report it).
    pub rss_anon_bytes: u64,
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

impl TcpTally {
    /// All owned TCP sockets.
    pub fn total(&self) -> u64 {
        self.established + self.close_wait + self.listen + self.other
    }

    fn count(&mut self, state: u8) {
        match state {
            0x01 => self.established += 1,
            0x08 => self.close_wait += 1,
            0x0A => self.listen += 1,
            _ => self.other += 1,
        }
    }
}

/// Counts the rows of TCP tables whose inode is owned by the tree (each inode once, even if shared by workers).
pub(crate) fn tally_owned(tables: &[String], owned: &HashSet<u64>) -> TcpTally {
    let mut tally = TcpTally::default();
    let mut seen = HashSet::new();
    for row in tables.iter().flat_map(|t| parse_tcp_table(t)) {
        if row.inode != 0 && owned.contains(&row.inode) && seen.insert(row.inode) {
            tally.count(row.state);
        }
    }
    tally
}

/// What reading the tree found.
#[derive(Debug)]
pub(crate) enum TreeState {
    /// The root is alive; readings root first, then descendants.
    Alive(Vec<ProcessReading>),
    /// The root exited, became a zombie, or its PID now belongs to another process.
    Gone,
}

/// A watched root process, identified by PID and start time so PID reuse is noticed.
#[derive(Debug)]
pub(crate) struct ProcessTree {
    root: u32,
    root_start_ticks: u64,
    proc_dir: PathBuf,
    /// Descendants found by the last discovery (reused between rescans).
    descendants: Vec<u32>,
}

impl ProcessTree {
    /// Attaches to a live process. `None` when it does not exist or is already gone.
    pub fn attach(root: u32) -> Option<Self> {
        let proc_dir = PathBuf::from("/proc");
        let stat = read_stat(&proc_dir, root)?;
        (!stat.is_gone()).then_some(Self {
            root,
            root_start_ticks: stat.start_ticks,
            proc_dir,
            descendants: Vec::new(),
        })
    }

    /// The root PID.
    pub fn root(&self) -> u32 {
        self.root
    }

    /// Reads the root and its live descendants. A `detailed` reading also looks the descendants up afresh and
    /// resolves every fd to find the sockets; otherwise the last descendant list is reused (children that exited
    /// since are skipped, new ones wait for the next detailed reading) and fds are only counted. Discovery may
    /// mean reading every process's `stat`, and resolving costs a syscall per fd: too much for every sample.
    pub fn read(&mut self, detailed: bool) -> TreeState {
        let Some(root) = self.read_process(self.root, detailed) else {
            return TreeState::Gone;
        };
        if root.stat.is_gone() || root.stat.start_ticks != self.root_start_ticks {
            return TreeState::Gone;
        }
        if detailed {
            self.descendants = self.discover();
        }
        let mut readings = vec![root];
        for &pid in &self.descendants {
            if let Some(reading) = self
                .read_process(pid, detailed)
                .filter(|r| !r.stat.is_gone())
            {
                readings.push(reading);
            }
        }
        TreeState::Alive(readings)
    }

    /// Reads the TCP tables of the root's network namespace.
    pub fn tcp_tables(&self) -> Vec<String> {
        ["tcp", "tcp6"]
            .iter()
            .filter_map(|name| read_in_one_go(&self.pid_dir(self.root).join("net").join(name)).ok())
            .collect()
    }

    /// Whether the root's fd directory can be listed (it cannot for another user's process unless root).
    pub fn fds_readable(&self) -> bool {
        fs::read_dir(self.pid_dir(self.root).join("fd")).is_ok()
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.proc_dir.join(pid.to_string())
    }

    fn read_process(&self, pid: u32, detailed: bool) -> Option<ProcessReading> {
        let stat = read_stat(&self.proc_dir, pid)?;
        let dir = self.pid_dir(pid);
        let rss_anon_bytes = fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|s| parse_rss_anon(&s))
            .unwrap_or(0);
        let (fds, socket_inodes) = if detailed {
            read_fds(&dir.join("fd"))
        } else {
            (count_fds(&dir.join("fd")), Vec::new())
        };
        Some(ProcessReading {
            pid,
            stat,
            rss_anon_bytes,
            fds,
            socket_inodes,
        })
    }

    /// All descendants of the root (not including it).
    fn discover(&self) -> Vec<u32> {
        match self.children_via_task_files(self.root) {
            Some(_) => self.walk(|pid| self.children_via_task_files(pid).unwrap_or_default()),
            None => {
                let parents = scan_parents(&self.proc_dir);
                self.walk(|pid| parents.get(&pid).cloned().unwrap_or_default())
            }
        }
    }

    fn walk(&self, children_of: impl Fn(u32) -> Vec<u32>) -> Vec<u32> {
        let mut found = Vec::new();
        let mut queue = vec![self.root];
        let mut seen = HashSet::from([self.root]);
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

    /// Children listed in `/proc/PID/task/*/children`; `None` when the kernel lacks those files.
    fn children_via_task_files(&self, pid: u32) -> Option<Vec<u32>> {
        let tasks = fs::read_dir(self.pid_dir(pid).join("task")).ok()?;
        let mut children = Vec::new();
        let mut any_file = false;
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                any_file = true;
                children.extend(
                    text.split_ascii_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
        any_file.then_some(children)
    }
}

/// Reads a `/proc` file with a large buffer. Why: every `read()` of `/proc/net/tcp` restarts the kernel's walk of
/// its socket hash table from the last position (or from scratch), and `read_to_string` starts with tiny reads;
/// a 256 KiB buffer takes the whole table in one or two calls.
fn read_in_one_go(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    const CHUNK: usize = 256 * 1024;
    let mut file = fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(CHUNK);
    loop {
        let len = bytes.len();
        bytes.resize(len + CHUNK, 0);
        let n = file.read(&mut bytes[len..])?;
        bytes.truncate(len + n);
        if n == 0 {
            break;
        }
    }
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

fn read_stat(proc_dir: &Path, pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text)
}

/// Counts the fds of one process: one `stat` on Linux ≥ 6.2 (the fd directory's size is the count), else a
/// directory listing.
fn count_fds(fd_dir: &Path) -> u64 {
    match fs::metadata(fd_dir) {
        Ok(meta) if meta.len() > 0 => meta.len(),
        _ => fs::read_dir(fd_dir).map_or(0, |entries| entries.count() as u64),
    }
}

/// Counts the fds of one process and collects its socket inodes (one `readlink` per fd).
fn read_fds(fd_dir: &Path) -> (u64, Vec<u64>) {
    let Ok(entries) = fs::read_dir(fd_dir) else {
        return (0, Vec::new());
    };
    let mut count = 0;
    let mut sockets = Vec::new();
    for entry in entries.flatten() {
        count += 1;
        if let Ok(target) = fs::read_link(entry.path()) {
            if let Some(inode) = target.to_str().and_then(socket_inode) {
                sockets.push(inode);
            }
        }
    }
    (count, sockets)
}

/// Parent → children map from every `/proc/PID/stat` (the fallback when children files are absent).
fn scan_parents(proc_dir: &Path) -> HashMap<u32, Vec<u32>> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = fs::read_dir(proc_dir) else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_stat(proc_dir, pid) {
            parents.entry(stat.ppid).or_default().push(pid);
        }
    }
    parents
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
    fn tally_counts_only_owned_inodes_once() {
        let table = "header\n\
            0: A B 01 0:0 0:0 0 0 0 11 1\n\
            1: A B 08 0:0 0:0 0 0 0 12 1\n\
            2: A B 0A 0:0 0:0 0 0 0 13 1\n\
            3: A B 06 0:0 0:0 0 0 0 0 1\n\
            4: A B 01 0:0 0:0 0 0 0 99 1\n"
            .to_string();
        let owned = HashSet::from([11, 12, 13, 0]);
        let tally = tally_owned(&[table.clone(), table], &owned);
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
                .map(|p| (p.fds, p.stat.rss_pages))
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
