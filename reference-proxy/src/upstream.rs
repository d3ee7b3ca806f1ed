//! The way to the upstream: one pooled HTTP/1 client (hyper-util), a bound on connections in use, and one
//! attempt = one request sent and its response head awaited within a timeout.
//!
//! Why hyper-util and not a higher-level client: the proxy's per-request CPU is dominated by the upstream hop, and
//! a bare hyper client does the same work for a fraction of the cost (no URL re-parsing, no extra header maps,
//! no boxed body layers). Why a bound: every upstream request in flight holds its own HTTP/1 connection, so a
//! latency stall at 1000 req/s would otherwise open hundreds of connections whose buffers stay allocated in the
//! idle pool afterwards. With at most `max_connections` requests in flight upstream, requests beyond it wait
//! (inside their attempt timeout) instead, and the idle pool is trimmed to a small size after a short idle time.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::retry_policy::AttemptOutcome;

/// Idle upstream connections kept for reuse; more than steady load needs, far fewer than a stall opens.
const IDLE_CONNECTIONS: usize = 64;
/// An idle upstream connection unused for this long is closed, so buffers from a burst do not linger.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A request body as sent upstream: the client's body, held once and re-sent by reference on each attempt.
pub type UpstreamBody = Full<Bytes>;

/// The upstream connection pool and the base URL requests are sent to.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, UpstreamBody>,
    authority: Authority,
    /// Path prefix of the base URL without a trailing slash ("" for a bare host).
    base_path: Arc<str>,
    connections: Arc<Semaphore>,
}

/// Why an upstream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not `http://host[:port][/path]`.
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

/// A response head from upstream with its still-unread body, and the connection slot it occupies until the body
/// is finished or dropped.
#[derive(Debug)]
pub struct Answer {
    /// The response; its body streams from the connection.
    pub response: Response<Incoming>,
    /// Held until the body is done: counts toward `max_connections`.
    pub slot: OwnedSemaphorePermit,
}

impl Upstream {
    /// A client for `base_url` (`http://host[:port][/path]`, already checked by config) with at most
    /// `max_connections` requests in flight.
    pub fn new(
        base_url: &str,
        connect_timeout: Duration,
        max_connections: usize,
    ) -> Result<Upstream, UpstreamError> {
        let bad = |message: String| UpstreamError::BadBaseUrl {
            url: base_url.to_string(),
            message,
        };
        let uri: Uri = base_url.parse().map_err(|e| bad(format!("{e}")))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(bad("must start with http://".into()));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad("no host".into()))?;
        let base_path = uri.path().trim_end_matches('/');
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_CONNECTIONS.min(max_connections))
            .build(connector);
        Ok(Upstream {
            client,
            authority,
            base_path: Arc::from(base_path),
            connections: Arc::new(Semaphore::new(max_connections.max(1))),
        })
    }

    /// The upstream URI for a client request's `path_and_query`.
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        let bad = || UpstreamError::BadPath(path_and_query.to_string());
        let path = if self.base_path.is_empty() {
            PathAndQuery::try_from(path_and_query).map_err(|_| bad())?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.base_path))
                .map_err(|_| bad())?
        };
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|_| bad())
    }

    /// Sends `request` and waits for the response head, all within `timeout` (waiting for a free connection
    /// slot included).
    pub async fn send(
        &self,
        request: Request<UpstreamBody>,
        timeout: Duration,
    ) -> Result<Answer, AttemptOutcome> {
        let exchange = async {
            let slot = match self.connections.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => self
                    .connections
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| AttemptOutcome::Broken)?,
            };
            match self.client.request(request).await {
                Ok(response) => Ok(Answer { response, slot }),
                Err(error) if error.is_connect() => Err(AttemptOutcome::ConnectFailed),
                Err(_) => Err(AttemptOutcome::Broken),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(AttemptOutcome::TimedOut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_join_the_base_url() {
        let cases = [
            (
                "http://127.0.0.1:9000",
                "/v1/models",
                "http://127.0.0.1:9000/v1/models",
            ),
            (
                "http://h:1/openai",
                "/v1/x?a=1",
                "http://h:1/openai/v1/x?a=1",
            ),
            ("http://h:1/openai/", "/v1/x", "http://h:1/openai/v1/x"),
        ];
        for (base, path, want) in cases {
            let upstream = Upstream::new(base, Duration::from_secs(1), 4).unwrap();
            assert_eq!(
                upstream.uri_for(path).unwrap().to_string(),
                want,
                "{base} {path}"
            );
        }
    }

    #[test]
    fn base_urls_other_than_http_are_refused() {
        for base in ["https://h:1", "h:1", "/path"] {
            assert!(
                Upstream::new(base, Duration::from_secs(1), 4).is_err(),
                "{base}"
            );
        }
    }
}
