//! `harness merge DIR...`: the results of a sharded run (`harness run --shard I/N`) combined exactly and
//! judged once, as one run.
//!
//! Why merge histograms rather than the shards' figures: percentiles do not average (the p95 of two machines
//! is not the mean of their p95s), and a throughput limit is about the whole load. Every shard's
//! `summary.json` carries its histograms (per request × status class, all requests, streams) and error table;
//! they are added into one [`load_stats::RunStats`] ([`Summary::to_delta`]). The per-second history comes from
//! the shards' `history.hlog`s, lined up on the wall clock ([`history::align`]), so the history CSV and the
//! latency-drift windows are exact too. Then the thresholds the shards ran with are judged once on the whole,
//! and the same writers as `harness run` write the Locust CSVs, `summary.json`, `report.html` and JUnit.
//!
//! Proxy behaviour is judged once too: each shard writes its behaviour inputs (`behaviour_inputs.json`: the
//! shared mock's ledger before and after its load, its client observations, the timeline), which
//! [`behaviour::combine`] adds into one run's; a shard's own behaviour verdicts compare its share of the
//! traffic with the whole ledger, so they are only shown per shard (`engine.shards[].behaviour_failures`), not
//! carried. A shard without the file makes the merged behaviour INCONCLUSIVE, naming it.
//!
//! Judged per shard and carried over, not re-judged: generator health (a shard's overloaded generator makes
//! the merge INCONCLUSIVE) and leak / growth verdicts on the proxy's resources (a shard that judged a leak
//! fails the merge; one whose leak verdict was INVALID makes it INVALID). A set that is not one whole run ([`check::problems`]) makes the merged verdict
//! INVALID, naming the shard.

pub mod behaviour;
pub mod check;
pub mod history;

use crate::cli::MergeArgs;
use crate::error::HarnessError;
use crate::exit::Exit;
use crate::run::behaviour::{self as run_behaviour, Collected};
use crate::run::{
    behaviour_failures, decide, interval_point, print_report, sanitize, utc_stamp, Outputs,
    ResourceVerdict, StopCause,
};
use crate::shard::{ShardRecord, HLOG_FILE, SHARD_FILE};
use load_stats::interval_log::LoggedInterval;
use load_stats::summary::Summary;
use load_stats::thresholds::{self, Thresholds};
use load_stats::{RunStats, StatsDelta};
use proxy_behaviour::{BehaviourReport, BehaviourThresholds, IntervalPoint};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One shard's results directory, read.
#[derive(Debug)]
struct ShardDir {
    dir: PathBuf,
    record: Option<ShardRecord>,
    summary: Option<Summary>,
    intervals: Vec<LoggedInterval>,
    /// Its `behaviour_inputs.json` (`None` when it wrote none).
    behaviour: Option<Collected>,
    /// Why one of its files could not be read.
    unreadable: Option<String>,
}

/// `harness merge`: reads the shards, merges, judges, writes; returns the exit code of the merged verdict.
pub fn merge(args: &MergeArgs) -> Result<Exit, HarnessError> {
    if let Some(missing) = args.dirs.iter().find(|d| !d.is_dir()) {
        return Err(HarnessError::BadInput(format!(
            "{}: not a directory (give the shards' results directories)",
            missing.display()
        )));
    }
    let mut shards: Vec<ShardDir> = args.dirs.iter().map(|d| read_shard(d)).collect();
    let first = shards.iter().find_map(|s| s.record.as_ref());
    let name = first.map_or("merged", |r| r.scenario.as_str());
    let out = match &args.out {
        Some(out) => out.clone(),
        None => PathBuf::from("results").join(format!("{}-merged-{}", sanitize(name), utc_stamp())),
    };
    let outputs = Outputs::create(name, Some(&out), None, None)?;
    let stats = merged_stats(&shards);
    let logs: Vec<Vec<LoggedInterval>> = shards.iter().map(|s| s.intervals.clone()).collect();
    let seconds = history::align(&logs, stats.started());
    let history = write_history(&outputs, &seconds, stats.started(), first)?;
    outputs.write_final_csvs(&stats)?;
    let mut limits = first.map(|r| r.thresholds.clone()).unwrap_or_default();
    limits.override_with(&args.thresholds.to_thresholds());
    let behaviour = judge_behaviour(&mut shards, &outputs, history.series, history.users)?;
    let summary = judge(&shards, &stats, &limits, history.drift, behaviour.as_ref());
    outputs.write_summary(&summary)?;
    outputs.write_reports(&summary, !args.no_report, args.junit.as_deref())?;
    if !args.quiet {
        print_report(&summary, &outputs, behaviour.as_ref().map(|b| &b.report));
    }
    Ok(Exit::from_code(summary.exit_code).unwrap_or(Exit::Invalid))
}

