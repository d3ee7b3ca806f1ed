//! The forwarder: one client request → up to `max_attempts` upstream attempts on different keys → one streamed
//! response. Decisions come from `pool` and `retry_policy`; this module only moves bytes and applies them.
//!
//! The request body is held (bounded by `--max-body-bytes`) so it can be re-sent on another key; the response
//! body is never held: it is streamed chunk by chunk as upstream produces it, so SSE time-to-first-token
//! through the proxy is the upstream's. Retries happen only before the first response byte goes to the client.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::auth::client_allowed;
use crate::error::{ProxyError, KEY_USED_HEADER};
use crate::headers::{client_response_headers, upstream_request_headers};
use crate::pool::{ChosenKey, RestReason, Selection};
use crate::provider::Provider;
use crate::retry_hint::retry_hint;
use crate::retry_policy::{says_quota_exhausted, AttemptOutcome, KeyPenalty};
use crate::state::{AppState, Lease};

/// How much of a 429 body is read to look for `insufficient_quota` (such bodies are a few hundred bytes).
const QUOTA_PEEK_LIMIT: usize = 64 * 1024;

/// Axum handler for every proxied route.
pub async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    let provider = Provider::for_path(request.uri().path());
    match forward(&state, provider, request).await {
        Ok(response) => response,
        Err(error) => error.for_provider(provider).into_response(),
    }
}

/// A client request made ready to be sent any number of times.
struct UpstreamRequest {
    provider: Provider,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
}

/// An attempt that did not succeed, kept until we know whether another attempt replaces it.
enum Failure {
    /// Upstream answered; this answer goes to the client if no retry follows.
    Answered(Box<UpstreamReply>),
    /// No answer (connect error, reset, timeout).
    NoAnswer {
        outcome: AttemptOutcome,
        key: Arc<str>,
    },
}

impl Failure {
    fn outcome(&self) -> AttemptOutcome {
        match self {
            Failure::Answered(reply) => AttemptOutcome::Status(reply.status),
            Failure::NoAnswer { outcome, .. } => *outcome,
        }
    }
}

/// Response headers from upstream plus the (unread) body, the key that got it and its lease.
struct UpstreamReply {
    status: StatusCode,
    headers: HeaderMap,
    /// Bytes already read (only for 429s, to look for quota exhaustion).
    prefix: Bytes,
    response: reqwest::Response,
    key: Arc<str>,
    lease: Lease,
}

async fn forward(
    state: &AppState,
    provider: Provider,
    request: Request,
) -> Result<Response, ProxyError> {
    if !client_allowed(state.config.client_token.as_ref(), request.headers()) {
        return Err(ProxyError::ClientUnauthorized);
    }
    let upstream = prepare(state, provider, request).await?;
    let started = Instant::now();
    let mut tried: Vec<Arc<str>> = Vec::new();
    let mut last: Option<Failure> = None;
    loop {
        let key = match state.pool.select(provider, &tried) {
            Selection::Key(key) => key,
            Selection::AllResting { retry_after } => {
                return Err(ProxyError::AllKeysResting { retry_after })
            }
            Selection::NoUsableKey => {
                return last.map_or(Err(ProxyError::NoUsableKey), deliver_failure)
            }
        };
        drop(last.take());
        let lease = Lease::new(state.pool.clone(), key.id.clone());
        tried.push(key.id.clone());
        let failure = match attempt(state, &upstream, &key, started).await {
            Ok(response) => {
                let reply = read_reply(state, response, key.id, lease).await;
                penalize(state, &reply);
                if reply.status.is_success() || !AttemptOutcome::Status(reply.status).is_retryable()
                {
                    return Ok(deliver(reply));
                }
                Failure::Answered(Box::new(reply))
            }
            Err(outcome) => Failure::NoAnswer {
                outcome,
                key: key.id,
            },
        };
        let outcome = failure.outcome();
        let attempts = u32::try_from(tried.len()).unwrap_or(u32::MAX);
        let budget = &state.config.retry;
        if !budget.allows_retry(outcome, attempts, started.elapsed()) {
            return deliver_failure(failure);
        }
        tracing::debug!(?outcome, attempts, "retrying on another key");
        last = Some(failure);
    }
}

async fn prepare(
    state: &AppState,
    provider: Provider,
    request: Request,
) -> Result<UpstreamRequest, ProxyError> {
    let (parts, body) = request.into_parts();
    let limit = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ProxyError::BodyTooLarge { limit }
        } else {
            ProxyError::BodyUnreadable(error.to_string())
        }
    })?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    Ok(UpstreamRequest {
        provider,
        method: parts.method,
        url: format!("{}{}", state.config.upstream, path_and_query),
        headers: upstream_request_headers(&parts.headers),
        body,
    })
}

