//! HTTPS over loopback: a client trusting the generated CA gets models and streamed completions over HTTP/2
//! (ALPN `h2`) and over HTTP/1.1 (a client offering only `http/1.1`); a client without the CA is refused;
//! connection-dropping faults reset one HTTP/2 stream but the whole HTTP/1.1 connection; `[tls] alpn =
//! ["http/1.1"]` answers an `h2`-preferring client in HTTP/1.1 and refuses one that offers only `h2`; the binary
//! announces the CA file and rejects TLS flags that make no sense.

mod common;

use bytes::Bytes;
use common::{chat, keys, message, sse_data, sse_events};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mock_upstream::{AlpnProtocol, FaultKind, FaultRule, MockConfig, RunningMock, TlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];
const H1_ONLY: &[&[u8]] = &[b"http/1.1"];
const H2_ONLY: &[&[u8]] = &[b"h2"];

async fn start_tls(config: MockConfig) -> RunningMock {
    common::start(MockConfig {
        tls: TlsConfig {
            enabled: true,
            ..Default::default()
        },
        ..config
    })
    .await
}

/// One client connection, speaking what ALPN chose.
enum Client {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> hyper::Result<http::Response<Incoming>> {
        match self {
            Client::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Client::H2(sender) => sender.send_request(request).await,
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Client::H1(sender) => sender.is_closed(),
            Client::H2(sender) => sender.is_closed(),
        }
    }
}

fn tls_client_config(ca_pem: Option<&str>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.expect("CA PEM parses"))
                .expect("CA is a usable root");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Connect to the mock, trusting `ca_pem` only and offering `alpn`; the handshake error as text on failure.
async fn connect(
    mock: &RunningMock,
    ca_pem: Option<&str>,
    alpn: &[&[u8]],
) -> Result<Client, String> {
    let connector = TlsConnector::from(Arc::new(tls_client_config(ca_pem, alpn)));
    let tcp = TcpStream::connect(mock.addr()).await.expect("tcp connect");
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|err| err.to_string())?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    Ok(if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(connection);
        Client::H2(sender)
    } else {
        let (sender, connection) = http1::handshake(io).await.expect("h1 handshake");
        tokio::spawn(connection);
        Client::H1(sender)
    })
}

async fn connect_trusting(mock: &RunningMock, alpn: &[&[u8]]) -> Client {
    connect(mock, mock.ca_pem(), alpn)
        .await
        .expect("a client trusting the CA connects")
}

fn get(mock: &RunningMock, path: &str, secret: &str) -> Request<Full<Bytes>> {
    Request::get(format!("{}{path}", mock.base_url()))
        .header("authorization", format!("Bearer {secret}"))
        .body(Full::default())
        .unwrap()
}

