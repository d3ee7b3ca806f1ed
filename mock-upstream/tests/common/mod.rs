//! Shared helpers: start a real mock on 127.0.0.1:0 and talk to it over HTTP.
#![allow(dead_code)]

use mock_upstream::{spawn, KeyConfig, MockConfig, RunningMock};
use serde_json::{json, Value};

pub async fn start(config: MockConfig) -> RunningMock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    spawn(config, listener).await.expect("spawn mock")
}

pub fn key(id: &str, secret: &str) -> KeyConfig {
    KeyConfig {
        id: id.into(),
        secret: secret.into(),
        ..Default::default()
    }
}

pub fn keys(pairs: &[(&str, &str)]) -> MockConfig {
    MockConfig {
        keys: pairs.iter().map(|(id, secret)| key(id, secret)).collect(),
        ..Default::default()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

pub fn chat(max_tokens: u32, stream: bool) -> Value {
    json!({"model": "gpt-4", "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": max_tokens, "stream": stream})
}

pub fn message(max_tokens: u32, stream: bool) -> Value {
    json!({"model": "claude-3-5-sonnet-20241022", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": max_tokens, "stream": stream})
}

pub async fn post_chat(mock: &RunningMock, secret: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth(secret)
        .json(body)
        .send()
        .await
        .expect("send chat")
}

pub async fn post_message(mock: &RunningMock, secret: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("x-api-key", secret)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .expect("send message")
}

/// The JSON payloads of an SSE body's `data:` lines (excluding `[DONE]`), and whether `[DONE]` came.
pub fn sse_data(text: &str) -> (Vec<Value>, bool) {
    let mut done = false;
    let mut values = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("data: ") {
            Some("[DONE]") => done = true,
            Some(data) => values.push(serde_json::from_str(data).unwrap_or(Value::Null)),
            None => {}
        }
    }
    (values, done)
}

/// The `event:` names of an SSE body.
pub fn sse_events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

/// Send one raw HTTP/1.1 request with `connection: close` and read until EOF; an error after some bytes
/// arrived returns those bytes (an aborted body), an error before any byte is returned as is.
pub async fn raw_exchange(
    mock: &RunningMock,
    method: &str,
    path: &str,
    secret: &str,
    body: &Value,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(mock.addr()).await?;
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer {secret}\r\nx-api-key: {secret}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if received.is_empty() => return Err(err),
            Err(err) => {
                eprintln!("raw_exchange: {err} after {} bytes", received.len());
                return Ok(received);
            }
        }
    }
}

/// The mock's Prometheus text from `/metrics`.
pub async fn metrics_text(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The mock's `mock_open_connections` gauge, read from `/metrics`.
pub async fn open_connections(base: &str) -> u64 {
    metrics_text(base)
        .await
        .lines()
        .find_map(|l| l.strip_prefix("mock_open_connections "))
        .and_then(|v| v.parse().ok())
        .unwrap()
}
