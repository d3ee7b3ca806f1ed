//! The proxy in front of the real mock-upstream serving HTTPS (generated CA, ALPN `h2` and `http/1.1`):
//! plain and streaming forwarding, HTTP/2 multiplexing, and the CA flag's errors. Then the same mock offering
//! only `http/1.1` by ALPN (an HTTP/1.1-only front end): plain and streaming forwarding over HTTP/1.1 over TLS,
//! with pooled connections (one handshake each, reused after their response ended).

mod common;

use std::time::Duration;

use clap::Parser;
use common::*;
use reference_proxy::{Args, ProxyConfig};

fn tls_mock_toml(extra: &str) -> String {
    format!("{THREE_KEYS}\n{extra}\n[tls]\nenabled = true\n")
}

/// The three key flags plus `--upstream-ca` of `mock`.
fn flags_trusting(mock: &mock_upstream::RunningMock) -> Vec<String> {
    let ca = mock
        .ca_file()
        .expect("a generated CA")
        .display()
        .to_string();
    THREE_KEY_FLAGS
        .iter()
        .map(|s| s.to_string())
        .chain(["--upstream-ca".to_string(), ca])
        .collect()
}

#[tokio::test]
async fn requests_are_forwarded_over_tls_on_one_multiplexed_http2_connection() {
    let mock = start_mock(&tls_mock_toml("")).await;
    assert!(mock.base_url().starts_with("https://"));
    let flags = flags_trusting(&mock);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let client = client();
    let (status, key, body) = chat(&client, &proxy).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("chat.completion"), "{body}");
    assert_eq!(key.as_deref(), Some("k1"));
    // With the first connection open, concurrent requests share it: HTTP/1.1 would need one connection each.
    let concurrent = futures::future::join_all((0..20).map(|_| chat(&client, &proxy))).await;
    for (status, _, body) in &concurrent {
        assert_eq!(*status, 200, "{body}");
    }
    let totals = mock.ledger().totals;
    assert_eq!(totals.requests, 21, "{totals:?}");
    assert_eq!(totals.connections, 1, "one HTTP/2 connection: {totals:?}");
    assert_eq!(totals.tls_handshakes, 1, "{totals:?}");
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn a_stream_over_tls_reaches_the_client_chunk_by_chunk() {
    let mock = start_mock(&tls_mock_toml(
        "[latency]\ninter_token = { fixed = \"150ms\" }",
    ))
    .await;
    let flags = flags_trusting(&mock);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let StreamTiming {
        first_at,
        done_at,
        text,
        ..
    } = timed_stream(&proxy).await;
    assert!(text.starts_with("data:"), "{text}");
    assert!(
        done_at - first_at >= Duration::from_millis(450),
        "first chunk at {first_at:?}, end at {done_at:?}: the stream was buffered"
    );
    assert!(text.contains("[DONE]"), "{text}");
    assert_eq!(mock.ledger().totals.tls_handshakes, 1);
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn over_http1_over_tls_requests_and_streams_are_forwarded_on_reused_connections() {
    let toml = tls_mock_toml("[latency]\ninter_token = { fixed = \"100ms\" }");
    let mock = start_mock(&format!("{toml}alpn = [\"http/1.1\"]\n")).await;
    let flags = flags_trusting(&mock);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let client = client();
    for _ in 0..10 {
        let (status, key, body) = chat(&client, &proxy).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("chat.completion"), "{body}");
        assert!(key.is_some());
    }
    let StreamTiming {
        first_at,
        done_at,
        text,
        ..
    } = timed_stream(&proxy).await;
    assert!(
        text.starts_with("data:") && text.contains("[DONE]"),
        "{text}"
    );
    assert!(
        done_at - first_at >= Duration::from_millis(300),
        "first chunk at {first_at:?}, end at {done_at:?}: the stream was buffered"
    );
    let totals = mock.ledger().totals;
    assert_eq!(totals.requests, 11, "{totals:?}");
    assert_eq!(
        (totals.connections, totals.tls_handshakes),
        (1, 1),
        "one after another, the requests and the stream share one connection: {totals:?}"
    );

    // HTTP/1.1 carries one request at a time: concurrent requests need a connection each, which are then kept.
    let concurrent = futures::future::join_all((0..8).map(|_| chat(&client, &proxy))).await;
    for (status, _, body) in &concurrent {
        assert_eq!(*status, 200, "{body}");
    }
    let after_burst = mock.ledger().totals;
    assert!(
        (2..=9).contains(&after_burst.connections),
        "{after_burst:?}"
    );
    for _ in 0..10 {
        assert_eq!(chat(&client, &proxy).await.0, 200);
    }
    let totals = mock.ledger().totals;
    assert_eq!(totals.requests, 29, "{totals:?}");
    assert_eq!(
        totals.connections, after_burst.connections,
        "idle connections are reused, not replaced: {totals:?}"
    );
    assert_eq!(totals.tls_handshakes, totals.connections, "{totals:?}");
    proxy.stop().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_tls_upstream_is_a_connect_failure_not_a_success() {
    let mock = start_mock(&tls_mock_toml("")).await;
    let other = start_mock(&tls_mock_toml("")).await;
    let mut flags: Vec<String> = THREE_KEY_FLAGS.iter().map(|s| s.to_string()).collect();
    flags.extend([
        "--upstream-ca".to_string(),
        other.ca_file().unwrap().display().to_string(),
        "--max-attempts".to_string(),
        "1".to_string(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let proxy = start_proxy(&mock.base_url(), &flags).await;
    let (status, _, body) = chat(&client(), &proxy).await;
    assert!(status >= 500, "{status}: {body}");
    assert_eq!(mock.ledger().totals.requests, 0);
    proxy.stop().await;
    mock.shutdown().await;
    other.shutdown().await;
}

#[test]
fn ca_flag_mistakes_are_named() {
    let mut garbage = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut garbage, b"not pem").unwrap();
    let garbage = garbage.path().display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--upstream", "https://127.0.0.1:9"],
            "needs --upstream-ca",
        ),
        (
            &[
                "--upstream",
                "http://127.0.0.1:9",
                "--upstream-ca",
                &garbage,
            ],
            "only applies to an https:// upstream",
        ),
        (
            &[
                "--upstream",
                "https://127.0.0.1:9",
                "--upstream-ca",
                &garbage,
            ],
            "holds no PEM certificate",
        ),
        (
            &[
                "--upstream",
                "https://127.0.0.1:9",
                "--upstream-ca",
                "/nonexistent/ca.pem",
            ],
            "/nonexistent/ca.pem: cannot read it",
        ),
    ];
    for (argv, want) in cases {
        let args = Args::try_parse_from(std::iter::once(&"reference-proxy").chain(argv)).unwrap();
        let message = ProxyConfig::from_args(&args).unwrap_err().to_string();
        assert!(message.contains(want), "{argv:?}: {message}");
    }
}
