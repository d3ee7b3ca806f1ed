//! Proxy-behaviour verdicts and fault timelines on the real `harness` binary: in-process mock, reference proxy,
//! loopback only, a few seconds per run.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_harness");

/// The shared chat + streaming scenario (seed 11); `extra` appends tables.
fn scenario(name: &str, run_time: &str, extra: &str) -> String {
    common::chat_and_stream_scenario(name, 11, run_time, extra)
}

async fn run(dir: &Path, name: &str, text: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write scenario");
    let out = dir.join(name);
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .args(args)
        .stdin(Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("harness finished")
        .expect("spawn harness");
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap_or_else(|e| {
        panic!(
            "summary.json: {e}; {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output,
        serde_json::from_str(&text).expect("summary is JSON"),
    )
}

fn verdict<'a>(summary: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .expect("behaviour verdicts")
        .iter()
        .find(|v| v["check"] == check)
        .unwrap_or_else(|| panic!("no {check} verdict in {}", summary["engine"]["behaviour"]))
}

/// key2 rate-limited from 1 s to 3 s of a run shortened by `-t` to 5 s: the window is in `timeline.csv`, the
/// event planned after the end is listed as skipped, the reference proxy rests key2 for the announced 5 s (no
/// Retry-After violation: the rest outlasts the window, so no request races a second 429) and still spreads the
/// load fairly; the ledger is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_window_is_logged_and_the_reference_proxy_complies() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = r#"
[upstream.latency]
ttft = { fixed = "10ms" }
inter_token = { fixed = "5ms" }

[[timeline]]
at = "1s"
for = "2s"
fault = { keys = ["key2"], action = "rate_limit", retry_after = "5s" }

[[timeline]]
at = "20s"
label = "outage after the shortened end"
fault = { action = "error", status = 503 }

[behaviour]
max_retry_after_violations = 0
min_fairness = 0.6
min_key_report_agreement = 0.9
"#;
    let text = scenario("rate_limited", "30s", extra);
    let (o, s) = run(tmp.path(), "rate_limited", &text, &["-t", "5s"]).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stderr}\n{}",
        s["engine"]["behaviour"]
    );

    let csv = std::fs::read_to_string(tmp.path().join("rate_limited/timeline.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "start_s,end_s,label");
    assert_eq!(rows.len(), 2, "{csv}");
    let cols: Vec<&str> = rows[1].split(',').collect();
    let (start, end): (f64, f64) = (cols[0].parse().unwrap(), cols[1].parse().unwrap());
    assert!(
        (0.9..1.5).contains(&start) && (2.9..3.5).contains(&end),
        "{csv}"
    );
    assert_eq!(cols[2], "key2 rate_limit");
    let skipped = &s["engine"]["timeline"]["skipped"];
    assert_eq!(
        skipped[0]["label"], "outage after the shortened end",
        "{skipped}"
    );

    let m = &s["engine"]["behaviour"]["measurements"];
    assert!(
        m["retry_after"]["rate_limited"].as_u64().unwrap() > 0,
        "the fault fired: {m}"
    );
    assert_eq!(m["retry_after"]["violations"], 0);
    assert_eq!(verdict(&s, "retry_after")["outcome"], "pass");
    assert_eq!(verdict(&s, "fairness")["outcome"], "pass");
    assert_eq!(verdict(&s, "key_report")["outcome"], "pass");
    assert_eq!(m["masking"][0]["window"], "key2 rate_limit");
    assert!(m["masking"][0]["upstream"]["errors"].as_u64().unwrap() > 0);
    assert!(tmp.path().join("rate_limited/ledger.json").exists());
}

/// Every key rate-limited for 2 s with a 2 s `retry-after`: the reference proxy answers the requests sent
/// meanwhile at once (a 429 of its own while every key rests), so `exhausted_answer` passes with a 1 s limit.
/// A window where only one key is limited does not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_proxy_answers_at_once_while_every_key_is_exhausted() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = r#"
[[timeline]]
at = "1s"
for = "2s"
label = "every key"
fault = { action = "rate_limit", retry_after = "2s" }

[[timeline]]
at = "3.5s"
for = "1s"
label = "key1 only"
fault = { keys = ["key1"], action = "rate_limit", retry_after = "1s" }

[behaviour]
max_exhausted_answer = "1s"
"#;
    let text = scenario("exhausted", "5s", extra).replace(
        "max_tokens = 8 }",
        "max_tokens = 8 }
expect = [200, 429]",
    );
    let (o, s) = run(tmp.path(), "exhausted", &text, &[]).await;
    let behaviour = &s["engine"]["behaviour"];
    assert_eq!(o.status.code(), Some(0), "{behaviour}");
    let measured = &behaviour["measurements"]["exhausted_answer"];
    assert_eq!(
        measured["windows"],
        serde_json::json!(["every key"]),
        "{measured}"
    );
    assert!(measured["sent"].as_u64().unwrap() > 10, "{measured}");
    assert_eq!(measured["sent"], measured["answered"], "{measured}");
    assert!(measured["p99_ms"].as_f64().unwrap() < 1000.0, "{measured}");
    assert_eq!(verdict(&s, "exhausted_answer")["outcome"], "pass");
}

/// A threshold the run cannot meet fails it with exit 1 and names the behaviour in the verdict reasons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_behaviour_verdict_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // key2 and key3 answer 401 for the whole run: the proxy disables them after one attempt each and sends
    // everything else on key1, so the load over the three eligible keys is lopsided and 0.99 cannot be met.
    let extra = r#"
[[timeline]]
at = "0s"
fault = { keys = ["key2", "key3"], action = "error", status = 401 }

[behaviour]
min_fairness = 0.99
"#;
    let text = scenario("unfair", "2s", extra);
    let (o, s) = run(tmp.path(), "unfair", &text, &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", s["engine"]["behaviour"]);
    assert_eq!(s["verdict"], "FAIL");
    assert_eq!(verdict(&s, "fairness")["outcome"], "fail");
    let reasons = s["verdict_reasons"].to_string();
    assert!(reasons.contains("behaviour:"), "{reasons}");
}

/// Two runs with the same seed and a probabilistic fault rule: each key's fault sequence (route, index, kind)
/// agrees over the requests both runs made on that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_fault_sequence_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = r#"
[upstream]
seed = 99
[[upstream.rules]]
action = "error"
status = 500
probability = 0.3
"#;
    let text = scenario("seeded", "2s", extra);
    let mut ledgers = Vec::new();
    for run_name in ["first", "second"] {
        let (_, _) = run(tmp.path(), run_name, &text, &[]).await;
        let ledger =
            std::fs::read_to_string(tmp.path().join(run_name).join("ledger.json")).unwrap();
        ledgers.push(serde_json::from_str::<mock_upstream::LedgerSnapshot>(&ledger).unwrap());
    }
    let mut compared = 0;
    for (key, first) in &ledgers[0].keys {
        let Some(second) = ledgers[1].keys.get(key) else {
            continue;
        };
        // Fault indexes count a key's requests per route; compare what both runs reached on each route.
        let on_route = |l: &mock_upstream::KeyLedgerSnapshot, route| {
            l.requests
                .get(&route)
                .map_or(0, |s| s.values().sum::<u64>())
        };
        let common = |route| on_route(first, route).min(on_route(second, route));
        let prefix = |l: &mock_upstream::KeyLedgerSnapshot| {
            l.fault_sequence
                .iter()
                .filter(|f| f.index < common(f.route))
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(prefix(first), prefix(second), "key {key}");
        compared += prefix(first).len();
    }
    assert!(compared > 5, "enough faults to compare: {compared}");
}
