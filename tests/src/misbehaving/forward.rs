//! One client request → attempts on different keys (failover on 429, 5xx and broken connections) → one
//! response with `X-Key-Used`. The body is streamed chunk by chunk, except with `buffers-streams`, which reads it
//! whole first — the defect that makes a stream's first token arrive only at its end.
//!
//! When every key not yet tried is resting, the request is answered at once: 429 with `retry-after` if no attempt
//! was made, else the last upstream answer. `holds-when-exhausted` sleeps until the first key is back instead of
//! that 429, then tries it (and answers what it says).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use reference_proxy::headers::{client_response_headers, upstream_request_headers};
use reference_proxy::retry_hint::retry_hint;
use reference_proxy::retry_policy::AttemptOutcome;
use reference_proxy::{Provider, ProxyError, KEY_USED_HEADER};

use crate::misbehaving::pool::KeyPool;
use crate::misbehaving::{Defect, UpstreamClient};

/// Largest request body the fixture accepts.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Shared state of the fixture.
#[derive(Debug)]
pub struct ProxyState {
    /// Upstream base URL without a trailing slash.
    pub upstream: String,
    /// Keys.
    pub pool: KeyPool,
    /// HTTP client to the upstream (HTTP/1.1, or over TLS HTTP/2 or HTTP/1.1 by ALPN).
    pub client: UpstreamClient,
    /// The defect.
    pub defect: Defect,
    /// Rest after a 429 without a usable hint.
    pub default_cooldown: Duration,
    /// Longest wait for response headers.
    pub request_timeout: Duration,
}

/// An upstream answer whose body is still to be read.
type UpstreamResponse = http::Response<hyper::body::Incoming>;

/// The request as it goes upstream, re-sendable on another key.
struct Outgoing {
    provider: Provider,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Axum handler for every forwarded route.
pub async fn proxy(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let provider = Provider::for_path(request.uri().path());
    match forward(&state, provider, request).await {
        Ok(response) => response,
        Err(error) => error.for_provider(provider).into_response(),
    }
}

async fn forward(
    state: &ProxyState,
    provider: Provider,
    request: Request,
) -> Result<Response, ProxyError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| ProxyError::BodyUnreadable(error.to_string()))?;
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let outgoing = Outgoing {
        provider,
        method: parts.method,
        uri: format!("{}{path}", state.upstream).parse().map_err(
            |error: http::uri::InvalidUri| ProxyError::BadRequestTarget(error.to_string()),
        )?,
        headers: upstream_request_headers(&parts.headers),
        body,
    };
    let mut tried = Vec::new();
    let mut last: Option<Result<(UpstreamResponse, usize), ProxyError>> = None;
    while tried.len() < state.pool.max_attempts() {
        let index = match state.pool.select(&tried, Instant::now()) {
            Ok(index) => index,
            Err(Some(wait)) if state.defect == Defect::HoldsWhenExhausted && last.is_none() => {
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(wait) if last.is_none() => {
                return Err(ProxyError::AllKeysResting {
                    retry_after: wait.unwrap_or(state.default_cooldown),
                })
            }
            Err(_) => break,
        };
        tried.push(index);
        let outcome = attempt(state, &outgoing, index).await;
        let retryable = match &outcome {
            Ok(response) => AttemptOutcome::Status(response.status()).is_retryable(),
            Err(_) => true,
        };
        last = Some(outcome.map(|response| (response, index)));
        if !retryable {
            break;
        }
    }
    match last {
        Some(Ok((response, index))) => Ok(deliver(state, provider, response, index).await),
        Some(Err(error)) => Err(error),
        None => Err(ProxyError::NoUsableKey),
    }
}

/// One upstream attempt on key `index`; rests the key after a 429 (the pool decides whether that holds).
async fn attempt(
    state: &ProxyState,
    outgoing: &Outgoing,
    index: usize,
) -> Result<UpstreamResponse, ProxyError> {
    let key = state.pool.key(index);
    let credential = outgoing
        .provider
        .credential_value(key.secret.expose())
        .map_err(|_| ProxyError::UpstreamUnreachable {
            key: key.id.as_str().into(),
        })?;
    let mut request = http::Request::new(Full::new(outgoing.body.clone()));
    *request.method_mut() = outgoing.method.clone();
    *request.uri_mut() = outgoing.uri.clone();
    *request.headers_mut() = outgoing.headers.clone();
    request
        .headers_mut()
        .insert(outgoing.provider.credential_header(), credential);
    let send = state.client.request(request);
    let response = match tokio::time::timeout(state.request_timeout, send).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => {
            return Err(ProxyError::UpstreamUnreachable {
                key: key.id.as_str().into(),
            })
        }
        Err(_) => {
            return Err(ProxyError::UpstreamTimeout {
                key: key.id.as_str().into(),
            })
        }
    };
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        let wait =
            retry_hint(response.headers(), SystemTime::now()).unwrap_or(state.default_cooldown);
        state.pool.rest(index, wait, Instant::now());
    }
    Ok(response)
}

/// The upstream's answer as the client gets it: streamed, or read whole first with `buffers-streams`.
async fn deliver(
    state: &ProxyState,
    provider: Provider,
    response: UpstreamResponse,
    index: usize,
) -> Response {
    let status = response.status();
    let headers = client_response_headers(response.headers());
    let body = if state.defect == Defect::BuffersStreams {
        match response.into_body().collect().await {
            Ok(collected) => Body::from(collected.to_bytes()),
            Err(_) => {
                let key = state.pool.key(index).id.as_str().into();
                return ProxyError::UpstreamUnreachable { key }
                    .for_provider(provider)
                    .into_response();
            }
        }
    } else {
        Body::new(response.into_body())
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    if let Ok(value) = HeaderValue::from_str(&state.pool.key(index).id) {
        out.headers_mut().insert(KEY_USED_HEADER, value);
    }
    out
}
