//! A TLS mock behind the proxy: `[upstream.tls] enabled = true` (in-process) or `--upstream https://…
//! --upstream-ca FILE` (external). The default reference proxy is given the mock's CA (`{ca_file}`), the run
//! passes and the mock's ledger shows the requests arriving over TLS; `{ca_file}` in front of a plain-HTTP mock
//! and a missing or unusable `--upstream-ca` are the user's input (exit 2).

mod common;

use mock_upstream::{KeyConfig, MockConfig, RunningMock, TlsConfig};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// A 2 s closed-model chat load.
const LOAD: &str = r#"
name = "tls_upstream"
seed = 5
[load]
model = "closed"
users = 4
spawn_rate = 100
think_time = "10ms"
run_time = "2s"
timeout = "5s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
expect = [200]
body = { model = "gpt-4", messages = [{ role = "user", content = "hi" }], max_tokens = 8 }
"#;

/// Runs `harness run` on `scenario` (written into `dir`) with `args`; results in `dir/out`.
async fn harness(dir: &Path, scenario: &str, args: &[&str]) -> Output {
    let file = dir.join("tls_upstream.toml");
    std::fs::write(&file, scenario).unwrap();
    common::harness_output(&file, args, &dir.join("out"), Duration::from_secs(60)).await
}

fn ledger(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("out").join("ledger.json")).expect("ledger.json");
    serde_json::from_str(&text).unwrap()
}

/// The ledger's totals show requests that came over TLS.
fn assert_tls_traffic(ledger: &serde_json::Value) {
    let totals = &ledger["totals"];
    assert!(totals["requests"].as_u64().unwrap_or(0) > 10, "{totals}");
    assert!(
        totals["tls_handshakes"].as_u64().unwrap_or(0) > 0,
        "{totals}"
    );
    assert_eq!(totals["tls_handshakes"], totals["connections"], "{totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_proxy_trusts_an_in_process_tls_mock_and_the_run_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = format!("{LOAD}\n[upstream.tls]\nenabled = true\n");
    let out = harness(tmp.path(), &scenario, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_tls_traffic(&ledger(tmp.path()));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out").join("summary.json")).unwrap(),
    )
    .unwrap();
    let url = summary["config"]["upstream"]["url"].as_str().unwrap_or("");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_in_front_of_a_plain_http_mock_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for proxy in [
        r#"command = ["python3", "app.py", "--upstream-ca", "{ca_file}"]"#,
        r#"setup = [{ path = "/admin/ca", body = { file = "{ca_file}" } }]"#,
    ] {
        let scenario = format!("{LOAD}\n[proxy]\n{proxy}\n");
        let out = harness(tmp.path(), &scenario, &[]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{proxy}: {stderr}");
        assert!(
            stderr.contains("{ca_file}") && stderr.contains("plain HTTP"),
            "{stderr}"
        );
    }
}

async fn external_tls_mock() -> RunningMock {
    let config = MockConfig {
        keys: (1..=3)
            .map(|i| KeyConfig {
                id: format!("key{i}"),
                secret: format!("sk-harness-mock-{i}"),
                ..KeyConfig::default()
            })
            .collect(),
        tls: TlsConfig {
            enabled: true,
            ..TlsConfig::default()
        },
        ..MockConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    mock_upstream::spawn(config, listener).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_tls_mock_is_driven_with_its_ca_and_the_run_passes() {
    let mock = external_tls_mock().await;
    let url = mock.base_url();
    let ca = mock.ca_file().unwrap().display().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = harness(
        tmp.path(),
        LOAD,
        &["--upstream", &url, "--upstream-ca", &ca],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let written = ledger(tmp.path());
    assert_tls_traffic(&written);
    assert_eq!(
        written["totals"]["requests"],
        serde_json::to_value(mock.ledger()).unwrap()["totals"]["requests"],
        "ledger.json is the external mock's, read over HTTPS"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unusable_upstream_ca_is_exit_2_naming_it() {
    let mock = external_tls_mock().await;
    let url = mock.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("not-a-ca.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let garbage = garbage.display().to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["--upstream", &url], "needs --upstream-ca"),
        (
            vec!["--upstream", &url, "--upstream-ca", &garbage],
            "not-a-ca.pem: holds no PEM certificate",
        ),
        (
            vec![
                "--upstream",
                &url,
                "--upstream-ca",
                "/nonexistent/mock-ca.pem",
            ],
            "/nonexistent/mock-ca.pem: cannot read it",
        ),
    ];
    for (args, want) in cases {
        let out = harness(tmp.path(), LOAD, &args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    assert_eq!(mock.ledger().totals.requests, 0);
    mock.shutdown().await;
}
