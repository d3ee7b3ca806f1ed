//! `-H` on the real binary: every load request — plain and streaming — carries the overrides (a header replaced,
//! one added, one removed, a value read from the environment), and the secret never lands in the results. And a
//! profile's `key_header`: a proxy that names its key in another header meets the scenario's `X-Key-Used`
//! requirement through it.

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

const KEYED: &str = r#"
name = "keyed"
seed = 3
[load]
model = "closed"
users = 1
run_time = "1s"

[[request]]
name = "chat"
path = "/keyed/chat"
expect_header = "X-Key-Used"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_key_header_replaces_x_key_used() {
    let (url, _seen) = common::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "keyed.toml", KEYED);
    let profile = |key_header: &str| {
        let path = tmp
            .path()
            .join(format!("profile-{}.toml", key_header.len()));
        std::fs::write(
            &path,
            format!("key_header = \"{key_header}\"\n[attach]\ntarget = \"{url}\"\n"),
        )
        .unwrap();
        path
    };
    // Without the profile the target's responses lack X-Key-Used, so every request fails (Locust's rule).
    let plain = common::run_scenario(
        &file,
        &["--target", &url],
        &tmp.path().join("plain"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(plain.code, Some(1), "{}", plain.stderr);
    for (key_header, recorded) in [
        ("x-model-id", serde_json::json!("x-model-id")),
        ("", serde_json::Value::Null),
    ] {
        let path = profile(key_header);
        let run = common::run_scenario(
            &file,
            &["--proxy", path.to_str().unwrap()],
            &tmp.path().join(format!("run-{}", key_header.len())),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            run.code,
            Some(0),
            "key_header {key_header:?}: {}",
            run.stderr
        );
        assert_eq!(run.summary["config"]["key_header"], recorded);
        assert_eq!(
            run.summary["config"]["profile"]["name"],
            format!("profile-{}", key_header.len())
        );
    }
}
