//! Every scenario of the catalogue, shortened with `-t` (and, where a short run cannot reach a throughput target,
//! a documented CLI override), against the default system under test (in-process mock + reference proxy): each
//! must end with its expected verdict and exit code, and the checks it is about must actually have been judged.
//! Two runs at a time, 3-40 s each (about 3-4 min of CI on 2 cores). The failure scenarios run at `-t 30s`, as a
//! pull-request smoke of the `failure` tag runs them: their faults end early enough for a late recovery to be
//! confirmed (two merged 3 s windows beyond `max_recovery`), else a recovery verdict would be INCONCLUSIVE rather
//! than PASS or FAIL. Every run must also have measured the proxy's behaviour from the mock's ledger.
//!
//! Expected verdicts: PASS (exit 0) for every scenario except `soak`, `nightly` and `tls_soak`, whose leak
//! judgement needs minutes after their warm-up (5 min / 15 min / 2 min): shortened to 16 s, the leak verdict is
//! INCONCLUSIVE, so the run is exit 5 — what matters here is that the judgement ran (a leak report with its
//! verdict, the drift thresholds and behaviour verdicts judged) and that nothing failed (exit 1).

mod common;

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One shortened catalogue run and what it must show.
struct Case {
    /// Scenario file name without `.toml`.
    name: &'static str,
    /// `-t` and any threshold overrides.
    args: &'static [&'static str],
    /// Expected exit code.
    exit: i32,
    /// Behaviour checks that must have passed (not skipped).
    behaviour: &'static [&'static str],
    /// Threshold metrics that must have been judged and passed.
    thresholds: &'static [&'static str],
}

/// The failure scenarios (tag `failure`) run as a pull-request smoke runs them: `-t 30s`, the same for all six.
/// Their timelines are laid out for it (fault over by 18 s, `all_keys_exhausted`'s by 14 s), so each still
/// judges recovery and the checks it exists for.
const FAILURE_SMOKE: &[&str] = &["-t", "30s"];

/// Short runs of closed-model suites cannot reach the users' throughput targets (the spawn ramp alone takes
/// 4-10 s), so `--min-rps` is lowered for them (and fewer users keep two runs at a time within a small CI
/// machine). Their latency limits are widened too (`--p50 250ms --p95 1s --p99 2s`): CI runs a debug build, two
/// runs at a time, on a 2-core machine where a neighbouring test can stall the box for a moment, and the users'
/// millisecond targets are for a release build on their hardware; the error targets stay as in the scenario. `soak` and `nightly` run at 100 req/s (`tls_soak` at its own 50 req/s) with
/// p99 and drift limits widened (`--p99`, `--max-p95-drift-*`): a 16 s debug-build run on a shared machine says
/// nothing about an hour's tail latency; what they must show is that every judgement ran.
const CASES: [Case; 15] = [
    Case {
        name: "quick_smoke",
        args: &["-t", "3s"],
        exit: 0,
        behaviour: &[],
        thresholds: &["p99", "error_percent_excluding_429"],
    },
    Case {
        name: "normal_load",
        args: &[
            "-t",
            "12s",
            "-u",
            "60",
            "-r",
            "30",
            "--min-rps",
            "10",
            "--p50",
            "250ms",
            "--p95",
            "1s",
            "--p99",
            "2s",
        ],
        exit: 0,
        behaviour: &[],
        thresholds: &[
            "min_rps",
            "p50",
            "p95",
            "p99",
            "error_percent_excluding_429",
        ],
    },
    Case {
        name: "high_load",
        args: &[
            "-t",
            "10s",
            "-u",
            "40",
            "-r",
            "40",
            "--min-rps",
            "30",
            "--p50",
            "250ms",
            "--p95",
            "1s",
            "--p99",
            "2s",
        ],
        exit: 0,
        behaviour: &[],
        thresholds: &[
            "min_rps",
            "p50",
            "p95",
            "p99",
            "error_percent_excluding_429",
        ],
    },
    Case {
        name: "failure_scenario",
        args: &[
            "-t", "10s", "-u", "30", "-r", "30", "--p50", "250ms", "--p95", "1s", "--p99", "2s",
        ],
        exit: 0,
        behaviour: &[],
        thresholds: &["p95", "error_percent_excluding_429"],
    },
    Case {
        name: "concurrent_key_switching",
        args: &[
            "-t", "10s", "-u", "30", "-r", "30", "--p50", "250ms", "--p95", "1s", "--p99", "2s",
        ],
        exit: 0,
        behaviour: &[],
        thresholds: &["p50", "p95", "p99", "error_percent_excluding_429"],
    },
    Case {
        name: "slow_upstream",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &["recovery", "fairness"],
        thresholds: &["error_percent"],
    },
    Case {
        name: "soak",
        args: &[
            "-t",
            "16s",
            "--rate",
            "100",
            "--p99",
            "2s",
            "--max-p95-drift-ratio",
            "20",
            "--max-p95-drift-ms",
            "1000",
        ],
        exit: 5,
        behaviour: &["fairness", "retry_after", "key_report"],
        thresholds: &["p99", "error_percent", "p95_drift_ratio", "p95_drift_ms"],
    },
    Case {
        name: "nightly",
        args: &[
            "-t",
            "16s",
            "--rate",
            "100",
            "--p99",
            "2s",
            "--max-p95-drift-ratio",
            "20",
            "--max-p95-drift-ms",
            "1000",
        ],
        exit: 5,
        behaviour: &["fairness", "retry_after", "key_report"],
        thresholds: &["p99", "error_percent", "p95_drift_ratio", "p95_drift_ms"],
    },
    Case {
        name: "tls_soak",
        args: &[
            "-t",
            "16s",
            "--p99",
            "2s",
            "--max-p95-drift-ratio",
            "20",
            "--max-p95-drift-ms",
            "1000",
        ],
        exit: 5,
        behaviour: &["connection_reuse"],
        thresholds: &["p99", "error_percent", "p95_drift_ratio", "p95_drift_ms"],
    },
    Case {
        name: "key_rate_limited",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &[
            "retry_after",
            "failover_masking",
            "fairness",
            "key_report",
            "recovery",
        ],
        thresholds: &[],
    },
    Case {
        name: "all_keys_exhausted",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &["retry_after", "recovery", "exhausted_answer"],
        thresholds: &[],
    },
    Case {
        name: "upstream_outage",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &["recovery", "fairness"],
        thresholds: &[],
    },
    Case {
        name: "stream_interrupted",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &["stream_buffering", "ttft_overhead", "recovery"],
        thresholds: &[],
    },
    Case {
        name: "key_revoked",
        args: FAILURE_SMOKE,
        exit: 0,
        behaviour: &["key_report", "retry_after", "stream_buffering"],
        thresholds: &[],
    },
    Case {
        name: "burst_then_recover",
        args: &["-t", "40s"],
        exit: 0,
        behaviour: &["recovery", "fairness"],
        thresholds: &[],
    },
];

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

