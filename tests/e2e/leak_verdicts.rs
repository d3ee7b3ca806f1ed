//! Leak verdicts on real processes: the harness runs a load against the leaky fixture proxy (the reference
//! proxy plus a middleware that really leaks) and must judge it LEAK / GROWTH, while the same run against the clean
//! proxy is PASS. Runs are kept CI-short (about 80 s each, run in parallel) with fast leaks; the calibrated
//! sensitivity on long runs is `bench/leak-sensitivity-real.sh`'s job.

mod common;

use common::{describe, leaky_proxy_bin, run_scenario, temp_dir};

/// Seconds of load per run: 15 s warm-up + 60 s steady, the shortest window the leak defaults can judge.
const RUN_SECS: u64 = 75;

/// A scenario that spawns the leaky fixture with `leak_env` as its leak plan, at a steady 50 req/s.
fn leak_scenario(name: &str, leak_env: &str) -> String {
    format!(
        r#"
name = "{name}"
description = "leak verdict probe"
seed = 3

[load]
model = "open"
rate = 50
run_time = "{RUN_SECS}s"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "leak probe" }}], max_tokens = 16 }}

[proxy]
command = ["{proxy}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--keys-file", "{{keys_file}}"]
env = {{ {leak_env} }}

[monitor]
interval = "1s"
warmup = "15s"
judge_leaks = true
"#,
        proxy = leaky_proxy_bin(),
    )
}

fn metric_verdict<'a>(summary: &'a serde_json::Value, metric: &str) -> &'a str {
    summary["leak_report"]["metrics"]
        .as_array()
        .and_then(|metrics| metrics.iter().find(|m| m["metric"] == metric))
        .and_then(|m| m["verdict"].as_str())
        .unwrap_or_else(|| panic!("no {metric} verdict in {}", summary["leak_report"]))
}

/// The three runs go at once (about 80 s of wall time instead of 240 s on CI's two test threads); each is
/// judged on its own results.
#[tokio::test(flavor = "multi_thread")]
async fn leaks_are_judged_leak_or_growth_and_the_clean_proxy_passes() {
    tokio::join!(
        memory_leak_is_leak(),
        fd_leak_is_growth(),
        clean_proxy_passes()
    );
}

async fn memory_leak_is_leak() {
    // 32 KiB x 50 req/s = 1.6 MB/s: far above the 4 MiB/h limit, yet small enough for CI.
    let dir = temp_dir();
    let plan = r#"LEAK_BYTES_PER_REQUEST = "32768""#;
    let (output, summary) = run_scenario(&dir, &leak_scenario("leaks_memory", plan), &[]).await;
    let why = describe(&output, &summary);
    assert_eq!(metric_verdict(&summary, "rss"), "LEAK", "{why}");
    assert_eq!(summary["leak_report"]["verdict"], "LEAK", "{why}");
    assert_eq!(output.status.code(), Some(1), "{why}");
    assert!(dir.join("results/resources.csv").exists());
}

async fn fd_leak_is_growth() {
    // One descriptor every 5 requests: 10 fds/s, where the limit is 60 per hour.
    let dir = temp_dir();
    let plan = r#"LEAK_FD_EVERY = "5""#;
    let (output, summary) = run_scenario(&dir, &leak_scenario("leaks_fds", plan), &[]).await;
    let why = describe(&output, &summary);
    assert_eq!(metric_verdict(&summary, "fds"), "GROWTH", "{why}");
    assert_eq!(metric_verdict(&summary, "rss"), "PASS", "{why}");
    assert_eq!(output.status.code(), Some(1), "{why}");
}

async fn clean_proxy_passes() {
    let dir = temp_dir();
    let (output, summary) = run_scenario(&dir, &leak_scenario("clean", ""), &[]).await;
    let why = describe(&output, &summary);
    assert_eq!(summary["leak_report"]["verdict"], "PASS", "{why}");
    assert_eq!(summary["verdict"], "PASS", "{why}");
    assert_eq!(output.status.code(), Some(0), "{why}");
}
