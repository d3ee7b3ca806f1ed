//! The 1 s run loop: merge the shards' deltas, close the interval, append the history row, update progress,
//! keep the per-second points the recovery verdict needs (counts, p95 and the second's latency histogram
//! packed, bounded), and feed each interval's merged latency histogram to the latency-drift windows (two
//! histograms, whatever the run length).

use super::output::Outputs;
use super::progress::{LiveCounters, Progress};
use crate::engine::{EngineHandle, Observed};
use crate::error::HarnessError;
use crate::live_metrics::LiveMetrics;
use load_stats::drift::{DriftTracker, LatencyDrift};
use load_stats::{HistoryRow, LatencyHistogram, RunStats, StatsDelta};
use proxy_behaviour::IntervalPoint;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Length of one history interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Per-second points kept for the recovery verdict (two days at one per second); later ones are dropped.
pub const MAX_SERIES_POINTS: usize = 172_800;

/// Bytes of packed per-second latency histograms kept for the recovery verdict (a busy second packs into a
/// few hundred bytes to a few KiB, so hours of a run); later seconds keep counts and p95 only, and a recovery
/// judged on them is INCONCLUSIVE.
pub const MAX_PACKED_LATENCY_BYTES: usize = 64 * 1024 * 1024;

/// What the load produced.
pub struct Ticked {
    /// Whole-run statistics.
    pub stats: RunStats,
    /// Client-side behaviour observations (reported keys, stream samples).
    pub observed: Observed,
    /// One point per interval, from the start of the load.
    pub series: Vec<IntervalPoint>,
    /// `(end of interval, users)` per interval (in-flight requests in the open model).
    pub users: Vec<(Duration, u32)>,
    /// p50/p95 of the first window against the last (`None` when the load stopped before the last window).
    pub drift: Option<LatencyDrift>,
}

/// Where each interval is shown while the load runs.
pub struct LiveViews<'a> {
    /// The progress line.
    pub progress: &'a mut Progress,
    /// The proxy's resources for the progress line, read once per interval.
    pub resources: &'a dyn Fn() -> Option<String>,
    /// The live metrics endpoint's series (`--metrics-listen`), fed every interval's delta.
    pub metrics: Option<&'a LiveMetrics>,
}

/// Runs until the engine stops (run time, Ctrl-C or crash), then folds in the final partial interval.
/// `started` is the load clock's origin (when the engine was started).
pub async fn drive(
    engine: EngineHandle,
    started: Instant,
    outputs: &Outputs,
    views: LiveViews<'_>,
    open_model: bool,
    mut drift: DriftTracker,
) -> Result<Ticked, HarnessError> {
    let LiveViews {
        progress,
        resources,
        metrics,
    } = views;
    let mut series = Series::default();
    let mut interval_start = Duration::ZERO;
    let mut run = RunStats::new(SystemTime::now());
    let mut history = outputs.history_writer()?;
    let history_path = outputs.csv("stats_history");
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopped = tokio::select! {
            _ = ticks.tick() => false,
            () = engine.stopped() => true,
        };
        if stopped {
            break;
        }
        let (row, latency) = close(
            &engine,
            &mut run,
            open_model,
            &mut drift,
            &mut interval_start,
            started,
            metrics,
        );
        if let Some(m) = metrics {
            m.tick(started.elapsed(), engine.counters(), &run);
        }
        series.push(started.elapsed(), &row, &latency);
        history
            .write_row(&row)
            .map_err(|e| HarnessError::io(&history_path, e))?;
        progress.set_resources(resources());
        progress.update(started.elapsed(), &row, live(&engine, open_model));
    }
    let last_users = live(&engine, open_model).users;
    let deltas_left = engine.take_deltas();
    let counters = engine.counters_handle();
    let (remaining, observed) = engine.join().await;
    let mut latency = LatencyHistogram::aggregate();
    for delta in deltas_left.iter().chain(&remaining) {
        run.merge(delta);
        add_latency(&mut latency, delta);
        if let Some(m) = metrics {
            m.add_delta(delta);
        }
    }
    if let Some(m) = metrics {
        m.load_ended(&counters, &run);
    }
    drift.add_interval(interval_start, started.elapsed(), &latency);
    let row = run.close_interval(SystemTime::now(), last_users);
    series.push(started.elapsed(), &row, &latency);
    history
        .write_row(&row)
        .map_err(|e| HarnessError::io(&history_path, e))?;
    Ok(Ticked {
        stats: run,
        observed,
        series: series.points,
        users: series.users,
        drift: drift.drift(),
    })
}

/// The per-second points and users kept so far, and the bytes their packed histograms take.
#[derive(Default)]
struct Series {
    points: Vec<IntervalPoint>,
    users: Vec<(Duration, u32)>,
    packed_bytes: usize,
}

impl Series {
    /// Appends the interval's point (with its latency packed while within [`MAX_PACKED_LATENCY_BYTES`]) unless
    /// the series is full.
    fn push(&mut self, end: Duration, row: &HistoryRow, latency: &LatencyHistogram) {
        if self.points.len() >= MAX_SERIES_POINTS {
            return;
        }
        let mut point = interval_point(end, row);
        if self.packed_bytes < MAX_PACKED_LATENCY_BYTES {
            let packed = latency.pack();
            self.packed_bytes += packed.packed_bytes();
            point.latency = Some(packed);
        }
        self.points.push(point);
        self.users.push((end, row.users));
    }
}

/// Requests, success rate and p95 of one history row.
pub fn interval_point(end: Duration, row: &HistoryRow) -> IntervalPoint {
    let success_rate = if row.requests == 0 {
        1.0
    } else {
        1.0 - row.failures as f64 / row.requests as f64
    };
    IntervalPoint {
        end,
        requests: row.requests,
        success_rate,
        p95: row
            .percentiles
            .as_ref()
            .and_then(|p| Duration::try_from_secs_f64(p.p95 / 1000.0).ok()),
        latency: None,
    }
}

/// Merges the shards' deltas, hands the interval's latency to the drift windows (and the delta to the live
/// metrics) and closes the interval; returns its history row and its latency.
fn close(
    engine: &EngineHandle,
    run: &mut RunStats,
    open_model: bool,
    drift: &mut DriftTracker,
    interval_start: &mut Duration,
    started: Instant,
    metrics: Option<&LiveMetrics>,
) -> (HistoryRow, LatencyHistogram) {
    let mut latency = LatencyHistogram::aggregate();
    for delta in engine.take_deltas() {
        run.merge(&delta);
        add_latency(&mut latency, &delta);
        if let Some(m) = metrics {
            m.add_delta(&delta);
        }
    }
    let end = started.elapsed();
    drift.add_interval(*interval_start, end, &latency);
    *interval_start = end;
    let row = run.close_interval(SystemTime::now(), live(engine, open_model).users);
    (row, latency)
}

/// Adds every request's latency in `delta` (all status classes: the delta's aggregate, at its finer precision)
/// to `latency`.
fn add_latency(latency: &mut LatencyHistogram, delta: &StatsDelta) {
    latency.add(&delta.aggregate);
}

fn live(engine: &EngineHandle, open_model: bool) -> LiveCounters {
    let c = engine.counters();
    let users = if open_model {
        c.in_flight.load(Ordering::Relaxed)
    } else {
        c.users.load(Ordering::Relaxed)
    };
    LiveCounters {
        users,
        late: c.late.load(Ordering::Relaxed),
        slot_late: c.slot_late.load(Ordering::Relaxed),
    }
}