async fn run(dir: &Path, case: &Case) -> (Option<i32>, serde_json::Value, String) {
    let scenario = scenarios_dir().join(format!("{}.toml", case.name));
    let args: Vec<&str> = case.args.iter().copied().chain(["--no-report"]).collect();
    let run = common::run_scenario(
        &scenario,
        &args,
        &dir.join(case.name),
        Duration::from_secs(150),
    )
    .await;
    (run.code, run.summary, run.stderr)
}

/// What is wrong with one run, if anything.
fn problems(case: &Case, code: Option<i32>, summary: &serde_json::Value) -> Vec<String> {
    let mut wrong = Vec::new();
    if code != Some(case.exit) {
        wrong.push(format!("exit {code:?}, expected {}", case.exit));
    }
    let verdicts = summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    wrong.extend(
        verdicts
            .iter()
            .filter(|v| v["outcome"] == "fail")
            .map(|v| format!("behaviour failed: {v}")),
    );
    for check in case.behaviour {
        if !verdicts
            .iter()
            .any(|v| v["check"] == *check && v["outcome"] == "pass")
        {
            wrong.push(format!("behaviour {check} not judged as pass"));
        }
    }
    let thresholds = summary["thresholds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for metric in case.thresholds {
        if !thresholds
            .iter()
            .any(|t| t["metric"] == *metric && t["passed"] == true)
        {
            wrong.push(format!("threshold {metric} not judged as pass"));
        }
    }
    if case.exit == 5 {
        let leak = &summary["leak_report"]["verdict"];
        if leak != "INCONCLUSIVE" {
            wrong.push(format!(
                "leak judgement not INCONCLUSIVE: {}",
                summary["leak_report"]
            ));
        }
        if summary["engine"]["latency_drift"]["p95_ratio"]
            .as_f64()
            .is_none()
        {
            wrong.push("no latency drift measured".into());
        }
    }
    wrong
}

#[test]
fn the_table_covers_every_catalogue_scenario() {
    let mut files: Vec<String> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut covered: Vec<String> = CASES.iter().map(|c| c.name.to_string()).collect();
    covered.sort();
    assert_eq!(covered, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalogue_scenario_shortened_gives_its_expected_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = futures::stream::iter(CASES.iter())
        .map(|case| {
            let dir = tmp.path().to_path_buf();
            async move { (case, run(&dir, case).await) }
        })
        .buffer_unordered(2)
        .collect::<Vec<_>>()
        .await;
    let mut report = Vec::new();
    for (case, (code, summary, stderr)) in runs {
        let wrong = problems(case, code, &summary);
        if !wrong.is_empty() {
            report.push(format!(
                "{}: {}\n  reasons: {}\n  recovery: {}\n  {stderr}",
                case.name,
                wrong.join("; "),
                summary["verdict_reasons"],
                summary["engine"]["behaviour"]["measurements"]["recovery"]
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
