//! Latency drift end to end: a latency fault switched on for the last part of a short run makes the last
//! window slower than the first by about the injected delay; `max_p95_drift_ms` below it fails the run
//! (exit 1), and the figures are in `summary.json` under `engine.latency_drift`.

mod common;

use std::time::Duration;

/// 4 s run → 1 s windows; from 2.5 s every chat answer is 80 ms slower.
const SCENARIO: &str = r#"
name = "drift"
seed = 5
[load]
model = "closed"
users = 4
spawn_rate = 100
think_time = "20ms"
run_time = "4s"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = { model = "gpt-4", messages = [{ role = "user", content = "hi" }], max_tokens = 8 }

[[timeline]]
at = "2500ms"
label = "slower"
fault = { action = "latency", latency = { fixed = "80ms" } }

[thresholds]
max_p95_drift_ms = 40
max_p95_drift_ratio = 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_last_window_fails_the_drift_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "drift.toml", SCENARIO);
    let common::HarnessRun {
        code,
        summary,
        stderr,
    } = common::run_scenario(&file, &[], &tmp.path().join("out"), Duration::from_secs(60)).await;
    let drift = &summary["engine"]["latency_drift"];
    assert_eq!(drift["window_s"], 1.0, "{drift}");
    assert_eq!(drift["last"]["start_s"], 3.0, "{drift}");
    let diff = drift["p95_diff_ms"].as_f64().expect("p95 drift measured");
    assert!((60.0..200.0).contains(&diff), "{drift}");
    assert!(
        drift["first"]["requests"].as_u64().unwrap_or(0) > 0,
        "{drift}"
    );
    assert_eq!(code, Some(1), "{stderr}");
    let results = summary["thresholds"].as_array().expect("thresholds");
    let by_metric = |m: &str| results.iter().find(|r| r["metric"] == m).cloned();
    let ms = by_metric("p95_drift_ms").expect("ms drift judged");
    assert_eq!(ms["passed"], false, "{ms}");
    let ratio = by_metric("p95_drift_ratio").expect("ratio drift judged");
    assert_eq!(ratio["passed"], true, "{ratio}");
}
