//! Issue 6's "each verdict can be a threshold that fails the run", end to end: `harness run` with a fault
//! timeline and a `[behaviour]` table, the proxy under test spawned from the scenario's `[proxy]` command. The
//! misbehaving fixture that ignores Retry-After must fail the run (exit 1, the retry_after verdict failed); the
//! reference proxy (`leaky-proxy` without `LEAK_*` settings) passes the same scenario. A few seconds each.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn harness_bin() -> &'static str {
    env!("CARGO_BIN_EXE_harness-e2e")
}

/// key2 answers 429 with `retry-after: 2s` from 0.5 s to 3.5 s of a 4 s run; zero violations allowed.
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
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "retry-after probe" }}], max_tokens = 8 }}

[upstream]
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
for = "3s"
fault = {{ keys = ["k2"], action = "rate_limit", retry_after = "2s" }}

[behaviour]
max_retry_after_violations = 0

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

fn retry_after_verdict(summary: &serde_json::Value) -> &serde_json::Value {
    summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .expect("behaviour verdicts")
        .iter()
        .find(|v| v["check"] == "retry_after")
        .expect("a retry_after verdict")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_ignoring_retry_after_fails_the_run_and_the_reference_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let misbehaving = format!(
        r#"["{}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--key", "k1=sk-e2e-one", "--key", "k2=sk-e2e-two", "--key", "k3=sk-e2e-three", "--defect", "ignores-retry-after"]"#,
        env!("CARGO_BIN_EXE_misbehaving-proxy")
    );
    let reference = format!(
        r#"["{}", "--listen", "127.0.0.1:{{port}}", "--upstream", "{{upstream_url}}", "--keys-file", "{{keys_file}}"]"#,
        env!("CARGO_BIN_EXE_leaky-proxy")
    );
    let (bad, good) = tokio::join!(
        run(dir.path(), "ignores_retry_after", &misbehaving),
        run(dir.path(), "reference", &reference)
    );

    let (output, summary) = bad;
    let why = format!(
        "{}\n{}",
        summary["verdict_reasons"], summary["engine"]["behaviour"]["measurements"]["retry_after"]
    );
    assert_eq!(output.status.code(), Some(1), "{why}");
    assert_eq!(summary["verdict"], "FAIL", "{why}");
    let verdict = retry_after_verdict(&summary);
    assert_eq!(verdict["outcome"], "fail", "{why}");
    assert!(verdict["measured"].as_f64().unwrap() > 0.0, "{why}");
    assert!(
        summary["verdict_reasons"]
            .to_string()
            .contains("behaviour:"),
        "{why}"
    );

    let (output, summary) = good;
    let why = format!(
        "{}\n{}",
        summary["verdict_reasons"], summary["engine"]["behaviour"]["measurements"]["retry_after"]
    );
    assert_eq!(output.status.code(), Some(0), "{why}");
    let verdict = retry_after_verdict(&summary);
    assert_eq!(verdict["outcome"], "pass", "{why}");
    let rate_limited =
        &summary["engine"]["behaviour"]["measurements"]["retry_after"]["rate_limited"];
    assert!(rate_limited.as_u64().unwrap() > 0, "the fault fired: {why}");
}
