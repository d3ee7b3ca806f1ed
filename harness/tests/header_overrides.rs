//! `-H` on the real binary: every load request — plain and streaming — carries the overrides (a header replaced,
//! one added, one removed, a value read from the environment), and the secret never lands in the results.

mod common;

use std::time::Duration;

const SCENARIO: &str = r#"
name = "headers"
seed = 3
[load]
model = "closed"
users = 2
run_time = "2s"

[[request]]
name = "plain"
method = "POST"
path = "/ok/plain"
headers = { Authorization = "Bearer client-token", X-Drop = "1" }
body = { model = "gpt-4.1", messages = [{ role = "user", content = "hi" }] }

[[request]]
name = "stream"
method = "POST"
path = "/ok/stream"
stream = true
headers = { authorization = "Bearer client-token", X-Drop = "1" }
body = { model = "gpt-4.1", stream = true, messages = [{ role = "user", content = "hi" }] }

[thresholds]
max_error_percent = 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_overrides_reach_every_request_kind_and_no_secret_is_written() {
    let (url, seen) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "headers.toml", SCENARIO);
    let out = tmp.path().join("out");
    std::env::set_var("HARNESS_TEST_MASTER_KEY", "sk-master-secret");
    let run = common::run_scenario(
        &file,
        &[
            "--target",
            &url,
            "-H",
            "Authorization: Bearer {env:HARNESS_TEST_MASTER_KEY}",
            "-H",
            "X-Drop:",
            "--header",
            "X-Team: blue",
        ],
        &out,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for path in ["/ok/plain", "/ok/stream"] {
        assert!(seen.hits(path) > 0, "{path} was never requested");
        let headers = seen.headers(path);
        assert!(
            headers.contains("authorization: Bearer sk-master-secret"),
            "{path}: {headers:?}"
        );
        assert!(headers.contains("x-team: blue"), "{path}: {headers:?}");
        assert!(
            !headers.iter().any(|h| h.starts_with("x-drop")),
            "{path}: removed header still sent: {headers:?}"
        );
        assert!(
            !headers.contains("authorization: Bearer client-token"),
            "{path}: the scenario's header was not replaced"
        );
    }
    assert_eq!(
        run.summary["config"]["header_overrides"],
        serde_json::json!(["Authorization", "X-Drop", "X-Team"])
    );
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read(&path).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains("sk-master-secret"),
            "{} contains the secret",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_header_flag_is_exit_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "headers.toml", SCENARIO);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg(&file)
        .args(["--target", "http://127.0.0.1:9", "-H", "no colon here"])
        .output()
        .expect("spawn harness");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("-H \"no colon here\": expected 'Name: value'"),
        "{stderr}"
    );
}
