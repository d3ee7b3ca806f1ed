//! `--upstream URL`: the harness drives an external mock-upstream (here one served by this test on a loopback
//! port, with an admin token) through its admin API instead of its in-process mock — the scenario's base rules
//! and timeline reach it, its ledger ends up in `ledger.json`, the scenario's latency, Retry-After grace and
//! served models apply for the run and the mock's own come back afterwards — and tells a wrong token (exit 2)
//! from a mock that is not there (exit 3).

mod common;

use mock_upstream::{AdminConfig, FaultKind, KeyConfig, MockConfig, RunningMock};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const TOKEN: &str = "upstream-test-token";

/// A 4 s closed-model chat load; key2 rate-limited from 1 s to 3 s by the timeline; a base rule on key1; chat
/// latency 150 ms and a 1 s Retry-After grace for the run.
const SCENARIO: &str = r#"
name = "external_upstream"
seed = 21
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
expect = [200, 429]
body = { model = "gpt-4", messages = [{ role = "user", content = "hi" }], max_tokens = 8 }

[upstream]
rules = [{ id = "base-latency", keys = ["key1"], action = "latency", latency = { fixed = "1ms" } }]
retry_after_grace = "1s"

[upstream.route_latency.chat_completions]
base = { fixed = "150ms" }

[[timeline]]
at = "1s"
for = "2s"
label = "key2 throttled"
fault = { keys = ["key2"], action = "rate_limit", retry_after = "1s" }
"#;

