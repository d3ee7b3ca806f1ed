//! Leak verdicts on real processes: the harness runs a load against the leaky fixture proxy (the reference
//! proxy plus a middleware that really leaks) and must judge it LEAK / GROWTH, while the same run against the clean
//! proxy is PASS. Runs are kept CI-short (about 80 s each, run in parallel) with fast leaks; the calibrated
//! sensitivity on long runs is `bench/leak-sensitivity-real.sh`'s job.
//!
//! Counts (sockets, fds) are judged faster still: a leak of ten connections a second is unmistakable within a
//! 20 s steady window sampled twice a second, so the socket-leak runs take about 25 s.

mod common;

use common::{describe, leaky_proxy_bin, run_scenario, temp_dir};

/// How long a run lasts and how its monitor samples and judges.
struct Judging {
    /// Seconds of load.
    run_secs: u64,
    /// The `[monitor]` table's body (`judge_leaks = true` is added).
    monitor: &'static str,
}

/// 15 s warm-up + 60 s steady: the shortest window the leak defaults can judge (memory needs it).
const DEFAULT_JUDGING: Judging = Judging {
    run_secs: 75,
    monitor: r#"interval = "1s"
warmup = "15s""#,
};

/// 4 s warm-up + 20 s steady at 2 samples a second (sockets are counted every 5th sample, so 8 socket counts):
/// enough for counts that grow by several a second, too short for memory (whose verdict is then INCONCLUSIVE at
/// worst). A faster interval makes the first sample's startup delay a sampling gap (INVALID).
const QUICK_COUNT_JUDGING: Judging = Judging {
    run_secs: 24,
    monitor: r#"interval = "500ms"
warmup = "4s"
[monitor.leak]
min_steady = "15s""#,
};

/// A scenario that spawns the leaky fixture with `leak_env` as its leak plan, at a steady 50 req/s.
fn leak_scenario(name: &str, leak_env: &str, judging: &Judging) -> String {
    format!(
        r#"
name = "{name}"
description = "leak verdict probe"
seed = 3

[load]
model = "open"
rate = 50
run_time = "{run_secs}s"
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
judge_leaks = true
{monitor}
"#,
        proxy = leaky_proxy_bin(),
        run_secs = judging.run_secs,
        monitor = judging.monitor,
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
    let (output, summary) = run_scenario(
        &dir,
        &leak_scenario("leaks_memory", plan, &DEFAULT_JUDGING),
        &[],
    )
    .await;
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
    let (output, summary) = run_scenario(
        &dir,
        &leak_scenario("leaks_fds", plan, &DEFAULT_JUDGING),
        &[],
    )
    .await;
    let why = describe(&output, &summary);
    assert_eq!(metric_verdict(&summary, "fds"), "GROWTH", "{why}");
    assert_eq!(metric_verdict(&summary, "rss"), "PASS", "{why}");
    assert_eq!(output.status.code(), Some(1), "{why}");
}

async fn clean_proxy_passes() {
    let dir = temp_dir();
    let (output, summary) =
        run_scenario(&dir, &leak_scenario("clean", "", &DEFAULT_JUDGING), &[]).await;
    let why = describe(&output, &summary);
    assert_eq!(summary["leak_report"]["verdict"], "PASS", "{why}");
    assert_eq!(summary["verdict"], "PASS", "{why}");
    assert_eq!(output.status.code(), Some(0), "{why}");
}

/// A proxy that opens a new upstream connection every 5 requests and never closes it is GROWTH on sockets (and
/// on fds, which include them), not on memory; the clean proxy under the same quick judging is PASS on both.
#[tokio::test(flavor = "multi_thread")]
async fn socket_leak_is_growth_on_sockets_and_the_clean_proxy_is_not() {
    let leaky_dir = temp_dir();
    let clean_dir = temp_dir();
    let plan = r#"LEAK_SOCKET_EVERY = "5""#;
    let leaky = leak_scenario("leaks_sockets", plan, &QUICK_COUNT_JUDGING);
    let clean = leak_scenario("clean_sockets", "", &QUICK_COUNT_JUDGING);
    let ((output, summary), (clean_output, clean_summary)) = tokio::join!(
        run_scenario(&leaky_dir, &leaky, &[]),
        run_scenario(&clean_dir, &clean, &[])
    );

    let why = describe(&output, &summary);
    assert_eq!(metric_verdict(&summary, "sockets"), "GROWTH", "{why}");
    assert_eq!(metric_verdict(&summary, "fds"), "GROWTH", "{why}");
    assert_ne!(metric_verdict(&summary, "rss"), "LEAK", "{why}");
    assert_eq!(summary["leak_report"]["verdict"], "GROWTH", "{why}");
    assert!(
        summary["verdict_reasons"]
            .to_string()
            .contains("sockets: rising"),
        "{why}"
    );
    assert_eq!(output.status.code(), Some(1), "{why}");

    let why = describe(&clean_output, &clean_summary);
    assert_eq!(metric_verdict(&clean_summary, "sockets"), "PASS", "{why}");
    assert_eq!(metric_verdict(&clean_summary, "fds"), "PASS", "{why}");
}
