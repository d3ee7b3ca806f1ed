//! The proxy as a child process: own process group, output to `proxy.log`, exit watching, SIGTERM → SIGKILL.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, watch};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Terminating signal, when killed.
    pub signal: Option<i32>,
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => {
                let name = Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?");
                write!(f, "killed by signal {s} ({name})")
            }
            (None, None) => write!(f, "unknown exit"),
        }
    }
}

impl From<std::process::ExitStatus> for ExitInfo {
    fn from(s: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ExitInfo {
            code: s.code(),
            signal: s.signal(),
        }
    }
}

/// Longest wait, after the process ended, for its stdout to reach the log (a grandchild may hold the pipe open).
const STDOUT_DRAIN: Duration = Duration::from_secs(1);

/// A running (or exited) proxy child process.
pub struct ProxyProcess {
    pid: u32,
    exited: watch::Receiver<Option<ExitInfo>>,
    listening: Option<oneshot::Receiver<String>>,
    /// Turns true when the child's stdout has been copied to its end (EOF).
    stdout_copied: watch::Receiver<bool>,
    log: PathBuf,
}

impl ProxyProcess {
    /// Starts `command` (program + args) in its own process group, with stdout and stderr appended to `log`.
    /// The first stdout line `listening on URL` is reported through [`ProxyProcess::listening_url`].
    pub fn spawn(
        command: &[String],
        env: &[(String, String)],
        cwd: Option<&Path>,
        log: &Path,
    ) -> std::io::Result<Self> {
        let (program, args) = command.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty proxy command")
        })?;
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file.try_clone()?))
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or_default();
        let (url_tx, url_rx) = oneshot::channel();
        let (copied_tx, copied_rx) = watch::channel(false);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(async move {
                copy_stdout(stdout, tokio::fs::File::from_std(log_file), url_tx).await;
                let _ = copied_tx.send(true);
            });
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            let info = child.wait().await.map(ExitInfo::from).unwrap_or(ExitInfo {
                code: None,
                signal: None,
            });
            let _ = exit_tx.send(Some(info));
        });
        Ok(ProxyProcess {
            pid,
            exited: exit_rx,
            listening: Some(url_rx),
            stdout_copied: copied_rx,
            log: log.to_path_buf(),
        })
    }

    /// Process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Watch channel that turns `Some` when the process exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exited.clone()
    }

    /// The URL of the first `listening on URL` stdout line, if it comes within `timeout` (and before exit).
    pub async fn listening_url(&mut self, timeout: Duration) -> Option<String> {
        let rx = self.listening.take()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// SIGTERM to the process group, wait up to `grace`, then SIGKILL. Returns how it ended, once what the
    /// process wrote to stdout is in the log (waiting at most `STDOUT_DRAIN`), so a log tail read afterwards
    /// has its last lines.
    pub async fn shutdown(&self, grace: Duration) -> Option<ExitInfo> {
        let ended = self.end(grace).await;
        let mut copied = self.stdout_copied.clone();
        let _ = tokio::time::timeout(STDOUT_DRAIN, copied.wait_for(|done| *done)).await;
        ended
    }

    async fn end(&self, grace: Duration) -> Option<ExitInfo> {
        let mut exited = self.exited.clone();
        if let Some(info) = *exited.borrow() {
            return Some(info);
        }
        let group = Pid::from_raw(self.pid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        if let Ok(Ok(info)) = tokio::time::timeout(grace, exited.wait_for(Option::is_some)).await {
            return *info;
        }
        tracing::warn!(
            pid = self.pid,
            "proxy ignored SIGTERM for {grace:?}; sending SIGKILL"
        );
        let _ = killpg(group, Signal::SIGKILL);
        let waited =
            tokio::time::timeout(Duration::from_secs(5), exited.wait_for(Option::is_some)).await;
        waited.ok().and_then(|r| r.ok().and_then(|i| *i))
    }
}

async fn copy_stdout(
    stdout: tokio::process::ChildStdout,
    mut log: tokio::fs::File,
    url_tx: oneshot::Sender<String>,
) {
    let mut lines = BufReader::new(stdout).lines();
    let mut url_tx = Some(url_tx);
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(url) = line.strip_prefix("listening on ") {
            if let Some(tx) = url_tx.take() {
                let _ = tx.send(url.trim().to_string());
            }
        }
        let _ = log.write_all(format!("{line}\n").as_bytes()).await;
        let _ = log.flush().await;
    }
}

/// The last `lines` lines of a log file (empty when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
