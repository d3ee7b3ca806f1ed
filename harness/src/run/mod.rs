//! `harness run`: scenario → system under test → load → results → verdict → exit code.
//!
//! Every path out of a started run — run time reached, Ctrl-C / SIGTERM, the proxy crashing — goes through the
//! same ending: stop the load, fold in what was recorded, write every result file, stop the proxy and judge.

pub(crate) mod behaviour;
mod generator;
mod live;
mod output;
mod plan;
mod progress;
mod sharding;
mod stop;
mod ticker;
pub(crate) mod timeline;
mod verdict;

pub use generator::{GeneratorLoad, GeneratorVerdict};
pub use output::Outputs;
pub(crate) use output::{sanitize, utc_stamp};
pub use plan::{Plan, PlanError};
pub(crate) use ticker::interval_point;
pub use verdict::{decide, ResourceVerdict, StopCause, Verdict};

use crate::cli::RunArgs;
use crate::engine::{self, EngineConfig, Mix};
use crate::error::HarnessError;
use crate::exit::Exit;
use crate::live_metrics::{LiveMetrics, LoadPlan, MetricsServer, RunPhase};
use crate::scenario::{LoadSpec, Scenario, TimelineEvent};
use crate::sut::Sut;
use load_stats::summary::Summary;
use proxy_behaviour::BehaviourReport;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use stop::Stop;
use tokio_util::sync::CancellationToken;

/// How long after its run time the load is stopped when the engine has not ended it (an open-model generator
/// behind schedule); the engine itself stops at the run time when it keeps up.
const LOAD_END_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// `harness run`: one scenario, or a suite when given several scenarios, a directory or `--scenario-tags`.
pub async fn run(mut args: RunArgs) -> Result<Exit, HarnessError> {
    let index_env = std::env::var(crate::shard::INDEX_ENV).ok();
    args.shard = crate::shard::resolve(args.shard, args.shards, index_env.as_deref())
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    if crate::suite::is_suite(&args) {
        if args.shard.is_some() {
            return Err(HarnessError::BadInput(
                "--shard runs one scenario: give one scenario file (and no --scenario-tags)".into(),
            ));
        }
        return crate::suite::run(args).await;
    }
    let profile = args
        .proxy
        .as_deref()
        .map(crate::profile::Profile::from_file)
        .transpose()?;
    let scenario = Scenario::from_file(&args.scenarios[0])?;
    run_scenario(scenario, args, profile.as_ref()).await
}

/// Runs one scenario end to end with `profile` (if any) applied, and returns the exit code to use.
pub async fn run_scenario(
    mut scenario: Scenario,
    mut args: RunArgs,
    profile: Option<&crate::profile::Profile>,
) -> Result<Exit, HarnessError> {
    let applied = crate::overrides::apply(&mut scenario, &mut args, profile)?;
    let bad_input = |e: crate::shard::ShardError| HarnessError::BadInput(e.to_string());
    if args.shard.is_some() {
        crate::shard::require_shared_sut(args.target.as_deref(), args.upstream.as_deref())
            .map_err(bad_input)?;
    }
    let start_at = args
        .start_at
        .as_deref()
        .map(crate::shard::parse_start_at)
        .transpose()
        .map_err(bad_input)?;
    let server = args
        .metrics_listen
        .map(|addr| MetricsServer::start(addr, LiveMetrics::new(&scenario.name)))
        .transpose()
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    let metrics = server.as_ref().map(|s| s.metrics().clone());
    let ended = run_observed(scenario, args, applied, start_at, metrics.as_deref()).await;
    if let Some(server) = server {
        server.stop().await;
    }
    ended
}

