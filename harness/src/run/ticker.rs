//! The 1 s run loop: merge the shards' deltas, close the interval, append the history row, update progress.

use super::output::Outputs;
use super::progress::{LiveCounters, Progress};
use crate::engine::EngineHandle;
use crate::error::HarnessError;
use load_stats::RunStats;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// Length of one history interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Runs until the engine stops (run time, Ctrl-C or crash), then folds in the final partial interval.
pub async fn drive(
    engine: EngineHandle,
    outputs: &Outputs,
    progress: &mut Progress,
    open_model: bool,
    resources: &dyn Fn() -> Option<String>,
) -> Result<RunStats, HarnessError> {
    let started = Instant::now();
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
        let row = close(&engine, &mut run, open_model);
        history
            .write_row(&row)
            .map_err(|e| HarnessError::io(&history_path, e))?;
        progress.set_resources(resources());
        progress.update(started.elapsed(), &row, live(&engine, open_model));
    }
    let last_users = live(&engine, open_model).users;
    let deltas_left = engine.take_deltas();
    let remaining = engine.join().await;
    for delta in deltas_left.iter().chain(&remaining) {
        run.merge(delta);
    }
    let row = run.close_interval(SystemTime::now(), last_users);
    history
        .write_row(&row)
        .map_err(|e| HarnessError::io(&history_path, e))?;
    Ok(run)
}

fn close(engine: &EngineHandle, run: &mut RunStats, open_model: bool) -> load_stats::HistoryRow {
    for delta in engine.take_deltas() {
        run.merge(&delta);
    }
    run.close_interval(SystemTime::now(), live(engine, open_model).users)
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
    }
}
