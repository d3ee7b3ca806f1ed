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
use axum::BoxError;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::auth::client_allowed;
use crate::error::{ProxyError, KEY_USED_HEADER};
use crate::headers::{strip_request_headers, strip_response_headers};
use crate::pool::{ChosenKey, RestReason, Selection};
use crate::provider::Provider;
use crate::relay::RelayBody;
use crate::retry_hint::retry_hint;
use crate::retry_policy::{says_quota_exhausted, AttemptOutcome, KeyPenalty};
use crate::state::{AppState, Lease};
use crate::upstream::{Answer, LentConnection};

/// How much of a 429 body is read to look for `insufficient_quota` (such bodies are a few hundred bytes).
const QUOTA_PEEK_LIMIT: usize = 64 * 1024;

/// Axum handler for every proxied route (the router's fallback).
pub async fn proxy(State(state): State<AppState>, request: Request) -> Response {
    proxy_request(&state, request).await
}

/// Forwards one client request and answers it: the upstream's response, or a provider-shaped error. Takes
/// any request body, so the connection service can call it without going through the router.
pub async fn proxy_request<B>(state: &AppState, request: http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let provider = Provider::for_path(request.uri().path());
    match forward(state, provider, request).await {
        Ok(response) => response,
        Err(error) => error.for_provider(provider).into_response(),
    }
}

/// A client request made ready to be sent any number of times.
struct UpstreamRequest {
    provider: Provider,
    method: Method,
    uri: Uri,
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
    body: Incoming,
    connection: LentConnection,
    key: ChosenKey,
    lease: Lease,
}

async fn forward<B>(
    state: &AppState,
    provider: Provider,
    request: http::Request<B>,
) -> Result<Response, ProxyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
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
                return last.map_or(Err(ProxyError::NoUsableKey), |f| deliver_failure(state, f))
            }
        };
        drop(last.take());
        let lease = Lease::new(state.pool.clone(), &key);
        tried.push(key.id.clone());
        let failure = match attempt(state, &upstream, &key, started).await {
            Ok(answer) => {
                let mut reply = read_reply(state, answer, key, lease).await;
                penalize(state, &reply);
                reply.lease.settle_probe();
                if reply.status.is_success() || !AttemptOutcome::Status(reply.status).is_retryable()
                {
                    return Ok(deliver(state, reply));
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
            return deliver_failure(state, failure);
        }
        tracing::debug!(?outcome, attempts, "retrying on another key");
        last = Some(failure);
    }
}

async fn prepare<B>(
    state: &AppState,
    provider: Provider,
    request: http::Request<B>,
) -> Result<UpstreamRequest, ProxyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    let limit = state.config.max_body_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            return Err(ProxyError::BodyTooLarge { limit })
        }
        Err(error) => return Err(ProxyError::BodyUnreadable(error.to_string())),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri = state
        .upstream
        .uri_for(path_and_query)
        .map_err(|error| ProxyError::BadRequestTarget(error.to_string()))?;
    let mut headers = parts.headers;
    strip_request_headers(&mut headers);
    Ok(UpstreamRequest {
        provider,
        method: parts.method,
        uri,
        headers,
        body,
    })
}

/// Sends one attempt and waits (bounded) for response headers.
async fn attempt(
    state: &AppState,
    upstream: &UpstreamRequest,
    key: &ChosenKey,
    started: Instant,
) -> Result<Answer, AttemptOutcome> {
    let left = state
        .config
        .retry
        .deadline
        .saturating_sub(started.elapsed());
    let timeout = state.config.request_timeout.min(left);
    let mut request = http::Request::new(Full::new(upstream.body.clone()));
    *request.method_mut() = upstream.method.clone();
    *request.uri_mut() = upstream.uri.clone();
    let headers = request.headers_mut();
    headers.clone_from(&upstream.headers);
    headers.insert(
        upstream.provider.credential_header(),
        key.credential.clone(),
    );
    state.upstream.send(request, timeout).await
}

/// Takes an upstream response's head; for 429s also peeks at the body to recognise quota exhaustion.
async fn read_reply(
    state: &AppState,
    answer: Answer,
    key: ChosenKey,
    lease: Lease,
) -> UpstreamReply {
    let (parts, mut body) = answer.response.into_parts();
    let mut prefix = Vec::new();
    if parts.status == StatusCode::TOO_MANY_REQUESTS {
        let peek = async {
            while prefix.len() < QUOTA_PEEK_LIMIT {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            prefix.extend_from_slice(data);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
        };
        // A stalled 429 body must not hold the request; whatever arrived in time is kept.
        let _ = tokio::time::timeout(state.config.read_timeout, peek).await;
    }
    UpstreamReply {
        status: parts.status,
        headers: parts.headers,
        prefix: Bytes::from(prefix),
        body,
        connection: answer.connection,
        key,
        lease,
    }
}

/// Applies the retry policy's verdict on the key that produced `reply`.
fn penalize(state: &AppState, reply: &UpstreamReply) {
    // Only a 429's wait is taken from its headers; other answers are not parsed for one.
    let rate_limited = reply.status == StatusCode::TOO_MANY_REQUESTS;
    let hint = rate_limited
        .then(|| retry_hint(&reply.headers, SystemTime::now()))
        .flatten();
    let quota = rate_limited && says_quota_exhausted(&reply.prefix);
    let key = &*reply.key.id;
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

fn deliver_failure(state: &AppState, failure: Failure) -> Result<Response, ProxyError> {
    match failure {
        Failure::Answered(reply) => Ok(deliver(state, *reply)),
        Failure::NoAnswer {
            outcome: AttemptOutcome::TimedOut,
            key,
        } => Err(ProxyError::UpstreamTimeout { key }),
        Failure::NoAnswer { key, .. } => Err(ProxyError::UpstreamUnreachable { key }),
    }
}

/// Streams an upstream reply to the client (see [`RelayBody`]).
fn deliver(state: &AppState, reply: UpstreamReply) -> Response {
    let UpstreamReply {
        status,
        mut headers,
        prefix,
        body,
        connection,
        key,
        lease,
    } = reply;
    let body = RelayBody::new(prefix, body, state.config.read_timeout, lease, connection);
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = status;
    strip_response_headers(&mut headers);
    if let Some(value) = key.id_header {
        headers.insert(KEY_USED_HEADER, value);
    }
    *out.headers_mut() = headers;
    out
}
