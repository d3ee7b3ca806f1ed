//! The way to the upstream: HTTP/1 connections of our own (hyper's connection-level client), a bound on
//! connections in use, and one attempt = one request sent and its response head awaited within a timeout.
//!
//! Why not a pooled client (reqwest, hyper-util's legacy client): the proxy's per-request CPU is dominated by the
//! upstream hop, and a pooled client adds a keyed pool behind a lock, layered futures and one spawned task per
//! request (to return the connection when it becomes idle). Here a connection is lent to one request and comes
//! back to a short idle list when the response body has been relayed to its end ([`LentConnection::finish`]);
//! a connection whose body was not read to the end is closed, never reused. Why a bound: every upstream request
//! in flight holds its own HTTP/1 connection, so a latency stall at 1000 req/s would otherwise open hundreds of
//! connections whose buffers stay allocated afterwards. With at most `max_connections` requests in flight
//! upstream, requests beyond it wait (inside their attempt timeout) instead; at most [`IDLE_CONNECTIONS`] stay
//! open idle, each closed after [`IDLE_TIMEOUT`] unused.
//!
//! An `https://` upstream is reached over TLS ([`crate::tls`]); when it chooses HTTP/2 by ALPN, one connection
//! carries many requests at once, so an HTTP/2 connection stays in the idle list while lent (each request takes
//! a clone of its sender) instead of being lent to one request. The plain-HTTP path makes no TLS call.

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::retry_policy::AttemptOutcome;

/// Idle upstream connections kept for reuse; more than steady load needs, far fewer than a stall opens.
pub const IDLE_CONNECTIONS: usize = 64;
/// An idle upstream connection unused for this long is closed, so buffers from a burst do not linger.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request body as sent upstream: the client's body, held once and re-sent by reference on each attempt.
pub type UpstreamBody = Full<Bytes>;

/// The sending half of an upstream connection.
#[derive(Debug)]
enum Sender {
    /// HTTP/1.1: one request at a time.
    Http1(http1::SendRequest<UpstreamBody>),
    /// HTTP/2 (TLS with ALPN `h2`): requests multiplexed, the sender cloned per request.
    Http2(http2::SendRequest<UpstreamBody>),
}

type TrySendError = hyper::client::conn::TrySendError<Request<UpstreamBody>>;

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }

    fn is_ready(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_ready(),
            Sender::Http2(s) => s.is_ready(),
        }
    }

    async fn try_send_request(
        &mut self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, TrySendError> {
        match self {
            Sender::Http1(s) => s.try_send_request(request).await,
            Sender::Http2(s) => s.try_send_request(request).await,
        }
    }

    async fn send_request(
        &mut self,
        request: Request<UpstreamBody>,
    ) -> hyper::Result<Response<Incoming>> {
        match self {
            Sender::Http1(s) => s.send_request(request).await,
            Sender::Http2(s) => s.send_request(request).await,
        }
    }
}

/// The upstream's address, its idle connections and the bound on connections in use.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port` to connect to.
    address: Arc<str>,
    /// For an `https://` upstream: the TLS client and the name its certificate must carry.
    tls: Option<TlsUpstream>,
    /// `scheme://authority` of the base URL: HTTP/2 requests carry it as `:scheme` and `:authority`.
    origin: Arc<str>,
    /// The `Host` header of every upstream request.
    host: HeaderValue,
    /// Path prefix of the base URL without a trailing slash ("" for a bare host).
    base_path: Arc<str>,
    connect_timeout: Duration,
    connections: Arc<Semaphore>,
    idle: Arc<IdleConnections>,
}

/// Why an upstream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not `http(s)://host[:port][/path]`, or is `https://` without a TLS config.
    #[error("upstream base URL `{url}`: {message}")]
    BadBaseUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A client request path cannot be appended to the base URL.
    #[error("request path `{0}` is not a valid URL path")]
    BadPath(String),
}

/// A response head from upstream with its still-unread body, and the connection it came on, lent until the body
/// is finished or dropped.
#[derive(Debug)]
pub struct Answer {
    /// The response; its body streams from the connection.
    pub response: Response<Incoming>,
    /// The connection (and its slot among `max_connections`).
    pub connection: LentConnection,
}

/// An upstream connection lent to one request. Counts toward `max_connections` until dropped; goes back to the
/// idle list only through [`LentConnection::finish`].
#[derive(Debug)]
pub struct LentConnection {
    sender: Option<Sender>,
    idle: Arc<IdleConnections>,
    _slot: OwnedSemaphorePermit,
}

impl LentConnection {
    /// The response body was read to its end: the connection can serve another request.
    pub fn finish(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.idle.put(sender);
        }
    }
}

/// Connections with no request on them, most recently used last.
#[derive(Debug, Default)]
struct IdleConnections {
    list: Mutex<Vec<(Sender, Instant)>>,
}

