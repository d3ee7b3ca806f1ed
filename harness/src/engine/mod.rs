//! The load engine: drives the closed or open model against the target and records every outcome.
//!
//! Outcomes go into sharded [`load_stats::Recorder`]s (one mutex per shard, so workers rarely contend); the run
//! loop takes their deltas once per second. The engine owns its timing: it stops by itself at the run time, or
//! earlier when the stop token fires (Ctrl-C, proxy crash). At the stop, worker tasks are aborted: requests
//! still in flight are dropped unrecorded (as Locust does), and the hot path needs no per-request stop check.

mod closed;
mod mix;
mod open;
pub mod schedule;
mod tally;

pub use mix::{Mix, MixError, TagFilter};
pub use tally::{Observed, Tally, KEY_USED_HEADER, MAX_REPORTED_KEYS, OTHER_KEYS};

use crate::http::{Exchange, HttpClient};
use crate::scenario::LoadSpec;
use load_stats::{Recorder, StatsDelta};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Live counters the run loop and progress line read.
#[derive(Debug, Default)]
pub struct Counters {
    /// Active users (closed model).
    pub users: AtomicU32,
    /// Requests in flight.
    pub in_flight: AtomicU32,
    /// Open model: sends that left later than [`LATE_AFTER`] after their intended time.
    pub late: AtomicU64,
    /// Open model: arrivals that were due but never sent (backlog when the run stopped).
    pub dropped: AtomicU64,
    /// Requests dispatched (a request dispatched just before the stop may be aborted before it leaves).
    pub sent: AtomicU64,
    /// Requests completed (recorded).
    pub completed: AtomicU64,
    /// Completed requests that were not successes.
    pub failed: AtomicU64,
}

/// Open model: a send this much after its intended time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// State shared by every worker task.
pub(crate) struct Shared {
    pub(crate) mix: Mix,
    clients: Vec<HttpClient>,
    shards: Vec<Mutex<Recorder>>,
    tallies: Vec<Mutex<Tally>>,
    pub(crate) counters: Arc<Counters>,
    /// Fires when the engine must stop (run time over, or the caller's stop token).
    pub(crate) stop: CancellationToken,
}

impl Shared {
    /// Sends one request on shard `shard`'s client and records its outcome there.
    pub(crate) async fn send(
        &self,
        shard: usize,
        pick: (usize, usize),
        origin: std::time::Instant,
    ) {
        let req = &self.mix.requests()[pick.0];
        let shard = shard % self.shards.len();
        let mut gaps = Vec::new();
        let in_flight = InFlight::enter(&self.counters);
        let ex = self.clients[shard]
            .exchange(req, pick.1, origin, &mut gaps)
            .await;
        drop(in_flight);
        self.record(shard, req, &ex, &gaps);
    }

    fn record(
        &self,
        shard: usize,
        req: &crate::http::PreparedRequest,
        ex: &Exchange,
        gaps: &[Duration],
    ) {
        {
            let mut rec = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
            rec.record(&ex.outcome(req));
            for gap in gaps {
                rec.record_chunk_gap(&req.name, *gap);
            }
        }
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        if !ex.success {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ttft = ex.stream.as_ref().and_then(|s| s.ttft);
        if ex.key_used.is_some() || ttft.is_some() {
            let mut tally = self.tallies[shard]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
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
    fn observed(&self) -> Observed {
        let tallies: Vec<_> = self
            .tallies
            .iter()
            .map(|t| t.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
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
    /// Everything recorded since the last call, one delta per shard.
    pub fn take_deltas(&self) -> Vec<StatsDelta> {
        self.shared
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take())
            .collect()
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
        let deltas = shared
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take())
            .collect();
        (deltas, shared.observed())
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
}

/// Starts the engine on the current tokio runtime; it stops at the run time or when `stop` fires.
pub fn start(config: EngineConfig, stop: &CancellationToken) -> EngineHandle {
    let (keep_alive, timeout) = match &config.load {
        LoadSpec::Closed(c) => (c.keep_alive, c.timeout),
        LoadSpec::Open(o) => (o.keep_alive, o.timeout),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shard_count = workers * 4;
    let shared = Arc::new(Shared {
        mix: config.mix,
        clients: (0..shard_count)
            .map(|_| HttpClient::new(keep_alive, timeout))
            .collect(),
        shards: (0..shard_count)
            .map(|_| Mutex::new(Recorder::new()))
            .collect(),
        tallies: (0..shard_count)
            .map(|_| Mutex::new(Tally::default()))
            .collect(),
        counters: Arc::new(Counters::default()),
        stop: stop.child_token(),
    });
    let driver = match config.load {
        LoadSpec::Closed(c) => tokio::spawn(closed::drive(shared.clone(), c, config.seed)),
        LoadSpec::Open(o) => tokio::spawn(open::drive(shared.clone(), o, config.seed)),
    };
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
