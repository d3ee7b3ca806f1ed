//! Start, graceful shutdown (bounded even with hanging requests), invalid configs refused by `spawn`.

mod common;

use common::*;
use mock_upstream::{FaultKind, FaultRule, MockConfig};
use std::time::{Duration, Instant};

#[tokio::test]
async fn shutdown_is_bounded_even_with_a_hanging_request() {
    let mock = start(MockConfig {
        rules: vec![FaultRule::new(FaultKind::Hang)],
        ..Default::default()
    })
    .await;
    let addr = mock.base_url();
    let hanging = tokio::spawn(async move {
        client()
            .post(format!("{addr}/v1/chat/completions"))
            .bearer_auth("k")
            .json(&chat(1, false))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let base = mock.base_url();
    let started = Instant::now();
    mock.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        hanging.await.unwrap().is_err(),
        "the hanging request is cut, not answered"
    );
    assert!(
        client().get(format!("{base}/health")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn spawn_refuses_invalid_config() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = MockConfig {
        rules: vec![FaultRule {
            probability: Some(2.0),
            ..FaultRule::new(FaultKind::Error)
        }],
        ..Default::default()
    };
    let error = mock_upstream::spawn(config, listener)
        .await
        .err()
        .expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("probability"), "{error}");
}

#[tokio::test]
async fn hanging_requests_are_released_when_the_client_gives_up() {
    let mock = start(MockConfig {
        rules: vec![FaultRule::new(FaultKind::Hang)],
        ..Default::default()
    })
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let attempts = (0..5).map(|_| {
        impatient
            .post(&url)
            .bearer_auth("k")
            .json(&chat(1, false))
            .send()
    });
    assert!(futures::future::join_all(attempts)
        .await
        .iter()
        .all(Result::is_err));
    mock.clear_rules();
    let mut open = u64::MAX;
    for _ in 0..20 {
        open = open_connections(&mock.base_url()).await;
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 1, "only the metrics request's own connection remains");
    mock.shutdown().await;
}
