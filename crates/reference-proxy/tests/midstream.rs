//! A failure in the middle of a stream is passed on to the client, never retried. Uses a tiny axum upstream so
//! the break (an I/O error after two flushed frames) is controlled exactly; the mock's `cut_stream` fault is
//! exercised in `failover.rs` as well.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::post;
use axum::Router;
use common::*;
use futures::StreamExt;

/// An upstream whose streams send two SSE frames 50 ms apart, then break the connection.
async fn breaking_upstream(hits: Arc<AtomicUsize>) -> String {
    let handler = move || {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let frames = futures::stream::iter(0..3).then(|i| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                match i {
                    0 | 1 => Ok(Bytes::from(format!("data: {{\"frame\":{i}}}\n\n"))),
                    _ => Err(std::io::Error::other("upstream broke mid-stream")),
                }
            });
            axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(frames))
                .unwrap()
        }
    };
    let app = Router::new().route("/v1/chat/completions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_stream_broken_after_its_first_bytes_is_passed_on_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let upstream = breaking_upstream(hits.clone()).await;
    let proxy = start_proxy(&upstream, &THREE_KEY_FLAGS).await;
    let response = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    let mut broke = false;
    while let Some(chunk) = stream.next().await {
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
        text.contains("\"frame\":0") && text.contains("\"frame\":1"),
        "{text}"
    );
    assert!(
        broke,
        "the client must see the stream break, not a clean end: {text}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a started stream must not be retried"
    );
    proxy.stop().await;
}