/// The keys the harness gives the proxy when a scenario names none.
async fn external_mock() -> RunningMock {
    let config = MockConfig {
        seed: 3,
        keys: (1..=3)
            .map(|i| KeyConfig {
                id: format!("key{i}"),
                secret: format!("sk-harness-mock-{i}"),
                ..KeyConfig::default()
            })
            .collect(),
        rules: vec![mock_upstream::FaultRule {
            id: Some("left-over".into()),
            ..mock_upstream::FaultRule::new(FaultKind::Overloaded)
        }],
        admin: AdminConfig {
            token: Some(TOKEN.into()),
            ..AdminConfig::default()
        },
        ..MockConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    mock_upstream::spawn(config, listener).await.unwrap()
}

async fn harness(dir: &Path, args: &[&str]) -> Output {
    std::fs::write(dir.join("external_upstream.toml"), SCENARIO).unwrap();
    harness_with_file(dir, args).await
}

/// Runs the scenario already written to `dir/external_upstream.toml`.
async fn harness_with_file(dir: &Path, args: &[&str]) -> Output {
    let file = dir.join("external_upstream.toml");
    common::harness_output(&file, args, &dir.join("out"), Duration::from_secs(60)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_and_rules_reach_an_external_mock_and_its_ledger_is_written() {
    let mock = external_mock().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let out = harness(
        tmp.path(),
        &["--upstream", &url, "--upstream-admin-token", TOKEN],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(tmp.path().join("out").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; {stderr}"));
        serde_json::from_str(&text).unwrap()
    };
    let summary = read("summary.json");
    assert_eq!(summary["config"]["upstream"]["mode"], "external");
    assert_eq!(summary["config"]["upstream"]["url"], url.as_str());
    let windows = &summary["engine"]["timeline"]["windows"];
    assert_eq!(windows.as_array().map(Vec::len), Some(1), "{windows}");
    let ledger = read("ledger.json");
    let key2 = &ledger["keys"]["key2"];
    assert!(
        key2["faults"]["rate_limit"].as_u64().unwrap_or(0) > 0,
        "{key2}"
    );
    assert!(
        ledger["keys"]["key1"]["faults"]["latency"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(
        ledger["keys"]["key3"]["faults"]["overloaded"],
        serde_json::Value::Null
    );
    let now = serde_json::to_value(mock.ledger()).unwrap();
    assert_eq!(
        ledger["keys"], now["keys"],
        "ledger.json is the external mock's"
    );
    let ids: Vec<Option<String>> = mock.rules().into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![Some("base-latency".to_string())],
        "timeline rule removed, base rules installed"
    );
    let median_ms = aggregated_median_ms(&tmp.path().join("out"));
    assert!(
        median_ms >= 150.0,
        "the scenario's chat latency applied during the run: median {median_ms} ms"
    );
    let measured = &summary["engine"]["behaviour"]["measurements"];
    assert_eq!(
        measured["retry_after"]["grace_ms"], 1000.0,
        "the verdicts read the mock's config as it was during the run: {measured}"
    );
    let after = admin_get(&mock, "config").await;
    assert_eq!(
        (
            &after["latency"],
            &after["route_latency"],
            &after["retry_after_grace"]
        ),
        (
            &serde_json::json!({}),
            &serde_json::json!({}),
            &serde_json::json!("250ms")
        ),
        "the mock's own latency and grace are back"
    );
    let total = measured["distribution"]["total_requests"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        total > 0,
        "behaviour measured from the external ledger: {measured}"
    );
    assert_eq!(
        measured["masking"][0]["window"], "key2 throttled",
        "{measured}"
    );
    mock.shutdown().await;
}

/// `GET /__admin/{path}` on `mock` with the token.
async fn admin_get(mock: &RunningMock, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{}/__admin/{path}", mock.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Median response time (ms) of the `Aggregated` row of the run's Locust stats CSV in `out`.
fn aggregated_median_ms(out: &Path) -> f64 {
    let stats = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_stats.csv"))
        .expect("a stats CSV");
    let text = std::fs::read_to_string(stats).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "Median Response Time")
        .unwrap();
    let row = lines
        .find(|l| l.split(',').nth(1) == Some("Aggregated"))
        .expect("an Aggregated row");
    row.split(',').nth(column).unwrap().parse().unwrap()
}

/// Two requests, one for a model the scenario lists and one for a model it does not (but the external mock's
/// own list has): only the scenario's `[upstream] models` makes the second a 404, as with the in-process mock.
const MODELS_SCENARIO: &str = r#"
name = "external_upstream"
seed = 22
[load]
model = "closed"
users = 2
spawn_rate = 100
think_time = "20ms"
run_time = "2s"
timeout = "5s"

[[request]]
name = "listed model"
method = "POST"
path = "/v1/chat/completions"
expect = [200]
body = { model = "gpt-4.1", messages = [{ role = "user", content = "hi" }], max_tokens = 4 }

[[request]]
name = "model the scenario does not list"
method = "POST"
path = "/v1/chat/completions"
expect = [404]
body = { model = "model-only-the-mock-lists", messages = [{ role = "user", content = "hi" }], max_tokens = 4 }

[upstream]
models = ["gpt-4.1"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_s_models_apply_to_an_external_mock_and_its_own_come_back() {
    let mock = external_mock().await;
    let own = vec![
        "gpt-4.1".to_string(),
        "model-only-the-mock-lists".to_string(),
    ];
    mock.set_models(own.clone()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("external_upstream.toml"), MODELS_SCENARIO).unwrap();
    let url = mock.base_url();
    let out = harness_with_file(
        tmp.path(),
        &["--upstream", &url, "--upstream-admin-token", TOKEN],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("cannot be changed at runtime"),
        "models are installed, not warned about: {stderr}"
    );
    let ledger: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("out").join("ledger.json")).unwrap(),
    )
    .unwrap();
    let mut by_status = std::collections::BTreeMap::<String, u64>::new();
    for key in ledger["keys"].as_object().unwrap().values() {
        for (status, count) in key["requests"]["chat_completions"]
            .as_object()
            .into_iter()
            .flatten()
        {
            *by_status.entry(status.clone()).or_default() += count.as_u64().unwrap();
        }
    }
    assert_eq!(
        by_status.keys().map(String::as_str).collect::<Vec<_>>(),
        ["200", "404"],
        "the unlisted model got its 404 from the external mock: {by_status:?}"
    );
    assert_eq!(mock.models(), own, "the mock's own models are back");
    mock.shutdown().await;
}

/// A run whose proxy cannot start still puts the external mock's latency and grace back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_restores_the_mock_s_latency_and_grace() {
    let mock = external_mock().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let scenario = SCENARIO.replace(
        "[upstream]",
        "[proxy]\ncommand = [\"/nonexistent/proxy-binary\"]\n\n[upstream]",
    );
    std::fs::write(tmp.path().join("external_upstream.toml"), scenario).unwrap();
    let out = harness_with_file(
        tmp.path(),
        &["--upstream", &url, "--upstream-admin-token", TOKEN],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let after = admin_get(&mock, "config").await;
    assert_eq!(
        (&after["route_latency"], &after["retry_after_grace"]),
        (&serde_json::json!({}), &serde_json::json!("250ms")),
        "{stderr}"
    );
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_exits_2_and_a_missing_mock_exits_3() {
    let mock = external_mock().await;
    let tmp = tempfile::tempdir().unwrap();
    let url = mock.base_url();
    let out = harness(
        tmp.path(),
        &["--upstream", &url, "--upstream-admin-token", "nope"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the harness (401)"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
    mock.shutdown().await;
    let out = harness(
        tmp.path(),
        &["--upstream", &url, "--upstream-admin-token", TOKEN],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
}
