//! Streams run on the mock's second runtime and connections move between runtimes: frames keep flowing
//! while the front runtime is blocked, one keep-alive connection alternating streams and plain requests
//! gets every answer whole, a stream whose client leaves releases its connection, and shutdown still drains
//! connections that are playing a stream.

mod common;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use mock_upstream::{Distribution, MockConfig};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn paced(inter_token: Duration) -> MockConfig {
    let mut config = MockConfig::default();
    config.latency.inter_token = Some(Distribution::Fixed(inter_token));
    config
}

/// One HTTP/1.1 connection (hyper's client over a single socket), so every request reuses it.
async fn one_connection(
    mock: &mock_upstream::RunningMock,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(mock.addr()).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    sender
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    body: &serde_json::Value,
) -> (http::StatusCode, String) {
    sender.ready().await.unwrap();
    let request = http::Request::post("/v1/chat/completions")
        .header("host", "mock")
        .header("authorization", "Bearer k")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Read a stream on a plain blocking socket in its own thread, counting SSE frame ends.
fn count_frames(addr: std::net::SocketAddr, frames: Arc<AtomicU64>) {
    let body = chat(10_000, true).to_string();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer k\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).unwrap();
    let (mut buffer, mut previous) = ([0u8; 4096], 0u8);
    while let Ok(n @ 1..) = socket.read(&mut buffer) {
        for &byte in &buffer[..n] {
            if byte == b'\n' && previous == b'\n' {
                frames.fetch_add(1, Ordering::Relaxed);
            }
            previous = byte;
        }
    }
}

/// The test's own runtime is the mock's front runtime (current-thread): blocking it stops the accept loop
/// and plain requests, but a stream's frames come from the stream runtime and keep arriving.
#[tokio::test]
async fn stream_frames_keep_flowing_while_the_front_runtime_is_blocked() {
    let mock = start(paced(Duration::from_millis(5))).await;
    let frames = Arc::new(AtomicU64::new(0));
    let reader = {
        let (addr, frames) = (mock.addr(), Arc::clone(&frames));
        std::thread::spawn(move || count_frames(addr, frames))
    };
    while frames.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = frames.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300)); // blocks the front runtime
    let during = frames.load(Ordering::Relaxed) - before;
    assert!(
        during >= 10,
        "only {during} frames in 300 ms at a 5 ms pace while the front runtime was blocked"
    );
    mock.shutdown().await;
    reader.join().unwrap();
}

#[tokio::test]
async fn one_keep_alive_connection_alternates_streams_and_plain_requests() {
    let mock = start(paced(Duration::from_millis(1))).await;
    let mut connection = one_connection(&mock).await;
    for round in 0..3 {
        let (status, stream) = send(&mut connection, &chat(5, true)).await;
        assert_eq!(status, 200, "round {round}");
        let frames: Vec<&str> = stream.split("\n\n").filter(|f| !f.is_empty()).collect();
        assert_eq!(frames.last(), Some(&"data: [DONE]"), "round {round}");
        assert!(
            frames.len() >= 7,
            "role, 5 tokens, finish, done: {frames:?}"
        );
        let (status, plain) = send(&mut connection, &chat(3, false)).await;
        assert_eq!(status, 200, "round {round}");
        let body: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["usage"]["completion_tokens"], 3);
    }
    assert_eq!(
        open_connections(&mock.base_url()).await,
        2,
        "the alternating connection was kept alive (plus the metrics request's)"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn a_stream_whose_client_leaves_releases_its_connection() {
    let mock = start(paced(Duration::from_millis(20))).await;
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("k")
        .json(&chat(1000, true))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    assert!(body.next().await.unwrap().is_ok(), "the stream started");
    drop(body);
    let mut open = u64::MAX;
    for _ in 0..40 {
        open = open_connections(&mock.base_url()).await;
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(open, 1, "only the metrics request's own connection remains");
    mock.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_a_connection_playing_a_stream() {
    let mock = start(paced(Duration::from_millis(20))).await;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let response = client()
        .post(url)
        .bearer_auth("k")
        .json(&chat(10_000, true))
        .send()
        .await
        .unwrap();
    let reading = tokio::spawn(async move { response.bytes().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    mock.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by the drain grace: {:?}",
        started.elapsed()
    );
    assert!(
        reading.await.unwrap().is_err(),
        "a 200 s stream is cut by the shutdown, not completed"
    );
}