/// [`run_scenario`] after the overrides, its live metrics (if any) fed as it goes.
async fn run_observed(
    scenario: Scenario,
    args: RunArgs,
    applied: crate::overrides::Applied,
    start_at: Option<std::time::SystemTime>,
    metrics: Option<&LiveMetrics>,
) -> Result<Exit, HarnessError> {
    let stop = Stop::new();
    let mut prepared = tokio::select! {
        p = prepare(&args, scenario, applied) => p?,
        () = stop.token().cancelled() => {
            // Dropping the half-started system under test kills a spawned proxy (kill_on_drop).
            eprintln!("harness: interrupted before the load started; no results");
            return Ok(Exit::Interrupted);
        }
    };
    if let Some(at) = start_at {
        let wait = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.token().cancelled() => {
                prepared.sut.shutdown().await;
                eprintln!("harness: interrupted while waiting for --start-at; no results");
                return Ok(Exit::Interrupted);
            }
        }
    }
    if let Some(spec) = prepared.plan.shard {
        let thresholds = run_thresholds(&prepared.scenario, &args);
        let record = sharding::record(spec, &prepared, &args, start_at, thresholds);
        if let Err(e) = sharding::write(prepared.outputs.dir(), &record) {
            prepared.sut.shutdown().await;
            return Err(e);
        }
        prepared.shard = Some(record);
    }
    let finished = drive_load(&args, prepared, stop, metrics).await;
    judge_and_write(&args, finished, metrics)
}

/// Everything set up before the load starts.
struct Prepared {
    scenario: Scenario,
    applied: crate::overrides::Applied,
    plan: Plan,
    outputs: Outputs,
    sut: Sut,
    mix: Mix,
    /// `shard.json` of a shard (written when its load starts).
    shard: Option<crate::shard::ShardRecord>,
}

/// Everything known once the load has stopped and the proxy is down.
struct Finished {
    scenario: Scenario,
    applied: crate::overrides::Applied,
    plan: Plan,
    outputs: Outputs,
    stats: Result<load_stats::RunStats, HarnessError>,
    /// Ledger, timeline and client observations (runs with the in-process mock).
    behaviour: Option<behaviour::Collected>,
    /// The timeline when there is no in-process mock (every event skipped).
    timeline: timeline::TimelineOutcome,
    cause: StopCause,
    resources: crate::monitoring::ResourcesOutcome,
    counters: Arc<engine::Counters>,
    /// First vs last window latency (`engine.latency_drift`), when the load reached its last window.
    drift: Option<load_stats::drift::LatencyDrift>,
    /// `config.upstream` in `summary.json`: the mock's mode and URL (null without a mock).
    upstream: serde_json::Value,
    /// `shard.json` of a shard.
    shard: Option<crate::shard::ShardRecord>,
}

/// Scenario, overrides, results directory, system under test and request mix — bad input is found before
/// anything is started.
async fn prepare(
    args: &RunArgs,
    scenario: Scenario,
    applied: crate::overrides::Applied,
) -> Result<Prepared, HarnessError> {
    let plan = Plan::new(&scenario, args).map_err(|e| HarnessError::BadInput(e.to_string()))?;
    let specs: Vec<_> = scenario
        .requests
        .iter()
        .map(|r| r.get_ref().clone())
        .collect();
    Mix::new(&specs, "http://127.0.0.1", &plan.tags)
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    let mut outputs = Outputs::create(
        &scenario.name,
        args.out.as_deref(),
        args.csv.as_deref(),
        args.json.as_deref(),
    )?;
    if plan.shard.is_some() {
        outputs.enable_hlog();
    }
    let sut = Sut::start(&scenario, args, plan.seed, outputs.dir()).await?;
    match Mix::new(&specs, &sut.target, &plan.tags)
        .map(|mix| mix.with_key_header(applied.key_header.as_ref()))
    {
        Ok(mix) => Ok(Prepared {
            scenario,
            applied,
            plan,
            outputs,
            sut,
            mix,
            shard: None,
        }),
        Err(e) => {
            sut.shutdown().await;
            Err(HarnessError::BadInput(e.to_string()))
        }
    }
}