/// The proxy behaviour judged on the whole, with why it could not be when a shard's inputs are missing.
struct MergedBehaviour {
    report: BehaviourReport,
    /// Shards without behaviour inputs (the report is then unmeasured).
    missing: Vec<String>,
    /// `engine.timeline` of the owner's timeline.
    timeline: Option<serde_json::Value>,
}

/// The shards' behaviour inputs merged and judged with the scenario's `[behaviour]` limits, as `harness run`
/// judges one run; writes `ledger.json` and `timeline.csv` like it. `None` when no shard has inputs and the
/// scenario sets no `[behaviour]` limits.
fn judge_behaviour(
    shards: &mut [ShardDir],
    outputs: &Outputs,
    series: Vec<IntervalPoint>,
    users: Vec<(Duration, u32)>,
) -> Result<Option<MergedBehaviour>, HarnessError> {
    let limits: Option<BehaviourThresholds> = shards
        .iter()
        .find_map(|s| s.summary.as_ref())
        .and_then(|s| serde_json::from_value(s.config["behaviour"].clone()).ok());
    let inputs = shards
        .iter_mut()
        .map(|s| behaviour::ShardInputs {
            name: s.name(),
            index: s.record.as_ref().map(|r| r.index),
            inputs: s.behaviour.take(),
        })
        .collect();
    let thresholds = limits.clone().unwrap_or_default();
    let dir = outputs.dir();
    let merged = match behaviour::combine(inputs, series, users) {
        behaviour::MergedInputs::Nothing(missing) => limits.map(|t| MergedBehaviour {
            report: BehaviourReport::new(Default::default(), &t),
            missing,
            timeline: None,
        }),
        behaviour::MergedInputs::Missing(missing) => Some(MergedBehaviour {
            report: BehaviourReport::new(Default::default(), &thresholds),
            missing,
            timeline: None,
        }),
        behaviour::MergedInputs::Whole(whole) => {
            run_behaviour::write_ledger(dir, &whole.after)?;
            let has_timeline =
                !whole.timeline.windows.is_empty() || !whole.timeline.skipped.is_empty();
            if has_timeline {
                run_behaviour::write_timeline(dir, &whole.timeline)?;
            }
            Some(MergedBehaviour {
                report: run_behaviour::judge(&whole, &thresholds),
                missing: Vec::new(),
                timeline: has_timeline.then(|| run_behaviour::timeline_json(&whole.timeline)),
            })
        }
    };
    Ok(merged)
}

/// The merged run's `summary.json`: `limits` and the proxy behaviour judged on the whole, the shards'
/// inconclusive reasons carried over, INVALID when the shards are not one whole run.
fn judge(
    shards: &[ShardDir],
    stats: &RunStats,
    limits: &Thresholds,
    drift: Option<load_stats::drift::LatencyDrift>,
    behaviour: Option<&MergedBehaviour>,
) -> Summary {
    let problems = check::problems(&shards.iter().map(ShardDir::facts).collect::<Vec<_>>());
    let results = judge_thresholds(limits, stats, drift.as_ref());
    let behaviour_inconclusive = behaviour.iter().flat_map(|b| {
        b.missing
            .iter()
            .map(|m| format!("behaviour inconclusive: {m}"))
            .chain(b.report.inconclusive_reasons())
    });
    let verdict = decide(StopCause::Completed, &results, &ResourceVerdict::NotJudged)
        .with_failures(
            behaviour
                .map_or_else(Vec::new, |b| behaviour_failures(&b.report))
                .into_iter()
                .chain(carried(shards, shard_resource_failures))
                .collect(),
        )
        .with_inconclusive(
            carried(shards, shard_inconclusive)
                .into_iter()
                .chain(behaviour_inconclusive)
                .collect(),
        )
        .invalid_because(problems);
    let first = shards.iter().find_map(|s| s.record.as_ref());
    let first_summary = shards.iter().find_map(|s| s.summary.as_ref());
    let mut config = first_summary.map_or(serde_json::Value::Null, |s| s.config.clone());
    if let Some(object) = config.as_object_mut() {
        object.insert(
            "merged_shards".into(),
            serde_json::json!(first.map(|r| r.count)),
        );
        object.insert("thresholds".into(), serde_json::json!(limits));
        // Each shard ran its share: the whole is the list of shares (they sum to the scenario's load).
        let loads: Vec<&serde_json::Value> = shards
            .iter()
            .filter_map(|s| Some(&s.summary.as_ref()?.config["load"]))
            .collect();
        object.insert("load".into(), serde_json::json!({ "shards": loads }));
        object.insert("seed".into(), serde_json::json!(first.map(|r| r.seed)));
    }
    let mut summary = Summary::from_run(stats, config, results);
    summary.verdict = verdict.name.to_string();
    summary.exit_code = verdict.exit.code();
    summary.verdict_reasons = verdict.reasons;
    let sent: u64 = shards
        .iter()
        .filter_map(|s| s.summary.as_ref()?.engine["sent"].as_u64())
        .sum();
    summary.engine = serde_json::json!({
        "sent": sent,
        "latency_drift": drift,
        "behaviour": behaviour.map(|b| &b.report),
        "timeline": behaviour.and_then(|b| b.timeline.as_ref()),
        "shards": shards.iter().map(ShardDir::engine_json).collect::<Vec<_>>(),
    });
    summary
}