fn post(
    mock: &RunningMock,
    path: &str,
    secret: &str,
    body: &serde_json::Value,
) -> Request<Full<Bytes>> {
    Request::post(format!("{}{path}", mock.base_url()))
        .header("authorization", format!("Bearer {secret}"))
        .header("x-api-key", secret)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn text(response: http::Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("whole body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn models_and_streams_over_http2_and_http1_with_the_generated_ca() {
    let mock = start_tls(keys(&[("k1", "sk-1")])).await;
    assert!(
        mock.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        mock.base_url()
    );
    let ca_file = mock.ca_file().expect("generated CA file");
    assert_eq!(
        std::fs::read_to_string(ca_file).unwrap(),
        mock.ca_pem().unwrap()
    );

    for (alpn, version) in [(H2_AND_H1, Version::HTTP_2), (H1_ONLY, Version::HTTP_11)] {
        let mut client = connect_trusting(&mock, alpn).await;
        let models = client.send(get(&mock, "/v1/models", "sk-1")).await.unwrap();
        assert_eq!(
            (models.status(), models.version()),
            (StatusCode::OK, version)
        );
        assert!(text(models).await.contains("\"object\":\"list\""));

        let stream = client
            .send(post(&mock, "/v1/chat/completions", "sk-1", &chat(5, true)))
            .await
            .unwrap();
        assert_eq!(
            (stream.status(), stream.version()),
            (StatusCode::OK, version)
        );
        let (frames, done) = sse_data(&text(stream).await);
        assert!(done && frames.len() >= 5, "{version:?}: {frames:?}");

        let anthropic = client
            .send(post(&mock, "/v1/messages", "sk-1", &message(3, true)))
            .await
            .unwrap();
        assert_eq!(anthropic.version(), version);
        let events = sse_events(&text(anthropic).await);
        assert_eq!(
            events.last().map(String::as_str),
            Some("message_stop"),
            "{events:?}"
        );

        let ledger = client
            .send(get(&mock, "/__admin/ledger", "-"))
            .await
            .unwrap();
        assert_eq!(
            (ledger.status(), ledger.version()),
            (StatusCode::OK, version)
        );
    }
    assert_eq!(mock.ledger().keys["k1"].total_requests, 6);
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused() {
    let mock = start_tls(MockConfig::default()).await;
    let refused = connect(&mock, None, H2_AND_H1)
        .await
        .err()
        .expect("handshake fails");
    assert!(refused.contains("certificate"), "{refused}");
    let other_ca = start_tls(MockConfig::default()).await;
    let refused = connect(&mock, other_ca.ca_pem(), H2_AND_H1)
        .await
        .err()
        .expect("another mock's CA is not this one's");
    assert!(refused.contains("invalid peer certificate"), "{refused}");
}

#[tokio::test]
async fn alpn_restricted_to_http1_serves_http1_to_a_client_preferring_h2() {
    let mock = common::start(MockConfig {
        tls: TlsConfig {
            enabled: true,
            alpn: vec![AlpnProtocol::Http11],
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut client = connect_trusting(&mock, H2_AND_H1).await;
    assert!(matches!(client, Client::H1(_)), "ALPN chose h2");
    let response = client.send(get(&mock, "/v1/models", "sk-x")).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::OK);
    let refused = connect(&mock, mock.ca_pem(), H2_ONLY)
        .await
        .err()
        .expect("no protocol in common");
    assert!(refused.contains("NoApplicationProtocol"), "{refused}");
}

fn reset_rule(kind: FaultKind) -> FaultRule {
    FaultRule {
        keys: vec!["k2".into()],
        ..FaultRule::new(kind)
    }
}

#[tokio::test]
async fn on_http2_a_dropping_fault_resets_only_its_stream() {
    let mock = start_tls(keys(&[("k1", "sk-1"), ("k2", "sk-2")])).await;
    mock.set_rules(vec![reset_rule(FaultKind::TcpReset)])
        .unwrap();
    let mut client = connect_trusting(&mock, H2_AND_H1).await;
    let Client::H2(sender) = &client else {
        panic!("ALPN chose HTTP/1.1")
    };
    // A stream in flight on the same connection while another stream is reset.
    let mut in_flight = sender.clone();
    let slow = post(&mock, "/v1/chat/completions", "sk-1", &chat(20, true));
    let slow = tokio::spawn(async move { text(in_flight.send_request(slow).await.unwrap()).await });

    let reset = client
        .send(post(&mock, "/v1/chat/completions", "sk-2", &chat(3, false)))
        .await
        .expect_err("the faulted stream is reset");
    assert!(format!("{reset:?}").contains("INTERNAL_ERROR"), "{reset:?}");
    assert!(
        !client.is_closed(),
        "the connection survives the stream reset"
    );
    let after = client.send(get(&mock, "/v1/models", "sk-1")).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    let (_, done) = sse_data(&slow.await.unwrap());
    assert!(done, "the concurrent stream finished");

    mock.set_rules(vec![FaultRule {
        chunks: Some(2),
        ..reset_rule(FaultKind::CutStream)
    }])
    .unwrap();
    let cut = client
        .send(post(&mock, "/v1/chat/completions", "sk-2", &chat(10, true)))
        .await
        .unwrap();
    assert_eq!(cut.status(), StatusCode::OK);
    let body = cut.into_body().collect().await.expect_err("cut mid-stream");
    assert!(format!("{body:?}").contains("INTERNAL_ERROR"), "{body:?}");
    let after = client.send(get(&mock, "/v1/models", "sk-1")).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK, "still the same connection");

    mock.set_rules(vec![reset_rule(FaultKind::Close)]).unwrap();
    let closed = client
        .send(post(&mock, "/v1/chat/completions", "sk-2", &chat(3, false)))
        .await
        .expect_err("`close` resets the stream too");
    assert!(
        format!("{closed:?}").contains("INTERNAL_ERROR"),
        "{closed:?}"
    );
    let after = client.send(get(&mock, "/v1/models", "sk-1")).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    let ledger = mock.ledger();
    assert_eq!(
        ledger.totals.connections, 1,
        "every exchange on one connection"
    );
    assert_eq!(
        ledger.keys["k2"].requests[&mock_upstream::Route::ChatCompletions]["none"],
        2
    );
}

#[tokio::test]
async fn on_http1_over_tls_a_reset_fault_drops_the_connection() {
    let mock = start_tls(keys(&[("k2", "sk-2")])).await;
    mock.set_rules(vec![reset_rule(FaultKind::TcpReset)])
        .unwrap();
    let mut client = connect_trusting(&mock, H1_ONLY).await;
    let error = client
        .send(post(&mock, "/v1/chat/completions", "sk-2", &chat(3, false)))
        .await
        .expect_err("no response");
    assert!(
        format!("{error:?}").contains("ConnectionReset"),
        "{error:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(client.is_closed(), "the whole connection is gone");
}

#[tokio::test]
async fn the_ledger_counts_connections_and_handshakes_by_first_key() {
    let mock = start_tls(keys(&[("k1", "sk-1"), ("k2", "sk-2")])).await;
    let mut pooled = connect_trusting(&mock, H2_AND_H1).await;
    for secret in ["sk-1", "sk-1", "sk-2", "sk-1"] {
        let response = pooled.send(get(&mock, "/v1/models", secret)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for _ in 0..3 {
        let mut fresh = connect_trusting(&mock, H1_ONLY).await;
        let response = fresh.send(get(&mock, "/v1/models", "sk-2")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let ledger = mock.ledger();
    let counts = |id: &str| {
        let key = &ledger.keys[id];
        (
            key.connections,
            key.tls_handshakes,
            key.requests_per_connection,
        )
    };
    assert_eq!(counts("k1"), (1, 1, Some(4.0)), "one pooled connection");
    assert_eq!(counts("k2"), (3, 3, Some(1.0)), "a connection per request");
    let totals = &ledger.totals;
    assert_eq!(
        (
            totals.connections,
            totals.tls_handshakes,
            totals.requests_per_connection
        ),
        (4, 4, Some(7.0 / 4.0))
    );

    mock.reset();
    pooled.send(get(&mock, "/v1/models", "sk-2")).await.unwrap();
    let ledger = mock.ledger();
    assert_eq!(ledger.keys["k1"].connections, 0);
    assert_eq!(
        (
            ledger.keys["k2"].connections,
            ledger.keys["k2"].requests_per_connection
        ),
        (1, Some(1.0)),
        "an open connection counts again after a reset, under its next request's key"
    );

    let plain = common::start(keys(&[("k1", "sk-1")])).await;
    for _ in 0..3 {
        let response = common::client()
            .get(format!("{}/v1/models", plain.base_url()))
            .bearer_auth("sk-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let key = &plain.ledger().keys["k1"];
    assert_eq!(
        (
            key.connections,
            key.tls_handshakes,
            key.requests_per_connection
        ),
        (3, 0, Some(1.0))
    );
}
