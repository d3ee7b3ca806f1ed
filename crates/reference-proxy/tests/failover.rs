//! Rate limits, failover and key penalties, proven with the mock's ledger.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn no_retry_after_violations_while_one_key_is_rate_limited() {
    let mock = start_mock(THREE_KEYS).await;
    install(
        &mock,
        json!({ "keys": ["k1"], "action": "rate_limit", "retry_after": "300ms" }),
    );
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    let started = Instant::now();
    for _ in 0..40 {
        let (status, key, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(key.as_deref(), Some("k1"));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let cooldowns_elapsed = started.elapsed().as_millis() as u64 / 300;
    let ledger = mock.ledger();
    assert_eq!(ledger.totals.retry_after_violations, 0, "{ledger:?}");
    let k1 = &ledger.keys["k1"];
    // k1 was tried again once each 300 ms cooldown ended (>= 1 s of traffic), and never sooner.
    assert!(
        k1.rate_limited >= 2,
        "k1 never came back after its cooldown: {k1:?}"
    );
    assert!(
        k1.rate_limited <= cooldowns_elapsed + 1,
        "k1 was hammered: {k1:?}"
    );
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn failover_hides_a_503_rate_of_half_on_one_key_of_three() {
    let mock = start_mock(THREE_KEYS).await;
    install(
        &mock,
        json!({ "keys": ["k2"], "action": "error", "status": 503, "probability": 0.5 }),
    );
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    for _ in 0..60 {
        let (status, _, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "a 503 leaked to the client: {body}");
    }
    let ledger = mock.ledger();
    let injected: u64 = ledger.keys["k2"].faults.values().sum();
    assert!(
        injected >= 3,
        "the fault never fired, the test proves nothing: {ledger:?}"
    );
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn all_keys_cooling_answers_429_with_retry_after_at_once() {
    let mock = start_mock(THREE_KEYS).await;
    install(
        &mock,
        json!({ "action": "rate_limit", "retry_after": "30s" }),
    );
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    // The first request meets three 429s (one per key) and gets the last one.
    let (status, _, _) = chat(&client, &proxy).await;
    assert_eq!(status, 429);
    assert_eq!(mock.ledger().totals.requests, 3);

    for (path, body) in [
        ("/v1/chat/completions", chat_body(false)),
        ("/v1/messages", messages_body()),
    ] {
        let started = Instant::now();
        let response = client
            .post(proxy.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 429);
        assert!(
            elapsed < Duration::from_secs(2),
            "{path}: took {elapsed:?}; must answer at once"
        );
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // 30 s announced + the proxy's 600 ms clock guard, rounded up to whole seconds.
        assert!(
            (28..=31).contains(&retry_after),
            "{path}: retry-after {retry_after}"
        );
        let error: serde_json::Value = response.json().await.unwrap();
        if path == "/v1/messages" {
            assert_eq!(error["type"], "error", "{error}");
            assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
        } else {
            assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
        }
    }
    // Nothing more was sent upstream while every key rested.
    let ledger = mock.ledger();
    assert_eq!(ledger.totals.requests, 3);
    assert_eq!(ledger.totals.retry_after_violations, 0);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn upstream_401_disables_the_key() {
    let toml = THREE_KEYS.replacen(
        "secret = \"sk-test-2\"",
        "secret = \"sk-test-2\"\nstate = \"revoked\"",
        1,
    );
    let mock = start_mock(&toml).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    let mut unauthorized = 0;
    for _ in 0..12 {
        let (status, key, _) = chat(&client, &proxy).await;
        if status == 401 {
            unauthorized += 1;
            assert_eq!(key.as_deref(), Some("k2"));
        } else {
            assert_eq!(status, 200);
        }
    }
    // 401 is not retried (the rule), so exactly one client sees it; then k2 is never used again.
    assert_eq!(unauthorized, 1);
    assert_eq!(requests_of(&mock.ledger(), "k2"), 1);
    let keys: serde_json::Value = client
        .get(proxy.url("/admin/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k2 = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "k2")
        .unwrap()
        .clone();
    assert_eq!(k2["state"], "disabled", "{keys}");
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn quota_exhaustion_parks_the_key() {
    let toml = THREE_KEYS.replacen(
        "secret = \"sk-test-1\"",
        "secret = \"sk-test-1\"\nstate = \"out_of_credit\"",
        1,
    );
    let mock = start_mock(&toml).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    for _ in 0..9 {
        let (status, _, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(requests_of(&mock.ledger(), "k1"), 1);
    let keys: serde_json::Value = client
        .get(proxy.url("/admin/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k1 = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "k1")
        .unwrap()
        .clone();
    assert_eq!(k1["state"], "parked", "{keys}");
    assert!(
        k1["cooldown_remaining_ms"].as_u64().unwrap() > 500_000,
        "{k1}"
    );
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = start_mock(THREE_KEYS).await;
    mock.set_models(vec!["gpt-4o-mini".into()]).unwrap();
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let response = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(
            &json!({ "model": "no-such-model", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        mock.ledger().totals.requests,
        1,
        "a 404 must not be retried on other keys"
    );
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn a_hanging_key_is_cut_by_the_request_timeout_and_failed_over() {
    let mock = start_mock(THREE_KEYS).await;
    install(&mock, json!({ "keys": ["k1"], "action": "hang" }));
    let mut flags = THREE_KEY_FLAGS.to_vec();
    flags.extend(["--request-timeout", "300ms"]);
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let started = Instant::now();
    let (status, key, body) = chat(&client(), &proxy).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(key.as_deref(), Some("k2"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn connection_resets_are_failed_over() {
    let mock = start_mock(THREE_KEYS).await;
    install(
        &mock,
        json!({ "keys": ["k1", "k2"], "action": "tcp_reset" }),
    );
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    for _ in 0..6 {
        let (status, key, body) = chat(&client, &proxy).await;
        assert_eq!((status, key.as_deref()), (200, Some("k3")), "{body}");
    }
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_prompt_502_in_provider_shape() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = start_proxy(&format!("http://127.0.0.1:{port}"), &THREE_KEY_FLAGS).await;
    let started = Instant::now();
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(3));
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "api_error", "{error}");
    proxy.stop().await;
}

#[tokio::test]
async fn the_mocks_own_rate_limiter_is_respected_without_violations() {
    let toml = THREE_KEYS
        .replace("secret = \"sk-test-1\"", "secret = \"sk-test-1\"\nrpm = 3")
        .replace("secret = \"sk-test-2\"", "secret = \"sk-test-2\"\nrpm = 3")
        .replace("secret = \"sk-test-3\"", "secret = \"sk-test-3\"\nrpm = 3");
    let mock = start_mock(&toml).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    // 3 keys x 3 requests per minute of burst; then every key is limited for ~20 s.
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(chat(&client, &proxy).await.0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        9,
        "{statuses:?}"
    );
    assert!(statuses[9..].iter().all(|s| *s == 429), "{statuses:?}");
    let ledger = mock.ledger();
    assert_eq!(ledger.totals.retry_after_violations, 0, "{ledger:?}");
    // 9 successes + one 429 per key; the later requests were answered by the proxy alone.
    assert_eq!(ledger.totals.requests, 12, "{ledger:?}");
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_passed_on_not_retried() {
    // Token spacing makes the upstream flush its headers and first chunks before the cut.
    let toml = format!("{THREE_KEYS}\n[latency]\ninter_token = {{ fixed = \"30ms\" }}\n");
    let mock = start_mock(&toml).await;
    install(&mock, json!({ "action": "cut_stream", "chunks": 2 }));
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let response = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "headers were already sent upstream-side"
    );
    let mut received = Vec::new();
    let mut stream = response.bytes_stream();
    let mut broke = false;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.contains("data:"),
        "the chunks before the cut must arrive: {text}"
    );
    assert!(
        broke || !text.contains("[DONE]"),
        "the cut must reach the client: {text}"
    );
    assert_eq!(
        mock.ledger().totals.requests,
        1,
        "a started stream must not be retried"
    );
    proxy.stop().await;
    mock.shutdown().await;
}

/// When every key rests and the rests end, the requests waiting for a key must not all leave at once —
/// only one probe per key goes upstream until its answer is known; the others get the proxy's own 429.
#[tokio::test]
async fn concurrent_load_across_a_cooldown_end_sends_one_probe_per_key() {
    let mock = start_mock(THREE_KEYS).await;
    install(
        &mock,
        json!({ "action": "rate_limit", "retry_after": "1s" }),
    );
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    // One request rests all three keys (one 429 each), before any concurrency, so no request is on the wire
    // when a window opens.
    assert_eq!(chat(&client, &proxy).await.0, 429);
    assert_eq!(mock.ledger().totals.requests, 3);

    // 16 clients keep asking across two cooldown ends (~1.05 s and ~2.1 s).
    let started = Instant::now();
    let proxy = std::sync::Arc::new(proxy);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, proxy) = (client.clone(), proxy.clone());
        clients.spawn(async move {
            let mut answered = 0u32;
            while started.elapsed() < Duration::from_millis(2600) {
                let (status, _, body) = chat(&client, &proxy).await;
                assert_eq!(status, 429, "{body}");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        });
    }
    let mut answered = 0;
    while let Some(result) = clients.join_next().await {
        answered += result.expect("client task");
    }

    let ledger = mock.ledger();
    assert_eq!(ledger.totals.retry_after_violations, 0, "{ledger:?}");
    for id in ["k1", "k2", "k3"] {
        let key = &ledger.keys[id];
        // The first 429, then one probe per cooldown end (two ends in 2.6 s), never a crowd.
        assert!(
            (2..=3).contains(&key.rate_limited),
            "{id}: expected 1 + one probe per cooldown end, got {key:?}"
        );
    }
    assert!(
        answered > 100,
        "the load never overlapped a cooldown end: {answered}"
    );
    std::sync::Arc::into_inner(proxy)
        .expect("client tasks are done")
        .stop()
        .await;
    mock.shutdown().await;
}
