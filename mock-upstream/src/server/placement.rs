//! Where a connection runs. Streams get a runtime of their own so that short requests are never queued
//! behind stream frames: at 10,000 open streams × 20 frames/s the frames alone can saturate the mock's
//! CPU, and on one shared runtime a `/v1/models` request woken behind thousands of ready stream tasks waits
//! for all of them (hundreds of milliseconds). On two runtimes the front one (accept loop, every
//! non-streaming request) stays idle enough that the OS scheduler runs it as soon as a request arrives,
//! while an overloaded stream runtime only makes stream frames late — token timing degrades, nothing else.
//!
//! The stream runtime's threads also run at a lower OS priority (nice +10): when both runtimes share one
//! core, the kernel then lets the front thread run as soon as it wakes instead of after a slice of the
//! busy stream thread.
//!
//! A connection starts on the front runtime; when a request turns into an SSE stream, the connection task
//! hands its hyper connection over to the stream runtime (see `ConnControl::move_to_streams`), and moves
//! back when the stream ends, so a keep-alive connection's later plain requests are prompt again.

use std::future::Future;
use std::io;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// One of the two runtimes a connection can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Accept loop, plain requests, admin.
    Front,
    /// Connections playing an SSE stream.
    Streams,
}

/// Spawns connection tasks on either runtime, all tracked for the graceful drain.
#[derive(Clone)]
pub(crate) struct Places {
    front: Handle,
    streams: Option<Handle>,
    tracker: TaskTracker,
}

impl Places {
    /// The current runtime as the front one, and `streams` (if it could be started) for streams.
    pub(crate) fn new(streams: Option<&StreamRuntime>, tracker: TaskTracker) -> Self {
        Places {
            front: Handle::current(),
            streams: streams.map(|runtime| runtime.handle.clone()),
            tracker,
        }
    }

    /// Whether there is a runtime at `place` (no stream runtime when its thread could not start).
    pub(crate) fn has(&self, place: Place) -> bool {
        self.handle(place).is_some()
    }

    /// Run `task` at `place` (on the front runtime when there is no runtime there).
    pub(crate) fn spawn(&self, place: Place, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.handle(place).unwrap_or(&self.front);
        self.tracker.spawn_on(task, handle);
    }

    fn handle(&self, place: Place) -> Option<&Handle> {
        match place {
            Place::Front => Some(&self.front),
            Place::Streams => self.streams.as_ref(),
        }
    }
}

/// How much nicer (lower OS priority) the stream threads run than the process.
const STREAM_NICENESS: i32 = 10;

/// The stream runtime: as many worker threads as the front runtime has (one when the mock is pinned to one
/// CPU), stopped when dropped.
pub(crate) struct StreamRuntime {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl StreamRuntime {
    /// Start the stream runtime next to the current (front) runtime.
    pub(crate) fn start() -> io::Result<Self> {
        let runtime = match Handle::current().runtime_flavor() {
            RuntimeFlavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .thread_name("mock-streams")
        .on_thread_start(lower_priority)
        // Connections arriving from the front runtime (new streams) come through the global queue: take it
        // first, so under overload a new stream's first frames are not queued behind every late frame of
        // the streams already playing (its time to first token stays short; old streams absorb the delay).
        .global_queue_interval(1)
        .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("mock-streams".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Connections still open here belong to a mock that is gone: drop them without waiting.
                runtime.shutdown_background();
            })?;
        Ok(StreamRuntime {
            handle,
            _stop: stop,
        })
    }
}

/// Lower the calling thread's priority by [`STREAM_NICENESS`] (Linux applies `setpriority` with a thread id
/// to that thread alone). Best effort: without it, streams still cannot queue ahead of plain requests.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    let nicer = (current + STREAM_NICENESS).min(19);
    if let Err(err) = rustix::process::setpriority_process(Some(thread), nicer) {
        tracing::debug!(%err, "could not lower the stream thread's priority");
    }
}