/// Monitor, stop watchers, engine and the 1 s loop; then drain and stop the proxy.
async fn drive_load(
    args: &RunArgs,
    p: Prepared,
    mut stop: Stop,
    metrics: Option<&LiveMetrics>,
) -> Finished {
    if !args.quiet {
        eprintln!(
            "harness: {} against {} — results in {}",
            p.scenario.name,
            p.sut.target,
            p.outputs.dir().display()
        );
    }
    let monitor = crate::monitoring::start(&p.sut, &p.scenario, &p.outputs, &p.plan);
    stop.watch_proxy(&p.sut);
    let open_model = matches!(p.plan.load, LoadSpec::Open(_));
    let mut progress = progress::Progress::new(p.plan.run_time(), args.quiet);
    let events: Vec<TimelineEvent> = p
        .scenario
        .timeline
        .iter()
        .map(|e| e.get_ref().clone())
        .collect();
    let (planned, clipped) = timeline::plan(&events, p.plan.run_time());
    if let Some(m) = metrics {
        m.plan_load(LoadPlan {
            windows: live::windows(&planned, p.sut.mock().is_some()),
            warmup: p.plan.monitor.warmup,
            thresholds: run_thresholds(&p.scenario, args),
        });
    }
    let watched = behaviour::watched_spans(
        &planned,
        p.scenario.behaviour.as_ref().map(|b| b.get_ref()),
        p.plan.run_time(),
    );
    let config = EngineConfig {
        mix: p.mix,
        load: p.plan.load.clone(),
        seed: p.plan.seed,
        watched: watched.clone(),
    };
    let ledger_before = match p.sut.mock() {
        Some(mock) => ledger_or_warn(mock, "start").await,
        None => None,
    };
    let origin = std::time::Instant::now();
    stop.end_load_at(origin + p.plan.run_time() + LOAD_END_GRACE);
    let drift_window = load_stats::drift::drift_window(
        p.plan.run_time(),
        p.scenario.thresholds.as_ref().and_then(|t| t.drift_window),
    );
    let drift = load_stats::drift::DriftTracker::new(p.plan.run_time(), drift_window);
    let engine = engine::start(config, stop.token());
    let counters = engine.counters_handle();
    // Read once per interval by the run loop; the live metrics take the same sample.
    let probe = || {
        if let Some((m, sample)) = metrics.zip(monitor.latest_sample()) {
            m.set_proxy_sample(&sample);
        }
        monitor.live_line()
    };
    let load_done = CancellationToken::new();
    let ticking = async {
        let views = ticker::LiveViews {
            progress: &mut progress,
            resources: &probe,
            metrics,
        };
        let ticked = ticker::drive(engine, origin, &p.outputs, views, open_model, drift).await;
        load_done.cancel();
        ticked
    };
    let timeline_run = async {
        match p.sut.mock() {
            Some(mock) => {
                let switches_faults = p.plan.shard.is_none_or(|s| s.owns_the_mock());
                let clock = (origin, switches_faults);
                timeline::drive(mock, &events, planned, clock, &counters, &load_done).await
            }
            None => timeline::TimelineOutcome::without_mock(planned),
        }
    };
    let (ticked, mut timeline_outcome) = tokio::join!(ticking, timeline_run);
    timeline_outcome.skipped.extend(clipped);
    let drift = ticked.as_ref().ok().and_then(|t| t.drift.clone());
    let (stats, behaviour, timeline_outcome) = collect(
        &p.sut,
        ticked,
        ledger_before,
        (timeline_outcome, watched),
        open_model,
    )
    .await;
    stop.token().cancel(); // ends the load even when the loop failed early (results directory unwritable)
    progress.finish();
    let cause = stop.finish();
    if cause == StopCause::Completed {
        monitor.drain().await;
    }
    let resources = monitor.finish();
    let upstream = p.sut.mock().map_or(
        serde_json::Value::Null,
        |m| serde_json::json!({"mode": m.mode(), "url": m.base_url()}),
    );
    if let Some(info) = p.sut.shutdown().await {
        tracing::debug!("proxy stopped: {info}");
    }
    Finished {
        scenario: p.scenario,
        applied: p.applied,
        plan: p.plan,
        outputs: p.outputs,
        stats,
        behaviour,
        timeline: timeline_outcome,
        cause,
        resources,
        counters,
        drift,
        upstream,
        shard: p.shard,
    }
}

