//! Attach mode: a proxy started elsewhere, known by URL and optionally PID (watched through `/proc`).

use super::{ExitInfo, Sut};
use crate::cli::RunArgs;
use crate::error::HarnessError;
use std::time::Duration;
use tokio::sync::watch;

/// How often an attached proxy's PID is checked.
const ATTACH_POLL: Duration = Duration::from_millis(200);

/// Polls `/proc/PID` until the process is gone (or nobody listens any more).
pub(super) fn poll_exit(pid: u32) -> watch::Receiver<Option<ExitInfo>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        while !tx.is_closed() {
            if !process_alive(pid) {
                let _ = tx.send(Some(ExitInfo {
                    code: None,
                    signal: None,
                }));
                break;
            }
            tokio::time::sleep(ATTACH_POLL).await;
        }
    });
    rx
}

/// Whether `pid` exists and is not a zombie (a dead child its parent has not reaped yet).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Attach mode: use `target` as is; the PID (if any) comes from `--proxy-pid` or `--proxy-pid-file`.
pub(super) fn attach(target: &str, args: &RunArgs) -> Result<Sut, HarnessError> {
    let pid = match (&args.proxy_pid, &args.proxy_pid_file) {
        (Some(pid), _) => Some(*pid),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                HarnessError::BadInput(format!("--proxy-pid-file {}: {e}", file.display()))
            })?;
            let pid = text.trim().parse::<u32>().map_err(|_| {
                HarnessError::BadInput(format!(
                    "--proxy-pid-file {}: {:?} is not a PID",
                    file.display(),
                    text.trim()
                ))
            })?;
            Some(pid)
        }
        (None, None) => None,
    };
    if let Some(pid) = pid {
        if !process_alive(pid) {
            return Err(HarnessError::BadInput(format!(
                "--proxy-pid {pid}: no such process"
            )));
        }
    }
    Ok(Sut {
        target: target.trim_end_matches('/').to_string(),
        pid,
        upstream_url: None,
        process: None,
        mock: None,
        mock_config: None,
        shutdown_timeout: Duration::ZERO,
        _keys_file: None,
    })
}
