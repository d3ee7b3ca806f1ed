//! The proxy in front of the real mock-upstream: rotation, credential swap, streaming, runtime keys.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn rotation_spreads_requests_evenly_across_keys() {
    let mock = start_mock(THREE_KEYS).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let client = client();
    let mut used = Vec::new();
    for _ in 0..30 {
        let (status, key, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
        used.push(key.expect("X-Key-Used on every proxied response"));
    }
    assert_eq!(&used[..3], ["k1", "k2", "k3"]);
    let ledger = mock.ledger();
    for id in ["k1", "k2", "k3"] {
        assert_eq!(requests_of(&ledger, id), 10, "{id}: {ledger:?}");
    }
    // The mock only knows the pool secrets, so no request went up with the client's own token.
    assert_eq!(requests_of(&ledger, "_unknown"), 0);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn anthropic_routes_present_the_key_as_x_api_key() {
    let mock = start_mock(THREE_KEYS).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "client-token")
        .header("anthropic-version", "2023-06-01")
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let key = key_used(&response).unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message", "{body}");
    assert_eq!(requests_of(&mock.ledger(), &key), 1);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn least_in_flight_also_spreads_sequential_requests() {
    let mock = start_mock(THREE_KEYS).await;
    let mut flags = THREE_KEY_FLAGS.to_vec();
    flags.extend(["--strategy", "least-in-flight"]);
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let client = client();
    for _ in 0..9 {
        assert_eq!(chat(&client, &proxy).await.0, 200);
    }
    let ledger = mock.ledger();
    for id in ["k1", "k2", "k3"] {
        assert_eq!(requests_of(&ledger, id), 3, "{id}");
    }
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn a_streams_first_chunk_reaches_the_client_before_upstream_finishes() {
    let toml = format!("{THREE_KEYS}\n[latency]\ninter_token = {{ fixed = \"150ms\" }}\n");
    let mock = start_mock(&toml).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let StreamTiming {
        first_at,
        done_at,
        text,
        content_type,
    } = timed_stream(&proxy).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert!(text.starts_with("data:"), "{text}");
    // 5 tokens 150 ms apart: the upstream needs >= 600 ms after its first token. A buffering proxy would hand
    // over the first chunk only at the end; a streaming one hands it over that much earlier.
    assert!(
        done_at - first_at >= Duration::from_millis(450),
        "first chunk at {first_at:?}, end at {done_at:?}: the stream was buffered"
    );
    assert!(text.contains("[DONE]"), "{text}");
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn keys_registered_at_runtime_take_traffic_and_removed_ones_stop() {
    let mock = start_mock(THREE_KEYS).await;
    let proxy = start_proxy(&mock.base_url(), &["--admin-token", "adm"]).await;
    runtime_keys_take_traffic(&mock, proxy).await;
    mock.shutdown().await;
}

/// The same through the router alone (what `run` with a customized router serves): admin API, proxied routes
/// and the peer address the admin guard needs all work there too.
#[tokio::test]
async fn the_router_alone_serves_the_same_proxy() {
    let mock = start_mock(THREE_KEYS).await;
    let proxy = start_proxy_via_router(&mock.base_url(), &["--admin-token", "adm"]).await;
    runtime_keys_take_traffic(&mock, proxy).await;
    mock.shutdown().await;
}

async fn runtime_keys_take_traffic(mock: &mock_upstream::RunningMock, proxy: TestProxy) {
    let client = client();
    // Empty pool: a clear 503, not a hang.
    let (status, _, body) = chat(&client, &proxy).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no usable API key"), "{body}");

    let added = client
        .post(proxy.url("/admin/keys"))
        .bearer_auth("adm")
        .json(
            &json!([{ "id": "k1", "secret": "sk-test-1" }, { "id": "k2", "secret": "sk-test-2" }]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    for _ in 0..4 {
        assert_eq!(chat(&client, &proxy).await.0, 200);
    }
    let listed = client
        .get(proxy.url("/admin/keys"))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    let listed = listed.text().await.unwrap();
    assert!(
        listed.contains("\"k1\"") && listed.contains("\"k2\""),
        "{listed}"
    );
    assert!(
        !listed.contains("sk-test"),
        "secrets must never be returned: {listed}"
    );

    let removed = client
        .delete(proxy.url("/admin/keys/k1"))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    for _ in 0..4 {
        let (status, key, _) = chat(&client, &proxy).await;
        assert_eq!((status, key.as_deref()), (200, Some("k2")));
    }
    let ledger = mock.ledger();
    assert_eq!(
        (requests_of(&ledger, "k1"), requests_of(&ledger, "k2")),
        (2, 6)
    );
    proxy.stop().await;
}

#[tokio::test]
async fn health_reports_the_pool() {
    let mock = start_mock(THREE_KEYS).await;
    let proxy = start_proxy(&mock.base_url(), &THREE_KEY_FLAGS).await;
    let health: serde_json::Value = client()
        .get(proxy.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["keys"]["total"], 3);
    assert_eq!(health["keys"]["ready"], 3);
    proxy.stop().await;
    mock.shutdown().await;
}
