//! The load engine: drives the closed or open model against the target and records every outcome.
//!
//! Why its own threads: the load runs on one single-threaded tokio runtime per core (`workers`), each with its
//! share of the users (closed model) or arrivals (open model), their connections and its own
//! [`load_stats::Recorder`] shard — no work stealing, no cross-thread wake-ups, and a shard mutex that only the
//! once-per-second take ever contends for. The run loop takes the shards' deltas once per second, merged into
//! one delta while the shards keep their allocations (memory stays flat). The engine owns its timing: it stops by
//! itself at the run time, or earlier when the stop token fires (Ctrl-C, proxy crash). At the stop, worker tasks
//! are aborted: requests still in flight are dropped unrecorded (as Locust does), and the hot path needs no
//! per-request stop check.

mod closed;
mod lateness;
mod mix;
mod open;
pub mod schedule;
mod tally;
mod workers;

pub use lateness::{BUSY_THREAD_PERCENT, LATE_AFTER};
pub use mix::{Mix, MixError, TagFilter};
pub use tally::{Observed, Tally, KEY_USED_HEADER, MAX_REPORTED_KEYS, OTHER_KEYS};

use crate::http::{Connection, Exchange};
use crate::scenario::LoadSpec;
use load_stats::{Recorder, StatsDelta};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A span of the load clock whose requests are counted by send time with their answer times (a timeline
/// window some behaviour check judges; see [`Observed::span_answers`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatchedSpan {
    /// The timeline window's index (the key in [`Observed::span_answers`]).
    pub window: usize,
    /// Start, since the start of the load.
    pub from: Duration,
    /// End (exclusive).
    pub to: Duration,
}

/// Live counters the run loop and progress line read.
#[derive(Debug, Default)]
pub struct Counters {
    /// Active users (closed model).
    pub users: AtomicU32,
    /// Requests in flight.
    pub in_flight: AtomicU32,
    /// Open model: sends that left more than [`LATE_AFTER`] after their intended time for the generator's own
    /// reasons (timer or runtime lag while an in-flight slot was free).
    pub late: AtomicU64,
    /// Open model: arrivals that were due but never sent because the generator fell behind (backlog when the
    /// run stopped; also those left waiting for a slot by a load thread too busy to keep up).
    pub dropped: AtomicU64,
    /// Open model: sends that waited more than [`LATE_AFTER`] for a free in-flight slot (`max_in_flight`
    /// reached: the target is the bottleneck).
    pub slot_late: AtomicU64,
    /// Open model: arrivals never sent because every in-flight slot stayed busy until the run stopped while the
    /// load thread kept up (the target's); each is also recorded as a failed request.
    pub slot_dropped: AtomicU64,
    /// Open model: the busiest load thread's share of the run on a CPU or waiting for one, in ‰ (0 when not
    /// measurable).
    pub busiest_thread_permille: AtomicU64,
    /// Requests dispatched (a request dispatched just before the stop may be aborted before it leaves).
    pub sent: AtomicU64,
    /// Requests completed (recorded).
    pub completed: AtomicU64,
    /// Completed requests that were not successes.
    pub failed: AtomicU64,
}

/// State shared by every worker task.
pub(crate) struct Shared {
    pub(crate) mix: Mix,
    /// Connections keep-alive between requests.
    pub(crate) keep_alive: bool,
    /// Per-request timeout (connect, headers and body).
    timeout: Duration,
    shards: Vec<Mutex<Recorder>>,
    tallies: Vec<Mutex<Tally>>,
    pub(crate) counters: Arc<Counters>,
    /// Fires when the engine must stop (run time over, or the caller's stop token).
    pub(crate) stop: CancellationToken,
    /// The load clock's origin.
    started: Instant,
    /// Spans whose requests are counted by send time.
    watched: Vec<WatchedSpan>,
}

impl Shared {
    /// Sends one request on the worker's connection `conn` and records its outcome in shard `shard` (the
    /// worker's index).
    pub(crate) async fn send(
        &self,
        conn: &mut Connection,
        shard: usize,
        pick: (usize, usize),
        origin: std::time::Instant,
    ) {
        let req = &self.mix.requests()[pick.0];
        let mut gaps = Vec::new();
        let in_flight = InFlight::enter(&self.counters);
        let watched = self.watched_window(origin);
        if let Some(window) = watched {
            self.tallies[shard].lock().sent_in(window);
        }
        let ex = conn
            .exchange(req, pick.1, origin, self.timeout, &mut gaps)
            .await;
        drop(in_flight);
        self.record(shard, req, &ex, &gaps, watched);
    }

    /// The watched window a request sent at `origin` belongs to, if any.
    fn watched_window(&self, origin: Instant) -> Option<usize> {
        if self.watched.is_empty() {
            return None;
        }
        let at = origin.saturating_duration_since(self.started);
        self.watched
            .iter()
            .find(|span| span.from <= at && at < span.to)
            .map(|span| span.window)
    }

