//! Every fault kind over real HTTP: provider-shaped errors, 429s and their headers, latency, hangs, TCP
//! resets, closes, malformed and truncated bodies, and the stream faults.

mod common;

use common::*;
use mock_upstream::{Distribution, FaultKind, FaultRule, LimitKind, MockConfig, Route};
use serde_json::Value;
use std::time::{Duration, Instant};

fn rule(action: FaultKind) -> FaultRule {
    FaultRule::new(action)
}

async fn mock_with(rules: Vec<FaultRule>) -> mock_upstream::RunningMock {
    start(MockConfig {
        rules,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn injected_errors_have_provider_shapes_and_retry_headers() {
    let mock = mock_with(vec![FaultRule {
        status: Some(503),
        retry_after: Some(Duration::from_millis(2500)),
        should_retry: Some(true),
        ..rule(FaultKind::Error)
    }])
    .await;
    let response = post_chat(&mock, "k", &chat(1, false)).await;
    assert_eq!(response.status(), 503);
    let headers = response.headers();
    assert_eq!(
        (&headers["retry-after"], &headers["retry-after-ms"]),
        (&"3".parse().unwrap(), &"2500".parse().unwrap())
    );
    assert_eq!(headers["x-should-retry"], "true");
    assert!(headers.contains_key("x-ratelimit-remaining-requests"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");

    mock.set_rules(vec![rule(FaultKind::Overloaded)]).unwrap();
    let response = post_message(&mock, "k", &message(1, false)).await;
    assert_eq!(response.status(), 529);
    assert_eq!(response.headers()["x-should-retry"], "true");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 503);

    for status in [400u16, 401, 403, 404, 408, 409, 413, 500, 502, 504] {
        mock.set_rules(vec![FaultRule {
            status: Some(status),
            ..rule(FaultKind::Error)
        }])
        .unwrap();
        let openai = post_chat(&mock, "k", &chat(1, false)).await;
        assert_eq!(openai.status(), status);
        assert!(openai.json::<Value>().await.unwrap()["error"]["message"].is_string());
        let anthropic = post_message(&mock, "k", &message(1, false)).await;
        assert_eq!(anthropic.status(), status);
        assert_eq!(anthropic.json::<Value>().await.unwrap()["type"], "error");
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn injected_rate_limits_and_quota() {
    let mock = mock_with(vec![FaultRule {
        limit: Some(LimitKind::Tokens),
        retry_after: Some(Duration::from_millis(1200)),
        ..rule(FaultKind::RateLimit)
    }])
    .await;
    let response = post_chat(&mock, "k", &chat(10, false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1200");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Please try again in 1.2s."));

    let anthropic = post_message(&mock, "k", &message(1, false)).await;
    assert_eq!(anthropic.status(), 429);
    assert_eq!(
        anthropic.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );

    mock.set_rules(vec![rule(FaultKind::Quota)]).unwrap();
    let quota = post_chat(&mock, "k", &chat(1, false)).await;
    assert_eq!(quota.status(), 429);
    assert!(!quota.headers().contains_key("retry-after"));
    assert_eq!(
        quota.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_quota"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn latency_fault_delays_and_hang_never_answers() {
    let latency = FaultRule {
        latency: Some(Distribution::Fixed(Duration::from_millis(150))),
        ..rule(FaultKind::Latency)
    };
    let mock = mock_with(vec![latency]).await;
    let started = Instant::now();
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    mock.set_rules(vec![rule(FaultKind::Hang)]).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let result = client
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("k")
        .json(&chat(1, false))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    mock.shutdown().await;
}

#[tokio::test]
async fn tcp_reset_and_close_send_no_bytes() {
    let mock = mock_with(vec![rule(FaultKind::TcpReset)]).await;
    let reset = raw_exchange(&mock, "POST", "/v1/chat/completions", "k", &chat(1, false)).await;
    assert_eq!(
        reset.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );

    mock.set_rules(vec![rule(FaultKind::Close)]).unwrap();
    let closed = raw_exchange(&mock, "POST", "/v1/chat/completions", "k", &chat(1, false))
        .await
        .unwrap();
    assert!(closed.is_empty(), "{}", String::from_utf8_lossy(&closed));

    let disconnect = FaultRule {
        after: Some(Duration::from_millis(100)),
        ..rule(FaultKind::Disconnect)
    };
    mock.set_rules(vec![disconnect]).unwrap();
    let started = Instant::now();
    let dropped = raw_exchange(&mock, "POST", "/v1/chat/completions", "k", &chat(1, false))
        .await
        .unwrap();
    assert!(dropped.is_empty() && started.elapsed() >= Duration::from_millis(100));
    let ledger = mock.ledger();
    assert_eq!(
        ledger.keys["_any"].requests[&Route::ChatCompletions]["none"],
        3
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_bodies() {
    let mock = mock_with(vec![rule(FaultKind::MalformedJson)]).await;
    let response = post_chat(&mock, "k", &chat(5, false)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    mock.set_rules(vec![rule(FaultKind::TruncatedBody)])
        .unwrap();
    let raw = raw_exchange(&mock, "POST", "/v1/chat/completions", "k", &chat(5, false))
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{text}"));
    let announced: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(body.len() < announced, "{} of {announced}", body.len());
    assert!(post_chat(&mock, "k", &chat(5, false))
        .await
        .text()
        .await
        .is_err());
    mock.shutdown().await;
}

#[tokio::test]
async fn slow_dribble_paces_the_body() {
    let mock = mock_with(vec![FaultRule {
        bytes_per_sec: Some(2_000),
        ..rule(FaultKind::Slow)
    }])
    .await;
    let started = Instant::now();
    let text = post_chat(&mock, "k", &chat(5, false))
        .await
        .text()
        .await
        .unwrap();
    let expected = Duration::from_secs_f64(text.len() as f64 / 2_000.0);
    assert!(
        started.elapsed() >= expected.mul_f64(0.8),
        "{:?} for {} bytes",
        started.elapsed(),
        text.len()
    );
    assert!(serde_json::from_str::<Value>(&text).is_ok());
    mock.shutdown().await;
}

#[tokio::test]
async fn stream_faults() {
    let mock = mock_with(vec![FaultRule {
        chunks: Some(3),
        ..rule(FaultKind::CutStream)
    }])
    .await;
    // Non-streaming requests are not matched by stream-only rules.
    assert_eq!(post_chat(&mock, "k", &chat(5, false)).await.status(), 200);
    let raw = raw_exchange(&mock, "POST", "/v1/chat/completions", "k", &chat(20, true))
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(
        !text.contains("[DONE]") && !text.ends_with("0\r\n\r\n"),
        "no terminating chunk"
    );

    mock.set_rules(vec![FaultRule {
        chunks: Some(2),
        ..rule(FaultKind::StreamError)
    }])
    .unwrap();
    let (frames, done) = sse_data(
        &post_chat(&mock, "k", &chat(20, true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(!done);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2]["error"]["type"], "server_error");
    let events = sse_events(
        &post_message(&mock, "k", &message(20, true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(events, ["message_start", "content_block_start", "error"]);

    mock.set_rules(vec![FaultRule {
        chunks: Some(2),
        ..rule(FaultKind::MalformedSse)
    }])
    .unwrap();
    let (frames, done) = sse_data(
        &post_chat(&mock, "k", &chat(4, true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(done, "the stream continues after the malformed frame");
    assert_eq!(frames.iter().filter(|f| f.is_null()).count(), 1);

    let mut config = MockConfig::default();
    config.latency.inter_token = Some(Distribution::Fixed(Duration::from_millis(20)));
    config.rules = vec![FaultRule {
        after: Some(Duration::from_millis(120)),
        ..rule(FaultKind::Disconnect)
    }];
    let slow = start(config).await;
    let started = Instant::now();
    let result = post_chat(&slow, "k", &chat(100, true)).await.text().await;
    assert!(result.is_err(), "stream dropped mid-way");
    assert!(
        started.elapsed() >= Duration::from_millis(120)
            && started.elapsed() < Duration::from_secs(2)
    );
    slow.shutdown().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn plain_streams_are_paced_by_the_inter_token_delay() {
    let mut config = MockConfig::default();
    config.latency.inter_token = Some(Distribution::Fixed(Duration::from_millis(20)));
    let mock = start(config).await;
    let started = Instant::now();
    let text = post_chat(&mock, "k", &chat(5, true))
        .await
        .text()
        .await
        .unwrap();
    let (frames, done) = sse_data(&text);
    assert!(done);
    let tokens = frames
        .iter()
        .filter(|f| f["choices"][0]["delta"]["content"].is_string())
        .count();
    assert_eq!(tokens, 1 + 5, "role frame plus one frame per token");
    // Four gaps between five tokens.
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "{:?}",
        started.elapsed()
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn rule_matching_and_triggers_over_http() {
    let mut config = keys(&[("k1", "s1"), ("k2", "s2")]);
    config.rules = vec![
        FaultRule {
            keys: vec!["k2".into()],
            every_nth: Some(2),
            status: Some(502),
            ..rule(FaultKind::Error)
        },
        FaultRule {
            models: vec!["gpt-4o".into()],
            status: Some(504),
            ..rule(FaultKind::Error)
        },
    ];
    let mock = start(config).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            post_chat(&mock, "s2", &chat(1, false))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 502, 200, 502]);
    assert_eq!(post_chat(&mock, "s1", &chat(1, false)).await.status(), 200);
    let mut gpt4o = chat(1, false);
    gpt4o["model"] = "gpt-4o".into();
    assert_eq!(post_chat(&mock, "s1", &gpt4o).await.status(), 504);
    let ledger = mock.ledger();
    assert_eq!(ledger.keys["k2"].faults[&FaultKind::Error], 2);
    let indexes: Vec<u64> = ledger.keys["k2"]
        .fault_sequence
        .iter()
        .map(|r| r.index)
        .collect();
    assert_eq!(indexes, [1, 3]);
    mock.shutdown().await;
}

#[tokio::test]
async fn override_headers_only_when_enabled() {
    let send = |mock: &mock_upstream::RunningMock, status: &'static str| {
        let url = format!("{}/v1/chat/completions", mock.base_url());
        async move {
            client()
                .post(url)
                .bearer_auth("k")
                .header("x-mock-status", status)
                .json(&chat(1, false))
                .send()
                .await
                .unwrap()
        }
    };
    let disabled = start(MockConfig::default()).await;
    assert_eq!(send(&disabled, "502").await.status(), 200);
    let enabled = start(MockConfig {
        override_headers: true,
        ..Default::default()
    })
    .await;
    assert_eq!(send(&enabled, "502").await.status(), 502);
    assert_eq!(send(&enabled, "abc").await.status(), 400);
    disabled.shutdown().await;
    enabled.shutdown().await;
}
