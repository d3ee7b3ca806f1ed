//! Why and when a run stops early: Ctrl-C / SIGTERM (from the very start, so an interrupted start-up still
//! cleans up the proxy) and the proxy exiting during the load. Each records its cause and fires the stop token.
//! A deadline shortly after the run time fires it too (cause: completed), so a generator that fell behind its
//! open-model schedule ends on time and its backlog counts as dropped instead of stretching the run.

use super::verdict::StopCause;
use crate::sut::Sut;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The run's stop token and the watchers that fire it.
pub struct Stop {
    token: CancellationToken,
    cause: Arc<Mutex<StopCause>>,
    watchers: JoinSet<()>,
}

impl Stop {
    /// Starts watching for SIGINT / SIGTERM.
    pub fn new() -> Stop {
        let mut stop = Stop {
            token: CancellationToken::new(),
            cause: Arc::new(Mutex::new(StopCause::Completed)),
            watchers: JoinSet::new(),
        };
        let (token, cause) = (stop.token.clone(), stop.cause.clone());
        stop.watchers.spawn(async move {
            if wait_for_signal().await {
                record(&cause, StopCause::Interrupted);
                token.cancel();
            }
        });
        stop
    }

    /// Also stops when the proxy exits (spawned: its exit status; attached with a PID: its disappearance).
    pub fn watch_proxy(&mut self, sut: &Sut) {
        let Some(mut exited) = sut.exit_watch() else {
            return;
        };
        let (token, cause) = (self.token.clone(), self.cause.clone());
        self.watchers.spawn(async move {
            if let Ok(info) = exited.wait_for(Option::is_some).await {
                if let Some(info) = *info {
                    record(&cause, StopCause::Crashed(info));
                    token.cancel();
                }
            }
        });
    }

    /// Ends the load at `at` (the load's start + run time + a grace) whatever the engine's schedule says;
    /// the cause stays "completed".
    pub fn end_load_at(&mut self, at: std::time::Instant) {
        let token = self.token.clone();
        self.watchers.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            token.cancel();
        });
    }

    /// The token the engine stops on.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Stops watching (our own shutdown of the proxy must not look like a crash) and returns the cause.
    pub fn finish(mut self) -> StopCause {
        self.watchers.abort_all();
        *self.cause.lock()
    }
}

/// The first cause wins.
fn record(cause: &Mutex<StopCause>, c: StopCause) {
    let mut slot = cause.lock();
    if *slot == StopCause::Completed {
        *slot = c;
    }
}

/// Resolves on SIGINT or SIGTERM (true), or never if the handlers cannot be installed.
async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => true,
                _ = term.recv() => true,
            }
        }
        _ => {
            tracing::warn!(
                "cannot install signal handlers; Ctrl-C will kill the harness without results"
            );
            std::future::pending().await
        }
    }
}