impl ShardDir {
    fn facts(&self) -> check::ShardFacts<'_> {
        check::ShardFacts {
            dir: self.dir.display().to_string(),
            record: self.record.as_ref(),
            verdict: self
                .summary
                .as_ref()
                .map(|s| (s.verdict.as_str(), s.verdict_reasons.as_slice())),
            unreadable: self.unreadable.clone(),
        }
    }

    /// `shard I/N` (or the directory when it has no `shard.json`).
    fn name(&self) -> String {
        match &self.record {
            Some(r) => format!("shard {}/{}", r.index, r.count),
            None => self.dir.display().to_string(),
        }
    }

    /// What the merged `summary.json` keeps of the shard: where and when it ran, its verdict, and its
    /// generator's figures and health.
    fn engine_json(&self) -> serde_json::Value {
        let engine = self.summary.as_ref().map(|s| &s.engine);
        let field = |name: &str| engine.map_or(serde_json::Value::Null, |e| e[name].clone());
        serde_json::json!({
            "dir": self.dir,
            "index": self.record.as_ref().map(|r| r.index),
            "count": self.record.as_ref().map(|r| r.count),
            "host": self.record.as_ref().map(|r| &r.host),
            "start_at": self.record.as_ref().map(|r| &r.start_at),
            "started_at": self.record.as_ref().map(|r| &r.started_at),
            "start_lateness_ms": self.record.as_ref().map(|r| r.start_lateness_ms),
            "verdict": self.summary.as_ref().map(|s| &s.verdict),
            "exit_code": self.summary.as_ref().map(|s| s.exit_code),
            "requests": self.summary.as_ref().map(|s| s.aggregate.requests),
            "sent": field("sent"),
            "late_sends": field("late_sends"),
            "dropped_sends": field("dropped_sends"),
            "slot_late_sends": field("slot_late_sends"),
            "slot_dropped_sends": field("slot_dropped_sends"),
            "resources": field("resources"),
            "generator": field("generator"),
            "behaviour_failures": self.summary.as_ref().map(shard_behaviour_failures),
        })
    }
}

/// Reads `shard.json`, `summary.json` and `history.hlog` of `dir`; a file that is absent stays `None` (the
/// check names what that means), one that does not parse is `unreadable`.
fn read_shard(dir: &Path) -> ShardDir {
    let mut shard = ShardDir {
        dir: dir.to_path_buf(),
        record: None,
        summary: None,
        intervals: Vec::new(),
        behaviour: None,
        unreadable: None,
    };
    let mut problems = Vec::new();
    match run_behaviour::read_inputs(dir) {
        Ok(inputs) => shard.behaviour = inputs,
        Err(e) => problems.push(e),
    }
    let mut read = |file: &str| match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            problems.push(format!("{file}: {e}"));
            None
        }
    };
    let (record, summary, hlog) = (read(SHARD_FILE), read("summary.json"), read(HLOG_FILE));
    if let Some(text) = record {
        match serde_json::from_str(&text) {
            Ok(r) => shard.record = Some(r),
            Err(e) => problems.push(format!("{SHARD_FILE}: {e}")),
        }
    }
    if let Some(text) = summary {
        match Summary::from_json(&text) {
            Ok(s) => shard.summary = Some(s),
            Err(e) => problems.push(format!("summary.json: {e}")),
        }
    }
    match hlog {
        Some(text) => match load_stats::interval_log::read(&text) {
            Ok(intervals) => shard.intervals = intervals,
            Err(e) => problems.push(format!("{HLOG_FILE}: {e}")),
        },
        None if shard.record.is_some() => problems.push(format!(
            "no {HLOG_FILE} (its per-second history; every shard writes one from the start of its load)"
        )),
        None => {}
    }
    shard.unreadable = (!problems.is_empty()).then(|| problems.join("; "));
    shard
}

