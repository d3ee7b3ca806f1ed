//! Load threads: one single-threaded tokio runtime per core, each running its share of the load.
//!
//! Why not the caller's multi-threaded runtime: on the hot path, work stealing and cross-thread wake-ups cost
//! more than they give when every worker already has plenty of connections to drive. A current-thread runtime
//! per core keeps each connection, its tasks and its recorder shard on one thread. The number of threads follows
//! the CPUs this process may run on (so `taskset -c 0 harness ...` gives one).

use std::future::Future;
use std::time::{Duration, Instant};
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

/// How busy the calling thread is: the share of wall time it spent on a CPU or runnable, waiting for one.
///
/// Why: when the open model runs short of in-flight slots, a slot stays busy either because the target is slow
/// or because the load thread itself cannot process responses fast enough. A thread busy nearly all the time
/// is the generator's bottleneck; a mostly idle one is waiting for the target. Linux only (`schedstat`);
/// elsewhere there is no figure.
pub(crate) struct ThreadBusy {
    wall_start: Instant,
    busy_start: Option<Duration>,
}

impl ThreadBusy {
    /// Starts measuring the calling thread.
    pub(crate) fn start() -> Self {
        ThreadBusy {
            wall_start: Instant::now(),
            busy_start: thread_busy_time(),
        }
    }

    /// Busy share since the start in ‰ (must be called on the same thread).
    pub(crate) fn permille(&self) -> Option<u64> {
        let busy = thread_busy_time()?.checked_sub(self.busy_start?)?;
        let wall = self.wall_start.elapsed().as_secs_f64();
        (wall > 0.0).then(|| (1000.0 * busy.as_secs_f64() / wall).round() as u64)
    }
}

/// The calling thread's time on a CPU plus its time runnable in the run queue.
fn thread_busy_time() -> Option<Duration> {
    parse_schedstat(&std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)
}

/// `schedstat`: nanoseconds on the CPU, nanoseconds waiting in the run queue, time slices.
fn parse_schedstat(text: &str) -> Option<Duration> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let (on_cpu, waiting) = (fields.next()?.ok()?, fields.next()?.ok()?);
    Some(Duration::from_nanos(on_cpu.saturating_add(waiting)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_is_cpu_plus_run_queue_time() {
        let cases = [
            ("106377 118210 2\n", Some(Duration::from_nanos(224_587))),
            ("5 0 1", Some(Duration::from_nanos(5))),
            ("", None),
            ("12", None),
            ("x 1 2", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_schedstat(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_spinning_thread_is_busy() {
        let meter = ThreadBusy::start();
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        if let Some(permille) = meter.permille() {
            assert!(permille > 900, "{permille}");
        }
    }
}
