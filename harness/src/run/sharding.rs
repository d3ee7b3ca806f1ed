//! A shard's `shard.json`, written as its load starts — so even a shard killed mid-run is known to the merge
//! by its index, host and start.

use super::Prepared;
use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::shard::{ShardRecord, ShardSpec};
use std::path::Path;
use std::time::SystemTime;

/// The record of shard `spec` whose load starts now: when against `start_at`, on which host, the scenario
/// file's hash, the seeds, and the thresholds it judges with (the merge judges the whole with the same).
pub(super) fn record(
    spec: ShardSpec,
    prepared: &Prepared,
    args: &RunArgs,
    start_at: Option<SystemTime>,
    thresholds: load_stats::thresholds::Thresholds,
) -> ShardRecord {
    let (scenario, plan) = (&prepared.scenario, &prepared.plan);
    let started = SystemTime::now();
    let lateness = start_at
        .map(|at| crate::shard::lateness(at, started))
        .unwrap_or_default();
    let drift_window = load_stats::drift::drift_window(
        plan.run_time(),
        scenario.thresholds.as_ref().and_then(|t| t.drift_window),
    );
    ShardRecord {
        index: spec.index,
        count: spec.count,
        start_at: args.start_at.clone(),
        started_at: crate::shard::rfc3339_millis(started),
        start_lateness_ms: lateness.as_secs_f64() * 1000.0,
        host: crate::shard::host_name(),
        scenario: scenario.name.clone(),
        scenario_file: scenario.origin.clone(),
        scenario_hash: std::fs::read(&scenario.origin)
            .map(|bytes| crate::shard::content_hash(&bytes))
            .unwrap_or_default(),
        seed: args.seed.unwrap_or(scenario.seed),
        shard_seed: plan.seed,
        run_time_s: plan.run_time().as_secs_f64(),
        drift_window_s: drift_window.as_secs_f64(),
        thresholds,
    }
}

/// Writes `shard.json` into the results directory.
pub(super) fn write(dir: &Path, record: &ShardRecord) -> Result<(), HarnessError> {
    let path = dir.join(crate::shard::SHARD_FILE);
    let text = serde_json::to_string_pretty(record)
        .map_err(|e| HarnessError::Environment(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
}
