//! Upstream connection reuse, against a small raw-TCP upstream that counts the connections it accepts and can
//! close each one right after its response without announcing it (as an upstream's idle timeout does).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REPLY: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";

/// A keep-alive HTTP/1.1 upstream answering every request with [`REPLY`]; counts accepted connections.
struct CountingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
}

async fn start_counting_upstream(close_after_reply: bool) -> CountingUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer_requests(tcp, close_after_reply));
        }
    });
    CountingUpstream { url, accepted }
}

/// Reads requests (head + `content-length` body) and answers each, until the peer closes or after the first
/// reply when `close_after_reply`.
async fn answer_requests(mut tcp: TcpStream, close_after_reply: bool) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(length) = request_length(&buffer) {
            buffer.drain(..length);
            if tcp.write_all(REPLY.as_bytes()).await.is_err() || close_after_reply {
                return;
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The length of the first complete request in `buffer`, if it is all there.
fn request_length(buffer: &[u8]) -> Option<usize> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buffer[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let body = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    (buffer.len() >= head_end + body).then_some(head_end + body)
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let upstream = start_counting_upstream(false).await;
    let proxy = start_proxy(&upstream.url, &THREE_KEY_FLAGS).await;
    let client = client();
    for _ in 0..20 {
        let (status, _, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced_without_an_error() {
    let upstream = start_counting_upstream(true).await;
    let proxy = start_proxy(&upstream.url, &THREE_KEY_FLAGS).await;
    let client = client();
    for _ in 0..10 {
        let (status, _, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
    }
    // Every reply closed its connection, so every request needed a new one — and none failed.
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 10);
    proxy.stop().await;
}