impl IdleConnections {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Vec<(Sender, Instant)>> {
        self.list.lock()
    }

    /// The most recently used connection that can take a request now; closed ones are dropped on the way, and
    /// one still finishing its previous exchange is left for a later request. An HTTP/2 connection stays in
    /// the list (marked used now) and the request gets a clone of its sender.
    fn take(&self) -> Option<Sender> {
        let mut list = self.lock();
        list.retain(|(sender, _)| !sender.is_closed());
        let index = list.iter().rposition(|(sender, _)| sender.is_ready())?;
        if let (Sender::Http2(shared), since) = &mut list[index] {
            *since = Instant::now();
            return Some(Sender::Http2(shared.clone()));
        }
        Some(list.remove(index).0)
    }

    /// Gives back a connection after a request; an HTTP/2 one never left the list, so its clone is dropped.
    fn put(&self, sender: Sender) {
        if sender.is_closed() || matches!(sender, Sender::Http2(_)) {
            return;
        }
        self.insert(sender);
    }

    /// Adds a connection to the list (the oldest leaves when it is full).
    fn insert(&self, sender: Sender) {
        let mut list = self.lock();
        if list.len() >= IDLE_CONNECTIONS {
            list.remove(0);
        }
        list.push((sender, Instant::now()));
    }

    /// Closes the connections idle for longer than [`IDLE_TIMEOUT`].
    fn expire(&self, now: Instant) {
        self.lock().retain(|(sender, since)| {
            !sender.is_closed() && now.duration_since(*since) < IDLE_TIMEOUT
        });
    }
}

/// Closes expired idle connections every second, for as long as the upstream exists.
async fn expire_idle(idle: Weak<IdleConnections>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(idle) = idle.upgrade() else { return };
        idle.expire(Instant::now());
    }
}

