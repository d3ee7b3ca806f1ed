//! Load threads: one single-threaded tokio runtime per core, each running its share of the load.
//!
//! Why not the caller's multi-threaded runtime: on the hot path, work stealing and cross-thread wake-ups cost
//! more than they give when every worker already has plenty of connections to drive. A current-thread runtime
//! per core keeps each connection, its tasks and its recorder shard on one thread. The number of threads follows
//! the CPUs this process may run on (so `taskset -c 0 harness ...` gives one).

use std::future::Future;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which share of the load a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Worker {
    /// 0-based index, also the worker's recorder shard.
    pub(crate) index: usize,
    /// Number of workers.
    pub(crate) count: usize,
}

impl Worker {
    /// Whether item `n` of a sequence shared round-robin by the workers (user, arrival) is this worker's.
    pub(crate) fn owns(self, n: u64) -> bool {
        n % self.count as u64 == self.index as u64
    }
}

/// Load threads to start: the CPUs available to this process.
pub(crate) fn count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts `count` workers, each on its own thread and current-thread runtime, running `make(worker)`. The
/// returned task (on the caller's runtime) ends when every worker has ended. A worker whose thread or runtime
/// cannot be created runs on the caller's runtime instead.
pub(crate) fn spawn<F, M>(count: usize, make: M) -> JoinHandle<()>
where
    M: Fn(Worker) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut done = Vec::with_capacity(count);
    for index in 0..count {
        let work = make(Worker { index, count });
        done.push(on_own_thread(index, work));
    }
    tokio::spawn(async move {
        for worker in done {
            let _ = worker.await;
        }
    })
}

/// Runs `work` on a new thread with its own runtime (or, failing that, on the caller's runtime); resolves when
/// it ends.
fn on_own_thread<F>(index: usize, work: F) -> oneshot::Receiver<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (ended, ended_rx) = oneshot::channel();
    let (hand_over, handed) = std::sync::mpsc::channel::<F>();
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            std::thread::Builder::new()
                .name(format!("harness-load-{index}"))
                .spawn(move || {
                    if let Ok(work) = handed.recv() {
                        runtime.block_on(work);
                    }
                    // Dropping the runtime closes the worker's connections before the end is reported.
                    drop(runtime);
                    let _ = ended.send(());
                })
        });
    match started {
        Ok(_) => {
            // The thread holds the receiver until it has received: the send cannot fail.
            let _ = hand_over.send(work);
            ended_rx
        }
        Err(e) => {
            tracing::warn!("load worker {index}: no thread of its own ({e}), sharing the caller's");
            let (ended, ended_rx) = oneshot::channel();
            tokio::spawn(async move {
                work.await;
                let _ = ended.send(());
            });
            ended_rx
        }
    }
}