/// The mock's ledger, or `None` with a warning when it cannot be read (an external mock gone away): the
/// behaviour verdicts are then not judged rather than judged on made-up counts.
async fn ledger_or_warn(
    mock: &crate::sut::MockHandle,
    when: &str,
) -> Option<mock_upstream::LedgerSnapshot> {
    match mock.ledger().await {
        Ok(ledger) => Some(ledger),
        Err(e) => {
            eprintln!("harness: cannot read the mock's ledger at the {when} of the load: {e}");
            None
        }
    }
}

/// Splits the load's result into the run statistics and the behaviour data (ledger at the end, timeline,
/// client observations) when the harness controls the mock; without one the timeline outcome is kept apart.
async fn collect(
    sut: &Sut,
    ticked: Result<ticker::Ticked, HarnessError>,
    ledger_before: Option<mock_upstream::LedgerSnapshot>,
    (timeline, watched): (timeline::TimelineOutcome, Vec<engine::WatchedSpan>),
    open_model: bool,
) -> (
    Result<load_stats::RunStats, HarnessError>,
    Option<behaviour::Collected>,
    timeline::TimelineOutcome,
) {
    let ticked = match ticked {
        Ok(t) => t,
        Err(e) => return (Err(e), None, timeline),
    };
    let (mock, config, before) = match (sut.mock(), sut.mock_config(), ledger_before) {
        (Some(m), Some(c), Some(b)) => (m, c, b),
        _ => return (Ok(ticked.stats), None, timeline),
    };
    let Some(after) = ledger_or_warn(mock, "end").await else {
        return (Ok(ticked.stats), None, timeline);
    };
    let collected = behaviour::Collected {
        config: config.clone(),
        before,
        after,
        observed: ticked.observed,
        timeline,
        watched,
        series: ticked.series,
        users: if open_model { Vec::new() } else { ticked.users },
    };
    (
        Ok(ticked.stats),
        Some(collected),
        timeline::TimelineOutcome::default(),
    )
}

/// The run's limits: the scenario's thresholds with the command line's; with nothing else to judge the run,
/// Locust's default rule (any failed request fails it).
fn run_thresholds(scenario: &Scenario, args: &RunArgs) -> load_stats::thresholds::Thresholds {
    let mut thresholds = scenario.thresholds.clone().unwrap_or_default();
    thresholds.override_with(&args.thresholds.to_thresholds());
    thresholds.max_p95_drift_ratio = args.max_p95_drift_ratio.or(thresholds.max_p95_drift_ratio);
    thresholds.max_p95_drift_ms = args.max_p95_drift_ms.or(thresholds.max_p95_drift_ms);
    let behaviour_limits = scenario
        .behaviour
        .as_ref()
        .is_some_and(|b| b.get_ref().sets_a_limit());
    if thresholds.is_empty() && !behaviour_limits && !scenario.monitor.judge_leaks {
        // Nothing else judges this run: like Locust's default exit code, any failed request fails it.
        thresholds.override_with(&load_stats::thresholds::Thresholds::from_overall(
            &load_stats::thresholds::Limits {
                max_error_percent: Some(0.0),
                ..Default::default()
            },
        ));
    }
    thresholds
}

