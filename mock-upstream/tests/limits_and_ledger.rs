//! Real 429s from per-key RPM/TPM limits with the providers' headers, the ledger's Retry-After races and
//! violations, and reproducible fault sequences under different interleavings.

mod common;

use common::*;
use mock_upstream::{FaultKind, FaultRule, LimitKind, MockConfig, Route};
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn rpm_limit_gives_openai_429_with_exact_headers_and_body() {
    let mut config = keys(&[("k1", "s1")]);
    config.keys[0].rpm = Some(2);
    let mock = start(config).await;
    for remaining in ["1", "0"] {
        let ok = post_chat(&mock, "s1", &chat(1, false)).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-ratelimit-limit-requests"], "2");
        assert_eq!(ok.headers()["x-ratelimit-remaining-requests"], remaining);
    }
    let limited = post_chat(&mock, "s1", &chat(1, false)).await;
    assert_eq!(limited.status(), 429);
    let headers = limited.headers().clone();
    let retry_ms: u64 = headers["retry-after-ms"].to_str().unwrap().parse().unwrap();
    assert!((29_000..=30_000).contains(&retry_ms), "{retry_ms}");
    assert_eq!(headers["retry-after"], "30");
    let reset = headers["x-ratelimit-reset-requests"].to_str().unwrap();
    assert!(
        reset.starts_with("59.") || reset == "1m0s",
        "Go duration format: {reset}"
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["param"], Value::Null);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Rate limit reached for gpt-4 in organization org-mock on requests per min (RPM): Limit 2, Used 2, Requested 1. Please try again in "), "{message}");
    mock.shutdown().await;
}

#[tokio::test]
async fn tpm_limit_on_anthropic_has_anthropic_body_and_rfc3339_resets() {
    let mut config = keys(&[("a1", "s1")]);
    config.keys[0].tpm = Some(100);
    let mock = start(config).await;
    assert_eq!(
        post_message(&mock, "s1", &message(60, false))
            .await
            .status(),
        200
    );
    let limited = post_message(&mock, "s1", &message(60, false)).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["anthropic-ratelimit-tokens-limit"], "100");
    let reset = limited.headers()["anthropic-ratelimit-tokens-reset"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        time::OffsetDateTime::parse(&reset, &time::format_description::well_known::Rfc3339).is_ok()
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    mock.shutdown().await;
}

#[tokio::test]
async fn ledger_tells_races_from_violations() {
    let mut config = keys(&[("k1", "s1"), ("k2", "s2")]);
    config.rules = vec![FaultRule {
        keys: vec!["k1".into()],
        routes: vec![Route::ChatCompletions],
        first_n: Some(1),
        retry_after: Some(Duration::from_millis(1200)),
        limit: Some(LimitKind::Requests),
        ..FaultRule::new(FaultKind::RateLimit)
    }];
    config.retry_after_grace = Duration::from_millis(250);
    let mock = start(config).await;
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 429);
    // Right after the 429 (as if already on the wire): races, on any route of the key. Another key is not
    // affected.
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 200);
    assert_eq!(
        post_message(&mock, "s1", &message(1, false)).await.status(),
        200
    );
    assert_eq!(post_chat(&mock, "s2", &chat(1, false)).await.status(), 200);
    // Well past the grace but inside the 1.2 s: a violation, in the 500 ms..1 s depth bucket.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 200);
    // After the window: clear.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 200);
    let ledger = mock.ledger();
    let k1 = &ledger.keys["k1"];
    assert_eq!((k1.retry_after_races, k1.retry_after_violations), (2, 1));
    assert_eq!(k1.retry_window_depths.counts, [2, 0, 1, 0, 0, 0]);
    assert_eq!(k1.rate_limited, 1);
    assert_eq!(
        (
            ledger.keys["k2"].retry_after_races,
            ledger.keys["k2"].retry_after_violations
        ),
        (0, 0)
    );
    assert_eq!(
        (
            ledger.totals.retry_after_races,
            ledger.totals.retry_after_violations
        ),
        (2, 1)
    );
    assert_eq!(k1.requests[&Route::ChatCompletions]["200"], 3);
    assert!(k1.output_tokens >= 4);
    mock.shutdown().await;
}

