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
    let listed: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        mock_upstream::LISTED_WHEN_UNRESTRICTED,
        "current names when any model is served"
    );
    for id in ["gpt-4.1", "gpt-17-preview"] {
        let one = client
            .get(url(&format!("/v1/models/{id}")))
            .bearer_auth("x")
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), 200, "{id}");
        let one: Value = one.json().await.unwrap();
        assert_eq!(
            (one["object"].as_str(), one["id"].as_str()),
            (Some("model"), Some(id))
        );
    }
    mock.shutdown().await;
}

/// Names no built-in list knows: this month's and an invented one.
const NEW_MODELS: [&str; 2] = ["claude-sonnet-4-5", "model-from-next-month"];

#[tokio::test]
async fn any_model_is_served_and_echoed_by_default_plain_and_streaming() {
    let mock = start(MockConfig::default()).await;
    for model in ["gpt-5", "o3", NEW_MODELS[1]] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3});
        let plain = post_chat(&mock, "sk-any", &body).await;
        assert_eq!(plain.status(), 200, "{model}");
        assert_eq!(plain.json::<Value>().await.unwrap()["model"], model);
        let mut streaming = body.clone();
        streaming["stream"] = json!(true);
        let text = post_chat(&mock, "sk-any", &streaming)
            .await
            .text()
            .await
            .unwrap();
        let (chunks, done) = sse_data(&text);
        assert!(done && chunks.len() > 1, "{model}: {text}");
        assert!(
            chunks.iter().all(|c| c["model"] == model),
            "{model}: {text}"
        );
    }
    for model in ["claude-opus-4-1", NEW_MODELS[0], NEW_MODELS[1]] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3});
        let plain = post_message(&mock, "sk-any", &body).await;
        assert_eq!(plain.status(), 200, "{model}");
        assert_eq!(plain.json::<Value>().await.unwrap()["model"], model);
        let mut streaming = body.clone();
        streaming["stream"] = json!(true);
        let text = post_message(&mock, "sk-any", &streaming)
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            sse_events(&text).last().map(String::as_str),
            Some("message_stop"),
            "{text}"
        );
        let (events, _) = sse_data(&text);
        assert_eq!(events[0]["message"]["model"], model, "{text}");
    }
    let embeddings = client()
        .post(format!("{}/v1/embeddings", mock.base_url()))
        .bearer_auth("sk-any")
        .json(&json!({"model": "text-embedding-4-tiny", "input": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(embeddings.status(), 200);
    assert_eq!(
        embeddings.json::<Value>().await.unwrap()["model"],
        "text-embedding-4-tiny"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn a_models_list_restricts_with_each_provider_s_404_body() {
    let mock = start(MockConfig {
        models: vec!["gpt-4.1".into(), "claude-opus-4-1".into()],
        ..MockConfig::default()
    })
    .await;
    let chat_for = |model: &str, stream: bool| json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": stream});
    for stream in [false, true] {
        assert_eq!(
            post_chat(&mock, "k", &chat_for("gpt-4.1", stream))
                .await
                .status(),
            200
        );
        assert_eq!(
            post_message(&mock, "k", &chat_for("claude-opus-4-1", stream))
                .await
                .status(),
            200
        );

        let openai = post_chat(&mock, "k", &chat_for("gpt-5", stream)).await;
        assert_eq!(openai.status(), 404);
        assert_eq!(openai.headers()["content-type"], "application/json");
        assert_eq!(
            openai.json::<Value>().await.unwrap(),
            json!({"error": {
                "message": "The model `gpt-5` does not exist or you do not have access to it.",
                "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})
        );
        let anthropic = post_message(&mock, "k", &chat_for(NEW_MODELS[0], stream)).await;
        assert_eq!(anthropic.status(), 404);
        let body: Value = anthropic.json().await.unwrap();
        assert!(
            body["request_id"].as_str().unwrap().starts_with("req_"),
            "{body}"
        );
        assert_eq!(
            (&body["type"], &body["error"]),
            (
                &json!("error"),
                &json!({"type": "not_found_error", "message": "model: claude-sonnet-4-5"})
            )
        );
    }
    let list: Value = client()
        .get(format!("{}/v1/models", mock.base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&json!("gpt-4.1"), &json!("claude-opus-4-1")]);
    let missing = client()
        .get(format!("{}/v1/models/gpt-4", mock.base_url()))
        .bearer_auth("k")
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
    config.models = vec!["gpt-4".into(), "claude-3-5-sonnet-20241022".into()];
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