    /// Records an arrival that was never sent (every in-flight slot stayed busy until the run stopped) as a
    /// failed request of `pick`'s name that waited `waited`, so thresholds judge it like any other failure.
    pub(crate) fn record_never_sent(
        &self,
        shard: usize,
        pick: (usize, usize),
        waited: Duration,
        why: &str,
    ) {
        let req = &self.mix.requests()[pick.0];
        let outcome = load_stats::Outcome {
            name: &req.name,
            method: req.method.as_str(),
            result: load_stats::OutcomeResult::Error(load_stats::ErrorClass::Other, why),
            success: false,
            latency: waited,
            bytes: 0,
            stream: None,
        };
        self.shards[shard].lock().record(&outcome);
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn record(
        &self,
        shard: usize,
        req: &crate::http::PreparedRequest,
        ex: &Exchange,
        gaps: &[Duration],
        watched: Option<usize>,
    ) {
        {
            let mut rec = self.shards[shard].lock();
            rec.record(&ex.outcome(req));
            for gap in gaps {
                rec.record_chunk_gap(&req.name, *gap);
            }
        }
        if let Some(window) = watched {
            self.tallies[shard].lock().answered_in(window, ex.latency);
        }
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        if !ex.success {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ttft = ex.stream.as_ref().and_then(|s| s.ttft);
        if ex.key_used.is_some() || ttft.is_some() {
            let mut tally = self.tallies[shard].lock();
            if let Some(key) = &ex.key_used {
                tally.key_used(key);
            }
            if let Some(ttft) = ttft {
                tally.stream(ttft, ex.latency);
            }
        }
    }
}

impl Shared {
    /// The shards' records since the last take, merged; the shards keep their allocations for the next second.
    fn take(&self) -> StatsDelta {
        let mut delta = StatsDelta::new();
        for shard in &self.shards {
            shard.lock().drain_into(&mut delta);
        }
        delta
    }

    fn observed(&self) -> Observed {
        let tallies: Vec<_> = self.tallies.iter().map(|t| t.lock()).collect();
        Observed::merge(tallies.iter().map(|t| &**t))
    }
}

/// Counts a request in flight for as long as it lives (also when its task is aborted at the stop).
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running engine.
pub struct EngineHandle {
    shared: Arc<Shared>,
    driver: tokio::task::JoinHandle<()>,
}

impl EngineHandle {
    /// Everything recorded since the last call (one delta: the shards merged).
    pub fn take_deltas(&self) -> Vec<StatsDelta> {
        vec![self.shared.take()]
    }

    /// Client-side behaviour observations so far (reported keys, stream samples), merged over the shards.
    pub fn observed(&self) -> Observed {
        self.shared.observed()
    }

    /// Live counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The live counters, shared (they outlive the handle).
    pub fn counters_handle(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// Whether the engine has stopped (run time over or stopped).
    pub fn is_finished(&self) -> bool {
        self.driver.is_finished()
    }

    /// Resolves when the engine stops (run time over, or the caller's stop token fired).
    pub async fn stopped(&self) {
        self.shared.stop.cancelled().await;
    }

    /// Waits until every worker has ended; returns what they recorded since the last take, and the
    /// behaviour observations of the whole run.
    pub async fn join(self) -> (Vec<StatsDelta>, Observed) {
        let EngineHandle { shared, driver } = self;
        let _ = driver.await;
        (vec![shared.take()], shared.observed())
    }
}

/// What to run.
pub struct EngineConfig {
    /// The selected request mix.
    pub mix: Mix,
    /// Load model (after CLI overrides).
    pub load: LoadSpec,
    /// Seed of the request mix and think times.
    pub seed: u64,
    /// Spans whose requests are counted by send time with their answer times.
    pub watched: Vec<WatchedSpan>,
}

/// Starts the engine: one load thread per core (see `workers`); it stops at the run time or when `stop`
/// fires. Must be called within a tokio runtime (the handle's waits run there).
pub fn start(config: EngineConfig, stop: &CancellationToken) -> EngineHandle {
    let (keep_alive, timeout) = match &config.load {
        LoadSpec::Closed(c) => (c.keep_alive, c.timeout),
        LoadSpec::Open(o) => (o.keep_alive, o.timeout),
    };
    let count = workers::count();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        mix: config.mix,
        keep_alive,
        timeout,
        shards: (0..count).map(|_| Mutex::new(Recorder::new())).collect(),
        tallies: (0..count).map(|_| Mutex::new(Tally::default())).collect(),
        counters: Arc::new(Counters::default()),
        stop: stop.child_token(),
        started: start,
        watched: config.watched,
    });
    let in_flight_slots = match &config.load {
        LoadSpec::Open(o) => o.max_in_flight as usize,
        LoadSpec::Closed(_) => 0,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(in_flight_slots));
    let driver = workers::spawn(count, |worker| {
        let (shared, load, slots) = (shared.clone(), config.load.clone(), slots.clone());
        async move {
            match load {
                LoadSpec::Closed(c) => closed::drive(shared, c, config.seed, worker, start).await,
                LoadSpec::Open(o) => {
                    open::drive(shared, o, config.seed, worker, start, slots).await
                }
            }
        }
    });
    EngineHandle { shared, driver }
}

/// A seeded RNG for stream `stream` (user index; 0 for the open-model scheduler).
pub(crate) fn rng_for(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Sleeps for `d` unless `stop` fires first; returns false when stopped.
pub(crate) async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = stop.cancelled() => false,
    }
}
