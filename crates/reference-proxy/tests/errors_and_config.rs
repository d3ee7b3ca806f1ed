//! Bad requests and bad configuration get clear, provider-shaped errors; the binary's contract
//! (first stdout line, exit codes, graceful shutdown) holds.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn client_token_is_enforced_in_each_providers_shape() {
    let mock = start_mock(THREE_KEYS).await;
    let mut flags = THREE_KEY_FLAGS.to_vec();
    flags.extend(["--client-token", "let-me-in"]);
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let client = client();

    let openai = client
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 401);
    let body: serde_json::Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");

    let anthropic = client
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "wrong")
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    let body: serde_json::Value = anthropic.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    assert_eq!(
        mock.ledger().totals.requests,
        0,
        "rejected requests must not reach upstream"
    );

    let ok = client
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "let-me-in")
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth("let-me-in")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_without_reaching_upstream() {
    let mock = start_mock(THREE_KEYS).await;
    let mut flags = THREE_KEY_FLAGS.to_vec();
    flags.extend(["--max-body-bytes", "1024"]);
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let big = json!({ "model": "gpt-4o-mini", "messages": [{ "role": "user", "content": "x".repeat(4096) }] });
    let response = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = response.text().await.unwrap();
    assert!(body.contains("1024 bytes"), "{body}");
    assert_eq!(mock.ledger().totals.requests, 0);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn admin_api_rejects_bad_requests_clearly_and_never_leaks_secrets() {
    let mock = start_mock(THREE_KEYS).await;
    let mut flags = THREE_KEY_FLAGS.to_vec();
    flags.extend(["--admin-token", "adm"]);
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let client = client();
    let keys = proxy.url("/admin/keys");

    let cases = [
        (client.get(&keys), 401),
        (client.get(&keys).bearer_auth("wrong"), 401),
        (client.post(&keys).bearer_auth("adm").body("{not json"), 400),
        (
            client
                .post(&keys)
                .bearer_auth("adm")
                .json(&json!({ "id": "x", "secrett": "s" })),
            400,
        ),
        (
            client
                .post(&keys)
                .bearer_auth("adm")
                .json(&json!({ "id": "x", "secret": "" })),
            400,
        ),
        (
            client
                .post(&keys)
                .bearer_auth("adm")
                .json(&json!({ "id": "k1", "secret": "sk-dup" })),
            409,
        ),
        (
            client
                .delete(proxy.url("/admin/keys/nope"))
                .bearer_auth("adm"),
            404,
        ),
        (client.get(&keys).bearer_auth("adm"), 200),
    ];
    for (request, want) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, want, "{body}");
        assert!(!body.contains("sk-"), "a secret leaked: {body}");
    }
    proxy.stop().await;
    mock.shutdown().await;
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn bad_config_exits_2_naming_file_and_field() {
    let keys = write_temp("[[keys]]\nid = \"a\"\nsecret = \"sk-a\"\nweight = 3\n");
    let output = Command::new(env!("CARGO_BIN_EXE_reference-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
        ])
        .arg("--keys-file")
        .arg(keys.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file_name = keys
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        stderr.contains(&file_name) && stderr.contains("weight"),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing may be announced on bad config"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_reference-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "https://api.example.com",
            "--key",
            "a=sk-a",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--upstream"));
}

#[test]
fn binary_announces_its_address_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-proxy"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--key",
            "a=sk-secret-value",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .expect(&first)
        .to_string();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let health =
        runtime.block_on(async { client().get(format!("http://{addr}/health")).send().await });
    assert_eq!(health.unwrap().status(), 200);

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(!logs.contains("sk-secret-value"), "secret in logs: {logs}");
}
