//! `harness run`: scenario → system under test → load → results → verdict → exit code.
//!
//! Every path out of a started run — run time reached, Ctrl-C / SIGTERM, the proxy crashing — goes through the
//! same ending: stop the load, fold in what was recorded, write every result file, stop the proxy and judge.

mod output;
mod plan;
mod progress;
mod ticker;
mod verdict;

pub use output::Outputs;
pub use plan::{Plan, PlanError};
pub use verdict::{decide, ResourceVerdict, StopCause, Verdict};

use crate::cli::RunArgs;
use crate::engine::{self, EngineConfig, Mix};
use crate::error::HarnessError;
use crate::exit::Exit;
use crate::scenario::{LoadSpec, Scenario};
use crate::sut::Sut;
use load_stats::summary::Summary;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Runs a scenario end to end and returns the exit code to use.
pub async fn run(args: RunArgs) -> Result<Exit, HarnessError> {
    let scenario = Scenario::from_file(&args.scenario)?;
    let plan = Plan::new(&scenario, &args).map_err(|e| HarnessError::BadInput(e.to_string()))?;
    let specs: Vec<_> = scenario
        .requests
        .iter()
        .map(|r| r.get_ref().clone())
        .collect();
    // Tag selection problems are bad input: find them before starting anything.
    Mix::new(&specs, "http://127.0.0.1", &plan.tags)
        .map_err(|e| HarnessError::BadInput(e.to_string()))?;
    let outputs = Outputs::create(
        &scenario.name,
        args.out.as_deref(),
        args.csv.as_deref(),
        args.json.as_deref(),
    )?;
    let sut = Sut::start(&scenario, &args, outputs.dir()).await?;
    let mix = match Mix::new(&specs, &sut.target, &plan.tags) {
        Ok(m) => m,
        Err(e) => {
            sut.shutdown().await;
            return Err(HarnessError::BadInput(e.to_string()));
        }
    };
    if !args.quiet {
        eprintln!(
            "harness: {} against {} — results in {}",
            scenario.name,
            sut.target,
            outputs.dir().display()
        );
    }
    let monitor = crate::monitoring::start(&sut, &scenario, &outputs, plan.run_time());
    let stop = CancellationToken::new();
    let cause = Arc::new(Mutex::new(StopCause::Completed));
    let mut watchers = spawn_stop_watchers(&sut, &stop, &cause);
    let open_model = matches!(plan.load, LoadSpec::Open(_));
    let mut progress = progress::Progress::new(plan.run_time(), args.quiet);
    let engine = engine::start(
        EngineConfig {
            mix,
            load: plan.load.clone(),
            seed: plan.seed,
        },
        &stop,
    );
    let counters = engine.counters_handle();
    let stats = ticker::drive(engine, &outputs, &mut progress, open_model).await;
    progress.finish();
    watchers.abort_all();
    let cause = *cause.lock().unwrap_or_else(|p| p.into_inner());
    if cause == StopCause::Completed {
        monitor.drain().await;
    }
    let resources = monitor.finish();
    let proxy_exit = sut.shutdown().await;
    if let Some(info) = proxy_exit.filter(|_| cause == StopCause::Completed) {
        tracing::debug!("proxy stopped: {info}");
    }
    let stats = stats?;
    outputs.write_final_csvs(&stats)?;
    let mut thresholds = scenario.thresholds.clone().unwrap_or_default();
    thresholds.override_with(&args.thresholds.to_thresholds());
    let results = load_stats::thresholds::evaluate_run(&thresholds, &stats);
    let verdict = decide(cause, &results, &resources.verdict);
    let mut summary = Summary::from_run(&stats, config_json(&scenario, &plan, &args), results);
    summary.verdict = verdict.name.to_string();
    summary.exit_code = verdict.exit.code();
    summary.verdict_reasons = verdict.reasons.clone();
    summary.leak_report = resources.report;
    summary.engine = serde_json::json!({
        "late_sends": counters.late.load(Ordering::Relaxed),
        "dropped_sends": counters.dropped.load(Ordering::Relaxed),
        "sent": counters.sent.load(Ordering::Relaxed),
        "hot_path_client": "hyper-util",
        "resources": resources.harness,
    });
    outputs.write_summary(&summary)?;
    if !args.quiet {
        print_report(&summary, &outputs);
    }
    Ok(verdict.exit)
}

/// Ctrl-C / SIGTERM and proxy-exit watchers: each records its cause and stops the load.
fn spawn_stop_watchers(
    sut: &Sut,
    stop: &CancellationToken,
    cause: &Arc<Mutex<StopCause>>,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let set_cause = |cause: &Arc<Mutex<StopCause>>, c: StopCause| {
        let mut slot = cause.lock().unwrap_or_else(|p| p.into_inner());
        if *slot == StopCause::Completed {
            *slot = c;
        }
    };
    let (stop1, cause1) = (stop.clone(), cause.clone());
    set.spawn(async move {
        if wait_for_signal().await {
            set_cause(&cause1, StopCause::Interrupted);
            stop1.cancel();
        }
    });
    if let Some(mut exited) = sut.exit_watch() {
        let (stop2, cause2) = (stop.clone(), cause.clone());
        set.spawn(async move {
            if let Ok(info) = exited.wait_for(Option::is_some).await {
                if let Some(info) = *info {
                    set_cause(&cause2, StopCause::Crashed(info));
                    stop2.cancel();
                }
            }
        });
    }
    set
}

/// Resolves on SIGINT or SIGTERM (true), or never if the handlers cannot be installed (false after logging).
async fn wait_for_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => true,
                _ = term.recv() => true,
            }
        }
        _ => {
            tracing::warn!(
                "cannot install signal handlers; Ctrl-C will kill the harness without results"
            );
            std::future::pending().await
        }
    }
}

/// The effective configuration echoed into `summary.json`.
fn config_json(scenario: &Scenario, plan: &Plan, args: &RunArgs) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario.name,
        "scenario_file": scenario.origin,
        "load": plan.load,
        "seed": plan.seed,
        "tags": plan.tags.include,
        "exclude_tags": plan.tags.exclude,
        "target": args.target,
        "thresholds": scenario.thresholds,
    })
}

/// The human report after the run.
fn print_report(summary: &Summary, outputs: &Outputs) {
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