/// Sends one attempt and waits (bounded) for response headers.
async fn attempt(
    state: &AppState,
    upstream: &UpstreamRequest,
    key: &ChosenKey,
    started: Instant,
) -> Result<reqwest::Response, AttemptOutcome> {
    let left = state
        .config
        .retry
        .deadline
        .saturating_sub(started.elapsed());
    let timeout = state.config.request_timeout.min(left);
    let send = state
        .client
        .request(upstream.method.clone(), &upstream.url)
        .headers(upstream.headers.clone())
        .header(
            upstream.provider.credential_header(),
            key.credential.clone(),
        )
        .body(upstream.body.clone())
        .send();
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) if error.is_connect() => Err(AttemptOutcome::ConnectFailed),
        Ok(Err(error)) if error.is_timeout() => Err(AttemptOutcome::TimedOut),
        Ok(Err(_)) => Err(AttemptOutcome::Broken),
        Err(_elapsed) => Err(AttemptOutcome::TimedOut),
    }
}

/// Takes an upstream response's head; for 429s also peeks at the body to recognise quota exhaustion.
async fn read_reply(
    state: &AppState,
    mut response: reqwest::Response,
    key: Arc<str>,
    lease: Lease,
) -> UpstreamReply {
    let status = response.status();
    let mut prefix = Vec::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let peek = async {
            while prefix.len() < QUOTA_PEEK_LIMIT {
                match response.chunk().await {
                    Ok(Some(chunk)) => prefix.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
        };
        // A stalled 429 body must not hold the request; whatever arrived in time is kept.
        let _ = tokio::time::timeout(state.config.read_timeout, peek).await;
    }
    UpstreamReply {
        status,
        headers: response.headers().clone(),
        prefix: Bytes::from(prefix),
        response,
        key,
        lease,
    }
}

/// Applies the retry policy's verdict on the key that produced `reply`.
fn penalize(state: &AppState, reply: &UpstreamReply) {
    let hint = retry_hint(&reply.headers, SystemTime::now());
    let quota =
        reply.status == StatusCode::TOO_MANY_REQUESTS && says_quota_exhausted(&reply.prefix);
    let key = &*reply.key;
    match state.config.cooldown.penalty(reply.status, hint, quota) {
        KeyPenalty::None => {}
        KeyPenalty::Cooldown(duration) => {
            tracing::info!(
                key,
                cooldown_ms = duration.as_millis() as u64,
                "key rate limited; cooling down"
            );
            state.pool.rest(key, duration, RestReason::RateLimited);
        }
        KeyPenalty::Park(duration) => {
            tracing::warn!(
                key,
                park_s = duration.as_secs(),
                "key quota exhausted; parked"
            );
            state.pool.rest(key, duration, RestReason::QuotaExhausted);
        }
        KeyPenalty::Disable => {
            tracing::warn!(key, "upstream rejected key (401); disabled");
            state.pool.disable(key);
        }
    }
}

fn deliver_failure(failure: Failure) -> Result<Response, ProxyError> {
    match failure {
        Failure::Answered(reply) => Ok(deliver(*reply)),
        Failure::NoAnswer {
            outcome: AttemptOutcome::TimedOut,
            key,
        } => Err(ProxyError::UpstreamTimeout { key }),
        Failure::NoAnswer { key, .. } => Err(ProxyError::UpstreamUnreachable { key }),
    }
}

/// Streams an upstream reply to the client. The key's lease lives inside the body stream, so the key counts as
/// in flight until the last byte is sent or the client goes away — and nothing about the request outlives that.
fn deliver(reply: UpstreamReply) -> Response {
    let UpstreamReply {
        status,
        headers,
        prefix,
        response,
        key,
        lease,
    } = reply;
    let prefix = (!prefix.is_empty()).then_some(Ok(prefix));
    let body = futures::stream::iter(prefix)
        .chain(response.bytes_stream())
        .map(move |chunk| {
            let _in_flight = &lease;
            chunk
        });
    let mut out = Response::new(Body::from_stream(body));
    *out.status_mut() = status;
    *out.headers_mut() = client_response_headers(&headers);
    if let Ok(value) = HeaderValue::from_str(&key) {
        out.headers_mut().insert(KEY_USED_HEADER, value);
    }
    out
}