/// Final CSVs, thresholds, verdict and `summary.json`.
fn judge_and_write(
    args: &RunArgs,
    f: Finished,
    metrics: Option<&LiveMetrics>,
) -> Result<Exit, HarnessError> {
    let stats = f.stats?;
    f.outputs.write_final_csvs(&stats)?;
    let thresholds = run_thresholds(&f.scenario, args);
    let mut results = load_stats::thresholds::evaluate_run(&thresholds, &stats);
    if results.is_empty() && stats.aggregate_report().requests == 0 {
        // Without any limit a run that completed no request would otherwise PASS (a dead target, a tag
        // selection that sends nothing): nothing was measured, so nothing passed.
        results.push(load_stats::thresholds::no_requests(
            load_stats::thresholds::OVERALL_SCOPE,
        ));
    }
    results.extend(load_stats::thresholds::evaluate_drift(
        &thresholds,
        f.drift.as_ref(),
    ));
    let behaviour = judge_behaviour(&f.scenario, &f.outputs, f.behaviour.as_ref(), &f.timeline)?;
    if let (Some(_), Some(collected)) = (&f.shard, &f.behaviour) {
        behaviour::write_inputs(f.outputs.dir(), collected)?;
    }
    let failures = behaviour.iter().flat_map(behaviour_failures).collect();
    let unproven = behaviour
        .iter()
        .flat_map(BehaviourReport::inconclusive_reasons);
    let generator = generator::judge(
        &generator_load(&f.plan, &f.counters, &f.resources),
        &f.scenario.generator_limits(),
    );
    let mut verdict = decide(f.cause, &results, &f.resources.verdict)
        .with_failures(failures)
        .with_inconclusive(generator.reasons.iter().cloned().chain(unproven).collect());
    verdict.reasons.extend(generator.target_saturated.clone());
    verdict
        .reasons
        .extend(f.shard.as_ref().and_then(crate::shard::late_start_reason));
    let timeline = f.behaviour.as_ref().map_or(&f.timeline, |c| &c.timeline);
    let timeline_json =
        (!f.scenario.timeline.is_empty()).then(|| behaviour::timeline_json(timeline));
    if let Some(m) = metrics {
        live::publish_verdicts(m, &results, behaviour.as_ref(), &verdict);
    }
    let mut summary = Summary::from_run(
        &stats,
        config_json(&f.scenario, &f.plan, args, &f.upstream, &f.applied),
        results,
    );
    summary.verdict = verdict.name.to_string();
    summary.exit_code = verdict.exit.code();
    summary.verdict_reasons = verdict.reasons.clone();
    summary.leak_report = f.resources.report;
    summary.engine = serde_json::json!({
        "late_sends": f.counters.late.load(Ordering::Relaxed),
        "dropped_sends": f.counters.dropped.load(Ordering::Relaxed),
        "slot_late_sends": f.counters.slot_late.load(Ordering::Relaxed),
        "slot_dropped_sends": f.counters.slot_dropped.load(Ordering::Relaxed),
        "sent": f.counters.sent.load(Ordering::Relaxed),
        "hot_path_client": "hyper-http1-conn",
        "resources": f.resources.harness,
        "behaviour": behaviour,
        "timeline": timeline_json,
        "latency_drift": f.drift,
        "generator": generator,
        "shard": f.shard,
    });
    f.outputs.write_summary(&summary)?;
    f.outputs
        .write_reports(&summary, !args.no_report, args.junit.as_deref())?;
    if let Some(m) = metrics {
        m.set_phase(RunPhase::Done);
    }
    if !args.quiet {
        print_report(&summary, &f.outputs, behaviour.as_ref());
    }
    Ok(verdict.exit)
}

/// The generator's figures of the run: sends, late and dropped sends, and its own mean CPU.
fn generator_load(
    plan: &Plan,
    counters: &engine::Counters,
    resources: &crate::monitoring::ResourcesOutcome,
) -> GeneratorLoad {
    GeneratorLoad {
        open_model: matches!(plan.load, LoadSpec::Open(_)),
        sent: counters.sent.load(Ordering::Relaxed),
        late: counters.late.load(Ordering::Relaxed),
        dropped: counters.dropped.load(Ordering::Relaxed),
        slot_late: counters.slot_late.load(Ordering::Relaxed),
        slot_dropped: counters.slot_dropped.load(Ordering::Relaxed),
        max_in_flight: match &plan.load {
            LoadSpec::Open(o) => o.max_in_flight,
            LoadSpec::Closed(_) => 0,
        },
        busiest_thread_percent: match counters.busiest_thread_permille.load(Ordering::Relaxed) {
            0 => None,
            permille => Some(permille as f64 / 10.0),
        },
        cpu_mean_percent: resources.harness["cpu_mean_percent"].as_f64(),
        cores: generator::available_cores(),
    }
}

