//! Test rig: the real `mock-upstream` and the real proxy, each on 127.0.0.1:0, in this process.

#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use mock_upstream::{FaultRule, LedgerSnapshot, MockConfig, RunningMock};
use reference_proxy::{app, serve, serve_proxy, AppState, Args, ProxyConfig};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Three OpenAI/Anthropic keys `k1..k3` with secrets `sk-test-1..3`, as mock TOML.
pub const THREE_KEYS: &str = r#"
[[keys]]
id = "k1"
secret = "sk-test-1"

[[keys]]
id = "k2"
secret = "sk-test-2"

[[keys]]
id = "k3"
secret = "sk-test-3"
"#;

/// The same three keys as proxy CLI flags.
pub const THREE_KEY_FLAGS: [&str; 6] = [
    "--key",
    "k1=sk-test-1",
    "--key",
    "k2=sk-test-2",
    "--key",
    "k3=sk-test-3",
];

/// Starts the real mock from TOML text.
pub async fn start_mock(toml: &str) -> RunningMock {
    let config = MockConfig::from_toml_str(toml, "test mock config").expect("mock config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    mock_upstream::spawn(config, listener)
        .await
        .expect("spawn mock")
}

/// A fault rule from its JSON shape (the same as the mock's admin API and config).
pub fn rule(value: Value) -> FaultRule {
    serde_json::from_value(value).expect("fault rule JSON")
}

/// Installs a fault rule given in its JSON shape.
pub fn install(mock: &RunningMock, rule_json: Value) {
    mock.add_rule(rule(rule_json)).expect("valid fault rule");
}

/// The proxy running in this process.
pub struct TestProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestProxy {
    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful shutdown; waits for the serve loop to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

/// Starts the proxy in front of `upstream` with CLI `flags` (as a user would type them), served as the binary
/// serves it ([`serve_proxy`]).
pub async fn start_proxy(upstream: &str, flags: &[&str]) -> TestProxy {
    start(upstream, flags, false).await
}

/// [`start_proxy`], but every request goes through the router ([`serve`] of [`app`]), as when an embedder
/// customizes it.
pub async fn start_proxy_via_router(upstream: &str, flags: &[&str]) -> TestProxy {
    start(upstream, flags, true).await
}

async fn start(upstream: &str, flags: &[&str], via_router: bool) -> TestProxy {
    let mut argv = vec!["reference-proxy", "--upstream", upstream];
    argv.extend_from_slice(flags);
    let args = Args::try_parse_from(argv).expect("proxy flags");
    let config = ProxyConfig::from_args(&args).expect("proxy config");
    let state = AppState::new(config).expect("proxy state");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = if via_router {
        tokio::spawn(serve(listener, app(state), shutdown))
    } else {
        tokio::spawn(serve_proxy(listener, state, shutdown))
    };
    TestProxy {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A client with a bounded timeout, so no test can hang.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}

/// A small OpenAI chat request body.
pub fn chat_body(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [{ "role": "user", "content": "hello" }],
        "max_tokens": 5,
        "stream": stream,
    })
}

/// A small Anthropic messages request body.
pub fn messages_body() -> Value {
    json!({
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 5,
        "messages": [{ "role": "user", "content": "hello" }],
    })
}

/// POSTs a chat completion through the proxy; returns status, `X-Key-Used` and the body text.
pub async fn chat(client: &reqwest::Client, proxy: &TestProxy) -> (u16, Option<String>, String) {
    let response = client
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth("client-token")
        .json(&chat_body(false))
        .send()
        .await
        .expect("request through proxy");
    let status = response.status().as_u16();
    let key = key_used(&response);
    (status, key, response.text().await.unwrap_or_default())
}

/// The `X-Key-Used` header of a response.
pub fn key_used(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-key-used")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// Requests the mock saw for key `id` (0 when the key never appeared).
pub fn requests_of(ledger: &LedgerSnapshot, id: &str) -> u64 {
    ledger.keys.get(id).map_or(0, |k| k.total_requests)
}

/// One streamed chat completion through the proxy, timed.
pub struct StreamTiming {
    /// When the first chunk arrived, from the send.
    pub first_at: Duration,
    /// When the stream ended, from the send.
    pub done_at: Duration,
    /// The whole body.
    pub text: String,
    /// The response's `content-type`.
    pub content_type: String,
}

/// Sends a streaming chat completion through `proxy` (asserting a 200) and reads it to its end, timing the
/// first chunk and the end: a proxy that buffers streams delivers both at once.
pub async fn timed_stream(proxy: &TestProxy) -> StreamTiming {
    use futures::StreamExt;
    let started = std::time::Instant::now();
    let response = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut chunks = response.bytes_stream();
    let first = chunks.next().await.expect("a first chunk").unwrap();
    let first_at = started.elapsed();
    let mut text = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = chunks.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    StreamTiming {
        first_at,
        done_at: started.elapsed(),
        text,
        content_type,
    }
}
