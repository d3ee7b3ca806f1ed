//! The 1 s run loop: merge the shards' deltas, close the interval, append the history row, update progress,
//! keep the per-second points the recovery verdict needs (counts, p95 and the second's latency histogram
//! packed, bounded), and feed each interval's merged latency histogram to the latency-drift windows (two
//! histograms, whatever the run length); a shard also appends each interval to `history.hlog`.

use super::output::Outputs;
use super::progress::{LiveCounters, Progress};
use crate::engine::{EngineHandle, Observed};
use crate::error::HarnessError;
use crate::live_metrics::LiveMetrics;
use load_stats::drift::{DriftTracker, LatencyDrift};
use load_stats::interval_log::{IntervalCounts, IntervalLogWriter};
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
    let mut hlog = HlogIntervals {
        writer: outputs.hlog_writer(run.started())?,
        start: run.started(),
        path: outputs.dir().join(crate::shard::HLOG_FILE),
    };
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
        let (row, latency, counts) = close(
            &engine,
            &mut run,
            open_model,
            &mut drift,
            &mut interval_start,
            started,
            metrics,
        );
        hlog.write(&latency, counts, row.users)?;
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
    let mut counts = IntervalCounts::default();
    for delta in deltas_left.iter().chain(&remaining) {
        run.merge(delta);
        add_latency(&mut latency, delta);
        counts.add(delta);
        if let Some(m) = metrics {
            m.add_delta(delta);
        }
    }
    if let Some(m) = metrics {
        m.load_ended(&counters, &run);
    }
    drift.add_interval(interval_start, started.elapsed(), &latency);
    let row = run.close_interval(SystemTime::now(), last_users);
    hlog.write(&latency, counts, row.users)?;
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

/// `history.hlog` as the intervals close (when the run writes one): each interval from the end of the last.
struct HlogIntervals {
    writer: Option<IntervalLogWriter<std::fs::File>>,
    start: SystemTime,
    path: std::path::PathBuf,
}

impl HlogIntervals {
    /// Appends the interval that ends now.
    fn write(
        &mut self,
        latency: &LatencyHistogram,
        mut counts: IntervalCounts,
        users: u32,
    ) -> Result<(), HarnessError> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        let end = SystemTime::now();
        let duration = end.duration_since(self.start).unwrap_or_default();
        counts.users = users;
        writer
            .write_interval(self.start, duration, latency, &counts)
            .map_err(|e| HarnessError::Environment(format!("{}: {e}", self.path.display())))?;
        self.start = end;
        Ok(())
    }
}

/// Merges the worker threads' deltas, hands the interval's latency to the drift windows (and the deltas to the
/// live metrics) and closes the interval; returns its history row, its latency and its counts.
fn close(
    engine: &EngineHandle,
    run: &mut RunStats,
    open_model: bool,
    drift: &mut DriftTracker,
    interval_start: &mut Duration,
    started: Instant,
    metrics: Option<&LiveMetrics>,
) -> (HistoryRow, LatencyHistogram, IntervalCounts) {
    let mut latency = LatencyHistogram::aggregate();
    let mut counts = IntervalCounts::default();
    for delta in engine.take_deltas() {
        run.merge(&delta);
        add_latency(&mut latency, &delta);
        counts.add(&delta);
        if let Some(m) = metrics {
            m.add_delta(&delta);
        }
    }
    let end = started.elapsed();
    drift.add_interval(*interval_start, end, &latency);
    *interval_start = end;
    let row = run.close_interval(SystemTime::now(), live(engine, open_model).users);
    (row, latency, counts)
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