/// Behaviour measurements and verdicts (with the scenario's `[behaviour]` thresholds); writes `ledger.json`
/// and, with a timeline, `timeline.csv`. `None` without the in-process mock and without thresholds.
fn judge_behaviour(
    scenario: &Scenario,
    outputs: &Outputs,
    collected: Option<&behaviour::Collected>,
    timeline_without_mock: &timeline::TimelineOutcome,
) -> Result<Option<BehaviourReport>, HarnessError> {
    let thresholds = scenario.behaviour.as_ref().map(|b| b.get_ref().clone());
    let dir = outputs.dir();
    if !scenario.timeline.is_empty() {
        let timeline = collected.map_or(timeline_without_mock, |c| &c.timeline);
        behaviour::write_timeline(dir, timeline)?;
    }
    let Some(collected) = collected else {
        return Ok(thresholds.map(|t| BehaviourReport::new(Default::default(), &t)));
    };
    behaviour::write_ledger(dir, &collected.after)?;
    Ok(Some(behaviour::judge(
        collected,
        &thresholds.unwrap_or_default(),
    )))
}

/// One verdict reason per failed behaviour verdict.
pub(crate) fn behaviour_failures(report: &BehaviourReport) -> Vec<String> {
    report
        .verdicts
        .iter()
        .filter(|v| v.failed())
        .map(|v| format!("behaviour: {}", v.detail))
        .collect()
}

/// The effective configuration echoed into `summary.json`.
fn config_json(
    scenario: &Scenario,
    plan: &Plan,
    args: &RunArgs,
    upstream: &serde_json::Value,
    applied: &crate::overrides::Applied,
) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario.name,
        "scenario_file": scenario.origin,
        "profile": applied.profile.as_ref().map(|(file, name)| serde_json::json!({"file": file, "name": name})),
        "header_overrides": applied.request_headers,
        "key_header": applied.key_header.as_ref().map(|h| h.as_str()),
        "load": plan.load,
        "seed": plan.seed,
        "tags": plan.tags.include,
        "exclude_tags": plan.tags.exclude,
        "target": args.target,
        "upstream": upstream,
        "thresholds": scenario.thresholds,
        "behaviour": scenario.behaviour.as_ref().map(|b| b.get_ref()),
        "timeline": scenario.timeline.iter().map(|e| e.get_ref()).collect::<Vec<_>>(),
        "monitor": { "judge_leaks": scenario.monitor.judge_leaks },
    })
}

/// The human report after the run (also after a merge).
pub(crate) fn print_report(
    summary: &Summary,
    outputs: &Outputs,
    behaviour: Option<&BehaviourReport>,
) {
    let a = &summary.aggregate;
    let pct = a.latency.as_ref().map(|l| {
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
            l.percentiles.p50, l.percentiles.p95, l.percentiles.p99
        )
    });
    eprintln!(
        "{} requests, {:.1} req/s, {} failures ({:.2} %, {:.2} % excluding 429), {}",
        a.requests,
        a.requests_per_sec,
        a.failures,
        a.error_percent,
        a.error_percent_excluding_429,
        pct.unwrap_or_else(|| "no latency data".into())
    );
    for t in &summary.thresholds {
        eprintln!("  {t}");
    }
    for v in behaviour.iter().flat_map(|b| &b.verdicts) {
        let name = |x: serde_json::Result<serde_json::Value>| {
            x.ok()
                .and_then(|x| x.as_str().map(str::to_uppercase))
                .unwrap_or_default()
        };
        let (outcome, check) = (
            name(serde_json::to_value(v.outcome)),
            name(serde_json::to_value(v.check)),
        );
        let subject = v
            .subject
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        eprintln!(
            "  {outcome} behaviour {}{subject}: {}",
            check.to_lowercase(),
            v.detail
        );
    }
    run_report::leak_judging::terminal_lines(summary)
        .iter()
        .for_each(|l| eprintln!("  {l}"));
    for r in &summary.verdict_reasons {
        eprintln!("  - {r}");
    }
    eprintln!(
        "verdict: {} (exit {}) — {}",
        summary.verdict,
        summary.exit_code,
        outputs.dir().display()
    );
}
