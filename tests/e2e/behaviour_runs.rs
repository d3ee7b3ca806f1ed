//! Each behaviour verdict can be a threshold that fails the run, end to end: `harness run` with a fault
//! timeline and a `[behaviour]` table, the proxy under test spawned from the scenario's `[proxy]` command. Each
//! misbehaving fixture must fail the run (exit 1) on the verdict its defect breaks; the reference proxy
//! (`leaky-proxy` without `LEAK_*` settings) passes the same scenario. Four seconds of load per run, in parallel.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn harness_bin() -> &'static str {
    env!("CARGO_BIN_EXE_harness-e2e")
}

/// Chat and streaming chat through the proxy; k2 answers 429 (`retry-after: 2s`) from 0.5 s to 2 s and k3 503
/// from 2.5 s to 3.5 s of a 4 s run. Limits: no Retry-After violation, fairness >= 0.7 (k2 rests for a while by
/// design), masking >= 0.5 per window; streams last ~100 ms upstream, so buffering shows.
fn scenario(name: &str, command: &str) -> String {
    format!(
        r#"
name = "{name}"
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
weight = 3
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "behaviour probe" }}], max_tokens = 8 }}

[[request]]
name = "stream"
method = "POST"
path = "/v1/chat/completions"
stream = true
body = {{ model = "gpt-4", stream = true, messages = [{{ role = "user", content = "behaviour probe" }}], max_tokens = 8 }}

[upstream]
[upstream.latency]
ttft = {{ fixed = "20ms" }}
inter_token = {{ fixed = "10ms" }}

[[upstream.keys]]
id = "k1"
secret = "sk-e2e-one"
[[upstream.keys]]
id = "k2"
secret = "sk-e2e-two"
[[upstream.keys]]
id = "k3"
secret = "sk-e2e-three"

[[timeline]]
at = "500ms"
for = "1500ms"
fault = {{ keys = ["k2"], action = "rate_limit", retry_after = "2s" }}

[[timeline]]
at = "2500ms"
for = "1s"
fault = {{ keys = ["k3"], action = "error", status = 503 }}

[behaviour]
max_retry_after_violations = 0
min_fairness = 0.7
min_masking = 0.5

[proxy]
command = {command}
"#
    )
}

async fn run(dir: &Path, name: &str, command: &str) -> (Output, serde_json::Value) {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, scenario(name, command)).expect("write scenario");
    let out = dir.join(name);
    let run = tokio::process::Command::new(harness_bin())
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
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

/// The outcomes of `check`'s verdicts (one per window for per-window checks).
fn outcomes(summary: &serde_json::Value, check: &str) -> Vec<String> {
    summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .expect("behaviour verdicts")
        .iter()
        .filter(|v| v["check"] == check)
        .map(|v| v["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn misbehaving(defect: &str) -> String {
    format!(
        r#"["{}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--key", "k1=sk-e2e-one", "--key", "k2=sk-e2e-two", "--key", "k3=sk-e2e-three", "--defect", "{defect}"]"#,
        env!("CARGO_BIN_EXE_misbehaving-proxy")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_defect_fails_its_verdict_and_the_reference_passes_them_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = format!(
        r#"["{}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--keys-file", "{{keys_file}}"]"#,
        env!("CARGO_BIN_EXE_leaky-proxy")
    );
    let cases = [
        ("ignores-retry-after", "retry_after"),
        ("first-key-only", "fairness"),
        ("buffers-streams", "stream_buffering"),
        ("no-failover", "failover_masking"),
    ];
    let (good, bad) = tokio::join!(
        run(dir.path(), "reference", &reference),
        futures::future::join_all(cases.iter().map(|(defect, check)| {
            let name = defect.replace('-', "_");
            let command = misbehaving(defect);
            let dir = dir.path().to_path_buf();
            async move { (*defect, *check, run(&dir, &name, &command).await) }
        }))
    );

    let (output, summary) = good;
    let why = format!(
        "reference: {}\n{}",
        summary["verdict_reasons"], summary["engine"]["behaviour"]
    );
    assert_eq!(output.status.code(), Some(0), "{why}");
    for (_, check) in cases {
        let got = outcomes(&summary, check);
        assert!(
            !got.is_empty() && got.iter().all(|o| o == "pass"),
            "{check}: {got:?} {why}"
        );
    }
    let rate_limited =
        &summary["engine"]["behaviour"]["measurements"]["retry_after"]["rate_limited"];
    assert!(
        rate_limited.as_u64().unwrap() > 0,
        "the faults fired: {why}"
    );

    for (defect, check, (output, summary)) in bad {
        let why = format!("{defect}: {}", summary["verdict_reasons"]);
        assert_eq!(output.status.code(), Some(1), "{why}");
        assert_eq!(summary["verdict"], "FAIL", "{why}");
        assert!(
            outcomes(&summary, check).iter().any(|o| o == "fail"),
            "{check} did not fail: {why}"
        );
        assert!(
            summary["verdict_reasons"]
                .to_string()
                .contains("behaviour:"),
            "{why}"
        );
    }
}