impl Upstream {
    /// An upstream at `base_url` (`http(s)://host[:port][/path]`, already checked by config; `https://` needs
    /// `tls`, the client config from [`crate::tls::client_config`]) with at most `max_connections` requests in
    /// flight. Inside a Tokio runtime, also starts closing idle connections after [`IDLE_TIMEOUT`].
    pub fn new(
        base_url: &str,
        connect_timeout: Duration,
        max_connections: usize,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Upstream, UpstreamError> {
        let bad = |message: String| UpstreamError::BadBaseUrl {
            url: base_url.to_string(),
            message,
        };
        let uri: Uri = base_url.parse().map_err(|e| bad(format!("{e}")))?;
        let authority: Authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad("no host".into()))?;
        let (tls, default_port) = match (uri.scheme(), tls) {
            (Some(s), _) if *s == Scheme::HTTP => (None, 80),
            (Some(s), Some(config)) if *s == Scheme::HTTPS => {
                let host = authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| bad(format!("host is not a TLS server name: {e}")))?;
                let tls = TlsUpstream {
                    connector: tokio_rustls::TlsConnector::from(config),
                    name,
                };
                (Some(tls), 443)
            }
            (Some(s), None) if *s == Scheme::HTTPS => {
                return Err(bad("https:// needs a CA to trust (--upstream-ca)".into()))
            }
            _ => return Err(bad("must start with http:// or https://".into())),
        };
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| bad(format!("{e}")))?;
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(default_port)
        );
        let origin = format!("{}://{authority}", uri.scheme_str().unwrap_or("http"));
        let idle = Arc::new(IdleConnections::default());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(expire_idle(Arc::downgrade(&idle)));
        }
        Ok(Upstream {
            address: Arc::from(address),
            tls,
            origin: Arc::from(origin),
            host,
            base_path: Arc::from(uri.path().trim_end_matches('/')),
            connect_timeout,
            connections: Arc::new(Semaphore::new(max_connections.max(1))),
            idle,
        })
    }

    /// The upstream request target (origin-form: path and query) for a client request's `path_and_query`.
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let bad = || UpstreamError::BadPath(path_and_query.to_string());
        let path = if self.base_path.is_empty() {
            PathAndQuery::try_from(path_and_query).map_err(|_| bad())?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.base_path))
                .map_err(|_| bad())?
        };
        Ok(Uri::from(path))
    }

    /// Sends `request` (origin-form URI, see [`Upstream::uri_for`]; the `Host` header is set here, and on an
    /// HTTP/2 connection the absolute URI its `:scheme` and `:authority` come from) and waits for the response
    /// head, all within `timeout` (waiting for a free connection slot included).
    pub async fn send(
        &self,
        mut request: Request<UpstreamBody>,
        timeout: Duration,
    ) -> Result<Answer, AttemptOutcome> {
        request.headers_mut().insert(HOST, self.host.clone());
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .unwrap_or(Err(AttemptOutcome::TimedOut))
    }

    async fn exchange(&self, mut request: Request<UpstreamBody>) -> Result<Answer, AttemptOutcome> {
        let slot = match self.connections.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => self
                .connections
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| AttemptOutcome::Broken)?,
        };
        if let Some(mut sender) = self.idle.take() {
            self.fit_uri(&sender, &mut request)?;
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.answer(response, sender, slot)),
                // The upstream closed this idle connection before the request went out: send it on a new one.
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(AttemptOutcome::Broken),
                },
            }
        }
        let mut sender = self.connect_shared().await?;
        self.fit_uri(&sender, &mut request)?;
        match sender.send_request(request).await {
            Ok(response) => Ok(self.answer(response, sender, slot)),
            Err(_) => Err(AttemptOutcome::Broken),
        }
    }

    /// HTTP/1.1 sends the origin-form target (`/v1/...`, with `Host`); HTTP/2 needs the absolute URI. A request
    /// retried from an HTTP/2 connection on a new HTTP/1.1 one goes back to origin-form.
    fn fit_uri(
        &self,
        sender: &Sender,
        request: &mut Request<UpstreamBody>,
    ) -> Result<(), AttemptOutcome> {
        let absolute = request.uri().scheme().is_some();
        let target = match (sender, absolute) {
            (Sender::Http2(_), false) => format!("{}{}", self.origin, request.uri()),
            (Sender::Http1(_), true) => request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_string(), ToString::to_string),
            _ => return Ok(()),
        };
        *request.uri_mut() = target.parse().map_err(|_| AttemptOutcome::Broken)?;
        Ok(())
    }

    fn answer(
        &self,
        response: Response<Incoming>,
        sender: Sender,
        slot: OwnedSemaphorePermit,
    ) -> Answer {
        Answer {
            response,
            connection: LentConnection {
                sender: Some(sender),
                idle: self.idle.clone(),
                _slot: slot,
            },
        }
    }

    /// Opens a new connection (bounded by the connect timeout); its I/O runs in a task of its own.
    async fn connect(&self) -> Result<Sender, AttemptOutcome> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&*self.address))
            .await
            .map_err(|_| AttemptOutcome::ConnectFailed)?
            .map_err(|_| AttemptOutcome::ConnectFailed)?;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY upstream");
        }
        match &self.tls {
            None => handshake_http1(tcp).await,
            Some(tls) => {
                let stream = tokio::time::timeout(
                    self.connect_timeout,
                    tls.connector.connect(tls.name.clone(), tcp),
                )
                .await
                .map_err(|_| AttemptOutcome::ConnectFailed)?
                .map_err(|error| {
                    tracing::debug!(%error, "TLS handshake with the upstream failed");
                    AttemptOutcome::ConnectFailed
                })?;
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    handshake_http2(stream).await
                } else {
                    handshake_http1(stream).await
                }
            }
        }
    }

    /// Opens a new connection and, for HTTP/2, shares it through the idle list right away.
    async fn connect_shared(&self) -> Result<Sender, AttemptOutcome> {
        let sender = self.connect().await?;
        if let Sender::Http2(shared) = &sender {
            self.idle.insert(Sender::Http2(shared.clone()));
        }
        Ok(sender)
    }
}

/// The TLS side of an `https://` upstream.
#[derive(Clone)]
struct TlsUpstream {
    connector: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsUpstream")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An HTTP/1.1 connection over `io`; its I/O runs in a task of its own.
async fn handshake_http1<T>(io: T) -> Result<Sender, AttemptOutcome>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| AttemptOutcome::ConnectFailed)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
    });
    Ok(Sender::Http1(sender))
}

/// An HTTP/2 connection over `io`; its I/O runs in a task of its own.
async fn handshake_http2<T>(io: T) -> Result<Sender, AttemptOutcome>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|_| AttemptOutcome::ConnectFailed)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "upstream HTTP/2 connection ended with an error");
        }
    });
    Ok(Sender::Http2(sender))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_join_the_base_url() {
        let cases = [
            ("http://127.0.0.1:9000", "/v1/models", "/v1/models"),
            ("http://h:1/openai", "/v1/x?a=1", "/openai/v1/x?a=1"),
            ("http://h:1/openai/", "/v1/x", "/openai/v1/x"),
        ];
        for (base, path, want) in cases {
            let upstream = Upstream::new(base, Duration::from_secs(1), 4, None).unwrap();
            assert_eq!(
                upstream.uri_for(path).unwrap().to_string(),
                want,
                "{base} {path}"
            );
        }
    }

    #[test]
    fn base_urls_other_than_http_or_https_with_a_ca_are_refused() {
        for base in ["https://h:1", "ftp://h:1", "h:1", "/path"] {
            assert!(
                Upstream::new(base, Duration::from_secs(1), 4, None).is_err(),
                "{base}"
            );
        }
    }
}
