//! Provider surface over real HTTP: every endpoint, plain and streaming, bodies and headers in the shapes the
//! official SDKs parse, and provider-shaped client errors.

mod common;

use common::*;
use mock_upstream::{KeyState, MockConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn chat_completion_plain_has_sdk_shape_and_openai_headers() {
    let mock = start(keys(&[("k1", "sk-one")])).await;
    let response = post_chat(&mock, "sk-one", &chat(7, false)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    for name in [
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
        "x-request-id",
    ] {
        assert!(headers.contains_key(name), "missing {name}");
    }
    assert!(headers["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["usage"]["completion_tokens"], 7);
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.split(' ').count(), 7);
    let other: Value = post_chat(&mock, "sk-one", &chat(7, false))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["id"], body["id"], "ids are unique");
    mock.shutdown().await;
}

#[tokio::test]
async fn chat_completion_stream_ends_with_done_and_usage_when_asked() {
    let mock = start(MockConfig::default()).await;
    let mut body = chat(3, true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post_chat(&mock, "anything", &body).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (chunks, done) = sse_data(&response.text().await.unwrap());
    assert!(done);
    assert_eq!(chunks.len(), 6, "role + 3 tokens + finish + usage");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
    mock.shutdown().await;
}

#[tokio::test]
async fn anthropic_messages_plain_and_stream() {
    let mock = start(keys(&[("a1", "sk-ant")])).await;
    let response = post_message(&mock, "sk-ant", &message(4, false)).await;
    assert_eq!(response.status(), 200);
    for name in [
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "request-id",
    ] {
        assert!(response.headers().contains_key(name), "missing {name}");
    }
    let reset = response.headers()["anthropic-ratelimit-requests-reset"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        time::OffsetDateTime::parse(&reset, &time::format_description::well_known::Rfc3339).is_ok(),
        "{reset}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert_eq!(body["usage"]["output_tokens"], 4);
    assert_eq!(body["stop_reason"], "max_tokens");

    let text = post_message(&mock, "sk-ant", &message(2, true))
        .await
        .text()
        .await
        .unwrap();
    let expected = [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(sse_events(&text), expected);
    mock.shutdown().await;
}

#[tokio::test]
async fn embeddings_and_models() {
    let mock = start(MockConfig::default()).await;
    let client = client();
    let url = |path: &str| format!("{}{path}", mock.base_url());
    let body: Value = client
        .post(url("/v1/embeddings"))
        .bearer_auth("x")
        .json(&json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() >= 1);

    let list: Value = client
        .get(url("/v1/models"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "gpt-4"));
    let one = client
        .get(url("/v1/models/gpt-4"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap()["object"], "model");
    let missing = client
        .get(url("/v1/models/gpt-17"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_found"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn client_errors_are_provider_shaped_never_500() {
    let mut config = keys(&[("k1", "sk-one"), ("rev", "sk-rev"), ("broke", "sk-broke")]);
    config.keys[1].state = KeyState::Revoked;
    config.keys[2].state = KeyState::OutOfCredit;
    let mock = start(config).await;
    let raw = |body: &'static str| {
        let url = format!("{}/v1/chat/completions", mock.base_url());
        async move {
            client()
                .post(url)
                .bearer_auth("sk-one")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    // (response, status, openai error field to check, expected value)
    let cases = [
        (raw("{not json").await, 400, "type", "invalid_request_error"),
        (raw(r#"{"model":"gpt-4"}"#).await, 400, "param", "messages"),
        (
            raw(r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#).await,
            404,
            "code",
            "model_not_found",
        ),
        (
            post_chat(&mock, "sk-unknown", &chat(1, false)).await,
            401,
            "code",
            "invalid_api_key",
        ),
        (
            post_chat(&mock, "sk-rev", &chat(1, false)).await,
            401,
            "code",
            "invalid_api_key",
        ),
        (
            post_chat(&mock, "sk-broke", &chat(1, false)).await,
            429,
            "code",
            "insufficient_quota",
        ),
    ];
    for (response, status, field, value) in cases {
        assert_eq!(response.status(), status);
        assert!(!response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"][field], value, "{body}");
    }
    let bad = post_message(
        &mock,
        "sk-one",
        &json!({"model": "claude-3-5-sonnet-20241022", "messages": []}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("invalid_request_error"))
    );
    let unknown = client()
        .get(format!("{}/v2/nothing", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let ledger = mock.ledger();
    assert_eq!(ledger.keys["_unknown"].total_requests, 1);
    assert_eq!(
        ledger.keys["k1"].requests[&mock_upstream::Route::ChatCompletions]["400"],
        2
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn oversized_body_gets_provider_shaped_413() {
    let mock = start(MockConfig::default()).await;
    let huge = format!(
        r#"{{"model":"gpt-4","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("k")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(response.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exceeds"));
    mock.shutdown().await;
}