/// Every shard's summary added into one run, from the earliest shard's start to the latest shard's end.
fn merged_stats(shards: &[ShardDir]) -> RunStats {
    let spans: Vec<(SystemTime, SystemTime)> = shards
        .iter()
        .filter_map(|s| s.summary.as_ref())
        .filter_map(|s| {
            let start = parse_rfc3339(&s.started_at)?;
            Some((
                start,
                start + Duration::from_secs_f64(s.duration_secs.max(0.0)),
            ))
        })
        .collect();
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .unwrap_or_else(SystemTime::now);
    let end = spans.iter().map(|s| s.1).max().unwrap_or(start);
    let mut run = RunStats::new(start);
    let mut all = StatsDelta::new();
    for summary in shards.iter().filter_map(|s| s.summary.as_ref()) {
        all.merge(&summary.to_delta());
    }
    run.merge(&all);
    run.close_interval(end, 0);
    run
}

/// What the merged history gives the judging: the latency drift, and the per-second points and users the
/// behaviour verdicts (recovery) read.
struct MergedHistory {
    drift: Option<load_stats::drift::LatencyDrift>,
    series: Vec<IntervalPoint>,
    users: Vec<(Duration, u32)>,
}

/// Writes the merged `_stats_history.csv` (one row per merged second, closed in a history-only [`RunStats`]
/// so its cumulative columns are the whole run's) and returns the drift and series of the merged seconds.
fn write_history(
    outputs: &Outputs,
    seconds: &[history::MergedSecond],
    origin: SystemTime,
    first: Option<&ShardRecord>,
) -> Result<MergedHistory, HarnessError> {
    let path = outputs.csv("stats_history");
    let mut csv = outputs.history_writer()?;
    let mut run = RunStats::new(origin);
    let run_time = Duration::from_secs_f64(first.map_or(0.0, |r| r.run_time_s));
    let window = Duration::from_secs_f64(first.map_or(0.0, |r| r.drift_window_s));
    let mut drift = load_stats::drift::DriftTracker::new(run_time, window);
    let (mut series, mut users) = (Vec::new(), Vec::new());
    for second in seconds {
        let logged = LoggedInterval {
            start: origin + second.end.saturating_sub(Duration::from_secs(1)),
            duration: Duration::from_secs(1),
            latency: second.latency.clone(),
            counts: second.counts.clone(),
        };
        run.merge(&logged.to_delta());
        drift.add_interval(
            second.end.saturating_sub(Duration::from_secs(1)),
            second.end,
            &second.latency,
        );
        let row = run.close_interval(origin + second.end, second.counts.users);
        csv.write_row(&row)
            .map_err(|e| HarnessError::io(&path, e))?;
        let mut point = interval_point(second.end, &row);
        point.latency = Some(second.latency.pack());
        series.push(point);
        users.push((second.end, row.users));
    }
    Ok(MergedHistory {
        drift: drift.drift(),
        series,
        users,
    })
}

/// The thresholds on the merged run, the no-request rule and the drift limits — as `harness run` judges.
fn judge_thresholds(
    limits: &Thresholds,
    stats: &RunStats,
    drift: Option<&load_stats::drift::LatencyDrift>,
) -> Vec<thresholds::ThresholdResult> {
    let mut results = thresholds::evaluate_run(limits, stats);
    if results.is_empty() && stats.aggregate_report().requests == 0 {
        results.push(thresholds::no_requests(thresholds::OVERALL_SCOPE));
    }
    results.extend(thresholds::evaluate_drift(limits, drift));
    results
}

/// Each shard's reasons of one kind, prefixed with the shard's name.
fn carried(shards: &[ShardDir], reasons: impl Fn(&Summary) -> Vec<String>) -> Vec<String> {
    shards
        .iter()
        .filter_map(|s| Some((s.name(), s.summary.as_ref()?)))
        .flat_map(|(name, summary)| {
            reasons(summary)
                .into_iter()
                .map(move |r| format!("{name}: {r}"))
        })
        .collect()
}