/// A client with many requests in flight when the 429 is written sees them all arrive inside the window: a
/// burst of races, no violations.
#[tokio::test]
async fn a_burst_in_flight_at_the_429_is_races() {
    let mut config = keys(&[("k1", "s1")]);
    config.rules = vec![FaultRule {
        keys: vec!["k1".into()],
        first_n: Some(1),
        retry_after: Some(Duration::from_secs(5)),
        ..FaultRule::new(FaultKind::RateLimit)
    }];
    let mock = start(config).await;
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 429);
    let body = chat(1, false);
    let burst: Vec<_> = (0..20).map(|_| post_chat(&mock, "s1", &body)).collect();
    for response in futures::future::join_all(burst).await {
        assert_eq!(response.status(), 200);
    }
    let k1 = &mock.ledger().keys["k1"];
    assert_eq!((k1.retry_after_races, k1.retry_after_violations), (20, 0));
    assert_eq!(k1.retry_window_depths.total(), 20);
    mock.shutdown().await;
}

/// Fault sequence of each key after sending `per_key` requests per key, either key after key or all keys
/// concurrently.
async fn fault_sequences(interleaved: bool, per_key: usize) -> Vec<Vec<(u64, FaultKind)>> {
    let mut config = keys(&[("k1", "s1"), ("k2", "s2"), ("k3", "s3")]);
    config.seed = 1234;
    config.rules = vec![
        FaultRule {
            probability: Some(0.2),
            status: Some(500),
            ..FaultRule::new(FaultKind::Error)
        },
        FaultRule {
            probability: Some(0.2),
            ..FaultRule::new(FaultKind::Overloaded)
        },
    ];
    let mock = start(config).await;
    let send_all = |secret: &'static str| {
        let base = mock.base_url();
        async move {
            let client = client();
            for _ in 0..per_key {
                let url = format!("{base}/v1/chat/completions");
                client
                    .post(url)
                    .bearer_auth(secret)
                    .json(&chat(1, false))
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    if interleaved {
        futures::future::join3(send_all("s1"), send_all("s2"), send_all("s3")).await;
    } else {
        for secret in ["s3", "s2", "s1"] {
            send_all(secret).await;
        }
    }
    let ledger = mock.ledger();
    mock.shutdown().await;
    ["k1", "k2", "k3"]
        .iter()
        .map(|id| {
            ledger.keys[*id]
                .fault_sequence
                .iter()
                .map(|r| (r.index, r.kind))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn same_seed_same_faults_whatever_the_interleaving() {
    let sequential = fault_sequences(false, 40).await;
    let concurrent = fault_sequences(true, 40).await;
    assert_eq!(sequential, concurrent);
    let injected: usize = sequential.iter().map(Vec::len).sum();
    assert!(
        (10..=60).contains(&injected),
        "about 36% of 120 requests: {injected}"
    );
    assert_ne!(sequential[0], sequential[1], "keys draw independently");
}

#[tokio::test]
async fn metrics_expose_requests_faults_and_latency() {
    let mut config = keys(&[("k1", "s1")]);
    config.rules = vec![FaultRule {
        first_n: Some(1),
        ..FaultRule::new(FaultKind::Close)
    }];
    let mock = start(config).await;
    let _ = raw_exchange(&mock, "POST", "/v1/chat/completions", "s1", &chat(1, false)).await;
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 200);
    let text = metrics_text(&mock.base_url()).await;
    assert!(
        text.contains(
            "mock_requests_total{key=\"k1\",route=\"chat_completions\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text
        .contains("mock_requests_total{key=\"k1\",route=\"chat_completions\",status=\"none\"} 1"));
    assert!(text.contains("mock_faults_total{key=\"k1\",kind=\"close\"} 1"));
    assert!(text.contains("mock_request_duration_seconds_count{route=\"chat_completions\"}"));
    assert!(!text.contains("s1\""), "secrets never appear");
    let health = client()
        .get(format!("{}/health", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    mock.shutdown().await;
}

#[tokio::test]
async fn unknown_keys_are_pooled_in_one_bucket() {
    let mock = start(MockConfig::default()).await;
    for index in 0..20 {
        assert_eq!(
            post_chat(&mock, &format!("sk-random-{index}"), &chat(1, false))
                .await
                .status(),
            200
        );
    }
    let ledger = mock.ledger();
    assert_eq!(ledger.keys.len(), 1);
    assert_eq!(ledger.keys["_any"].total_requests, 20);
    mock.shutdown().await;
}