/// A shard's own failed proxy-behaviour verdicts (its `behaviour: ...` reasons): shown per shard, not carried
/// (they compare the shard's share of the traffic with the whole ledger).
fn shard_behaviour_failures(summary: &Summary) -> Vec<String> {
    summary
        .verdict_reasons
        .iter()
        .filter(|r| r.starts_with("behaviour: "))
        .cloned()
        .collect()
}

/// A shard's failed leak / growth verdicts on the proxy's resources (its `resources: ...` reasons when its
/// verdict is FAIL): each shard watched the same proxy, so a leak one of them judged fails the merge — the merge
/// cannot re-judge resources, and dropping them would pass a leaking proxy.
fn shard_resource_failures(summary: &Summary) -> Vec<String> {
    if summary.verdict != "FAIL" {
        return Vec::new();
    }
    summary
        .verdict_reasons
        .iter()
        .filter(|r| r.starts_with("resources: "))
        .cloned()
        .collect()
}

/// What makes a merge prove nothing that a shard knows: its generator overloaded, its load started late.
fn shard_inconclusive(summary: &Summary) -> Vec<String> {
    let generator = &summary.engine["generator"];
    let mut reasons: Vec<String> = match generator["overloaded"].as_bool() {
        Some(true) => generator["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let record: Option<ShardRecord> = serde_json::from_value(summary.engine["shard"].clone()).ok();
    reasons.extend(record.as_ref().and_then(crate::shard::late_start_reason));
    reasons
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, reasons: &[&str], engine: serde_json::Value) -> ShardDir {
        let mut summary = Summary::from_run(
            &RunStats::new(SystemTime::UNIX_EPOCH),
            serde_json::Value::Null,
            Vec::new(),
        );
        summary.verdict_reasons = reasons.iter().map(|r| r.to_string()).collect();
        summary.engine = engine;
        ShardDir {
            dir: PathBuf::from(format!("s{index}")),
            record: Some(ShardRecord {
                index,
                count: 3,
                start_at: Some("2026-12-05T20:00:00Z".into()),
                started_at: "2026-12-05T20:00:02.500Z".into(),
                start_lateness_ms: 2500.0,
                host: "h".into(),
                scenario: "s".into(),
                scenario_file: "s.toml".into(),
                scenario_hash: "fnv1a64:1".into(),
                seed: 1,
                shard_seed: 1,
                run_time_s: 5.0,
                drift_window_s: 1.25,
                thresholds: Thresholds::default(),
            }),
            summary: Some(summary),
            intervals: Vec::new(),
            behaviour: None,
            unreadable: None,
        }
    }

    #[test]
    fn shard_reasons_are_carried_with_the_shard_named() {
        let late = shard(2, &[], serde_json::Value::Null);
        let late_record = serde_json::to_value(late.record.as_ref()).unwrap();
        let shards = [
            shard(
                0,
                &["threshold failed: x", "behaviour: fairness 0.5 < 0.8"],
                serde_json::json!({"generator": {"overloaded": true, "reasons": ["generator overloaded: 9 % late"]}}),
            ),
            shard(
                1,
                &[],
                serde_json::json!({"generator": {"overloaded": false, "reasons": ["not counted"]}}),
            ),
            shard(2, &[], serde_json::json!({"shard": late_record})),
        ];
        assert_eq!(
            carried(&shards, shard_behaviour_failures),
            ["shard 0/3: behaviour: fairness 0.5 < 0.8"]
        );
        let mut leaking = shard(
            1,
            &["resources: LEAK rss rising 60 MiB/h"],
            serde_json::Value::Null,
        );
        leaking.summary.as_mut().unwrap().verdict = "FAIL".into();
        let mut reported = shard(
            2,
            &["resources: LEAK rss rising 60 MiB/h"],
            serde_json::Value::Null,
        );
        reported.summary.as_mut().unwrap().verdict = "PASS".into();
        assert_eq!(
            carried(&[leaking, reported], shard_resource_failures),
            ["shard 1/3: resources: LEAK rss rising 60 MiB/h"]
        );
        let inconclusive = carried(&shards, shard_inconclusive);
        assert_eq!(inconclusive.len(), 2, "{inconclusive:?}");
        assert_eq!(inconclusive[0], "shard 0/3: generator overloaded: 9 % late");
        assert!(
            inconclusive[1]
                .starts_with("shard 2/3: shard 2/3 started its load 2.5 s after --start-at"),
            "{inconclusive:?}"
        );
    }
}
