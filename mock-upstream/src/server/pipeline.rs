//! The request pipeline shared by every provider endpoint: key → body → model → account state → fault
//! decision → rate limiter → latency → response. Each step either continues or ends the exchange with a
//! provider-shaped response (or a dropped connection); every ending is recorded in the key's ledger.

use super::body::{self, BodyFault, ResponseBody, SseScript};
use super::request_headers::{override_rule, secret};
use super::serve::{ConnControl, Kill, ResetStream, StreamPlacement};
use super::state::MockState;
use crate::config::KeyState;
use crate::faults::{FaultKind, FaultRule, LimitKind, RequestFacts};
use crate::keys::{KeyLookup, KeyRuntime};
use crate::ledger::NO_RESPONSE;
use crate::limiter::LimitStatus;
use crate::providers::{self, anthropic, openai, ApiError, Completion, ParsedRequest};
use crate::route::{Provider, Route};
use crate::seed::{Purpose, RequestSeed};
use axum::body::Body;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::ops::ControlFlow::{self, Break, Continue};
use std::time::{Duration, SystemTime};

/// What the pipeline answers: a provider response whose body is usually one whole chunk.
pub(crate) type Response = http::Response<ResponseBody>;

/// One provider request as the router hands it over.
pub(crate) struct ProviderCall {
    pub(crate) route: Route,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// `GET /v1/models/{id}`: the id.
    pub(crate) model_in_path: Option<String>,
    pub(crate) conn: Option<ConnControl>,
}

/// Run the pipeline and time it for the latency histogram. Every decision is made synchronously; only
/// the outcome waits, so the future a connection holds per request stays small (no RNG, no profile, no
/// parsed request across an await).
pub(crate) async fn handle(state: MockState, call: ProviderCall) -> Response {
    let started = std::time::Instant::now();
    let route = call.route;
    let response = Exchange::start(&state, call, started)
        .run()
        .complete()
        .await;
    state.latency_histograms.observe(route, started.elapsed());
    response
}

/// How an exchange ends, once everything is decided.
enum Outcome {
    /// Answer now.
    Respond(Response),
    /// Answer after this delay (latency profile, injected latency, time to the stream's headers).
    Delayed(Duration, Response),
    /// Move the connection to the stream runtime, then answer after the delay to the stream's headers.
    Stream(Option<ConnControl>, Duration, Response),
    /// Send nothing: optionally wait, then close or reset the connection.
    Dropped {
        wait: Option<Duration>,
        kill: Kill,
        conn: Option<ConnControl>,
    },
}

impl Outcome {
    async fn complete(self) -> Response {
        match self {
            Outcome::Respond(response) => response,
            Outcome::Delayed(delay, response) => {
                tokio::time::sleep(delay).await;
                response
            }
            Outcome::Stream(conn, delay, response) => {
                if let Some(conn) = conn {
                    conn.move_to_streams().await;
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                response
            }
            Outcome::Dropped { wait, kill, conn } => {
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                match conn {
                    // HTTP/2: the service turns this mark into RST_STREAM for this exchange only.
                    Some(conn) if conn.is_multiplexed() => {
                        let mut response = Response::new(ResponseBody::whole(Bytes::new()));
                        response.extensions_mut().insert(ResetStream);
                        response
                    }
                    Some(conn) => {
                        conn.kill(kill);
                        std::future::pending().await
                    }
                    // Not served by our accept loop: the closest thing is aborting the body right after the head.
                    None => Response::new(ResponseBody::Streamed(Body::from_stream(
                        futures::stream::once(async {
                            Err::<Bytes, _>(std::io::Error::other("connection dropped by fault"))
                        }),
                    ))),
                }
            }
        }
    }

    /// Wait `delay` first, unless it is zero.
    fn after(delay: Duration, response: Response) -> Self {
        if delay.is_zero() {
            Outcome::Respond(response)
        } else {
            Outcome::Delayed(delay, response)
        }
    }
}

/// How a fault changes an otherwise normal response.
#[derive(Default)]
struct Shaping {
    extra_latency: Duration,
    body_fault: BodyFault,
    bytes_per_sec: Option<u32>,
}

struct Exchange<'a> {
    state: &'a MockState,
    call: ProviderCall,
    provider: Provider,
    request_id: String,
    now: Duration,
    limits: Option<LimitStatus>,
}

impl<'a> Exchange<'a> {
    fn start(state: &'a MockState, call: ProviderCall, arrived: std::time::Instant) -> Self {
        let provider = call.route.provider();
        Exchange {
            state,
            provider,
            request_id: state.next_request_id(),
            now: state.at(arrived),
            limits: None,
            call,
        }
    }

    fn run(mut self) -> Outcome {
        let registry = self.state.registry();
        let lookup = registry.lookup(secret(&self.call.headers, self.provider));
        if let Some(conn) = &self.call.conn {
            conn.count_request(&registry, lookup.key());
        }
        let key = match lookup {
            KeyLookup::Accepted(key) => key,
            KeyLookup::Rejected(bucket) => return self.reject(&bucket, ApiError::InvalidKey),
        };
        let index = key.next_index(self.call.route);
        key.ledger()
            .arrival(self.now, self.state.retry_after_grace());
        let parsed = match self.parse() {
            Ok(parsed) => parsed,
            Err(error) => return self.reject(&key, error),
        };
        if let Err(error) = self.check_account(&key, &parsed) {
            return self.reject(&key, error);
        }
        let seed = RequestSeed::new(self.state.config.seed, key.id(), self.call.route, index);
        let shaping = match self.decide_fault(&key, &parsed, &seed) {
            Ok(Some(rule)) => {
                key.ledger()
                    .record_fault(self.call.route, index, rule.action);
                match self.inject(&key, &rule, &parsed, &seed) {
                    Continue(shaping) => shaping,
                    Break(outcome) => return outcome,
                }
            }
            Ok(None) => Shaping::default(),
            Err(error) => return self.reject(&key, error),
        };
        self.respond(&key, parsed, &seed, shaping)
    }

    fn parse(&self) -> Result<ParsedRequest, ApiError> {
        match self.call.route {
            Route::ChatCompletions => openai::parse_chat(&self.call.body),
            Route::Embeddings => openai::parse_embeddings(&self.call.body),
            Route::Messages => anthropic::parse_messages(&self.call.body),
            Route::Models => Ok(ParsedRequest {
                model: self.call.model_in_path.clone(),
                ..Default::default()
            }),
        }
    }

    fn check_account(&self, key: &KeyRuntime, parsed: &ParsedRequest) -> Result<(), ApiError> {
        if key.config.provider.is_some_and(|p| p != self.provider) {
            return Err(ApiError::WrongProvider);
        }
        match key.config.state {
            KeyState::Revoked => return Err(ApiError::RevokedKey),
            KeyState::OutOfCredit => return Err(ApiError::Quota),
            KeyState::Active => {}
        }
        match &parsed.model {
            Some(model) if !self.state.served_models().accepts(model) => {
                Err(ApiError::ModelNotFound(model.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The override headers (when enabled) win; otherwise the first rule that matches and fires.
    fn decide_fault(
        &self,
        key: &KeyRuntime,
        parsed: &ParsedRequest,
        seed: &RequestSeed,
    ) -> Result<Option<FaultRule>, ApiError> {
        if self.state.config.override_headers {
            if let Some(rule) = override_rule(&self.call.headers)? {
                return Ok(Some(rule));
            }
        }
        let facts = RequestFacts {
            key_id: key.id(),
            route: self.call.route,
            model: parsed.model.as_deref(),
            stream: parsed.stream,
        };
        let since_epoch = self.state.since_epoch(self.now);
        Ok(self
            .state
            .rules
            .decide(&facts, seed, self.now, since_epoch)
            .map(|active| active.rule.clone()))
    }

    /// Carry out a fault: either a complete ending (`Break`) or a shaping of the normal response.
    fn inject(
        &mut self,
        key: &KeyRuntime,
        rule: &FaultRule,
        parsed: &ParsedRequest,
        seed: &RequestSeed,
    ) -> ControlFlow<Outcome, Shaping> {
        let chunks = rule.chunks.unwrap_or(1);
        let body_fault = match rule.action {
            FaultKind::Error => {
                let error = ApiError::Injected {
                    status: rule.status.unwrap_or(500),
                    message: rule.message.clone(),
                };
                return Break(self.error(key, error, rule.retry_after, rule.should_retry));
            }
            FaultKind::RateLimit => return Break(self.injected_rate_limit(key, rule, parsed)),
            FaultKind::Quota => {
                return Break(self.error(key, ApiError::Quota, rule.retry_after, rule.should_retry))
            }
            FaultKind::Overloaded => {
                let status = if self.provider == Provider::Anthropic {
                    529
                } else {
                    503
                };
                let error = ApiError::Injected {
                    status,
                    message: rule.message.clone(),
                };
                return Break(self.error(
                    key,
                    error,
                    rule.retry_after,
                    Some(rule.should_retry.unwrap_or(true)),
                ));
            }
            FaultKind::Hang => {
                return Break(self.drop_connection(
                    key,
                    Some(self.state.config.hang_max),
                    Kill::Close,
                ))
            }
            FaultKind::TcpReset => return Break(self.drop_connection(key, None, Kill::Reset)),
            FaultKind::Close => return Break(self.drop_connection(key, None, Kill::Close)),
            FaultKind::Disconnect if !parsed.stream => {
                return Break(self.drop_connection(key, rule.after, Kill::Close))
            }
            FaultKind::Disconnect => BodyFault::DisconnectAt(
                tokio::time::Instant::now() + rule.after.unwrap_or_default(),
            ),
            FaultKind::MalformedJson => BodyFault::Malformed,
            FaultKind::TruncatedBody => BodyFault::Truncated,
            FaultKind::CutStream => BodyFault::CutAfter(chunks),
            FaultKind::StreamError => BodyFault::ErrorAfter(chunks, rule.message.clone()),
            FaultKind::MalformedSse => BodyFault::MalformedAfter(chunks),
            FaultKind::Latency | FaultKind::Slow => BodyFault::None,
        };
        let extra_latency = rule
            .latency
            .as_ref()
            .map(|d| d.sample(&mut seed.rng(Purpose::Fault)))
            .unwrap_or_default();
        Continue(Shaping {
            extra_latency,
            body_fault,
            bytes_per_sec: rule.bytes_per_sec,
        })
    }

    fn injected_rate_limit(
        &mut self,
        key: &KeyRuntime,
        rule: &FaultRule,
        parsed: &ParsedRequest,
    ) -> Outcome {
        let status = key.limiter().peek(self.now);
        let kind = rule.limit.unwrap_or_default();
        let (limit, requested) = match kind {
            LimitKind::Requests => (status.limit_requests, 1),
            LimitKind::Tokens => (
                status.limit_tokens,
                parsed.input_tokens + u64::from(parsed.max_tokens.unwrap_or(0)),
            ),
        };
        let retry_after = rule.retry_after.unwrap_or(Duration::from_secs(1));
        let model = parsed.model.clone().unwrap_or_default();
        let error = ApiError::RateLimited {
            kind,
            model,
            limit,
            used: limit,
            requested,
            retry_after,
        };
        self.error(key, error, Some(retry_after), rule.should_retry)
    }

    /// End the exchange without a response: optionally wait, then close or reset the connection.
    fn drop_connection(&self, key: &KeyRuntime, wait: Option<Duration>, kill: Kill) -> Outcome {
        key.ledger().record(self.call.route, NO_RESPONSE, 0, 0);
        Outcome::Dropped {
            wait,
            kill,
            conn: self.call.conn.clone(),
        }
    }

    fn respond(
        &mut self,
        key: &KeyRuntime,
        parsed: ParsedRequest,
        seed: &RequestSeed,
        shaping: Shaping,
    ) -> Outcome {
        let output_tokens = self.output_tokens(&parsed);
        if let Some(refusal) = self.over_limit(key, &parsed, output_tokens) {
            return refusal;
        }
        let profile = self.state.latency_profile(&key.config, self.call.route);
        let mut latency_rng = seed.rng(Purpose::Latency);
        let completion = self.completion(&parsed, output_tokens, seed);
        let output = u64::from(output_tokens);
        key.ledger()
            .record(self.call.route, 200, parsed.input_tokens, output);
        if parsed.stream {
            let delay = profile.header_delay(&mut latency_rng) + shaping.extra_latency;
            let script = SseScript {
                provider: self.provider,
                completion,
                profile,
                rng: latency_rng,
                request_id: self.request_id.clone(),
                _placement: self.call.conn.clone().map(StreamPlacement::new),
            };
            let body = body::sse_body(script, shaping.body_fault, shaping.bytes_per_sec);
            let response = self.finish(StatusCode::OK, "text/event-stream", body, None);
            return Outcome::Stream(self.call.conn.clone(), delay, response);
        }
        let delay = match profile.is_instant() {
            true => Duration::ZERO,
            false => profile.response_delay(&mut latency_rng, output_tokens),
        };
        let bytes = self.render_success(&parsed, &completion, seed);
        let (body, length) = body::json_body(bytes, &shaping.body_fault, shaping.bytes_per_sec);
        let response = self.finish(StatusCode::OK, "application/json", body, Some(length));
        Outcome::after(delay + shaping.extra_latency, response)
    }

    /// Tokens to generate: `max_tokens` (or the default), capped; none for embeddings and models.
    fn output_tokens(&self, parsed: &ParsedRequest) -> u32 {
        let config = &self.state.config;
        match self.call.route {
            Route::ChatCompletions | Route::Messages => parsed
                .max_tokens
                .unwrap_or(config.default_output_tokens)
                .min(config.max_output_tokens),
            Route::Embeddings | Route::Models => 0,
        }
    }

    /// Take one request and its tokens from the key's limiter (`None`), or answer with the provider's 429.
    fn over_limit(
        &mut self,
        key: &KeyRuntime,
        parsed: &ParsedRequest,
        output_tokens: u32,
    ) -> Option<Outcome> {
        let tokens = parsed.input_tokens + u64::from(output_tokens);
        let admitted = key.limiter().admit(self.now, tokens);
        match admitted {
            Ok(status) => {
                self.limits = Some(status);
                None
            }
            Err((refusal, status)) => {
                self.limits = Some(status);
                let error = ApiError::RateLimited {
                    kind: refusal.kind,
                    model: parsed.model.clone().unwrap_or_default(),
                    limit: refusal.limit,
                    used: refusal.used,
                    requested: refusal.requested,
                    retry_after: refusal.retry_after,
                };
                Some(self.error(key, error, Some(refusal.retry_after), None))
            }
        }
    }

    fn completion(
        &self,
        parsed: &ParsedRequest,
        output_tokens: u32,
        seed: &RequestSeed,
    ) -> Completion {
        let prefix = if self.provider == Provider::Anthropic {
            "msg_"
        } else {
            "chatcmpl-"
        };
        let suffix = self.request_id.trim_start_matches("req_");
        let mut id = String::with_capacity(prefix.len() + suffix.len());
        id.push_str(prefix);
        id.push_str(suffix);
        Completion {
            id,
            model: parsed.model.clone().unwrap_or_default(),
            created: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            input_tokens: parsed.input_tokens,
            output_tokens,
            text_start: seed.value() % 1024,
            hit_max_tokens: parsed.max_tokens.is_some(),
            include_usage: parsed.include_usage,
            token_template: Default::default(),
        }
    }

    fn render_success(
        &self,
        parsed: &ParsedRequest,
        completion: &Completion,
        seed: &RequestSeed,
    ) -> Bytes {
        match (self.call.route, &parsed.embedding, &parsed.model) {
            (Route::ChatCompletions, _, _) => openai::chat_body(completion),
            (Route::Messages, _, _) => anthropic::message_body(completion),
            (Route::Embeddings, Some(spec), Some(model)) => {
                openai::embeddings_body(spec, model, parsed.input_tokens, seed.value())
            }
            (_, _, Some(model)) => openai::model_body(model),
            _ => self.state.served_models().listing_body(),
        }
    }

    /// A request-level rejection before limits apply (bad key, bad body, unknown model, account state).
    fn reject(&mut self, key: &KeyRuntime, error: ApiError) -> Outcome {
        self.error(key, error, None, None)
    }

    /// A provider-shaped error; announces `retry_after` (and remembers it for violation counting).
    fn error(
        &mut self,
        key: &KeyRuntime,
        error: ApiError,
        retry_after: Option<Duration>,
        should_retry: Option<bool>,
    ) -> Outcome {
        let status = error.status(self.provider);
        key.ledger().record(self.call.route, status.as_u16(), 0, 0);
        if let Some(wait) = retry_after {
            key.ledger().announce_retry_after(self.now, wait);
        }
        if self.limits.is_none() {
            self.limits = Some(key.limiter().peek(self.now));
        }
        let bytes = error.body(self.provider, &self.request_id);
        let length = bytes.len() as u64;
        let mut response = self.finish(
            status,
            "application/json",
            ResponseBody::whole(bytes),
            Some(length),
        );
        let headers = response.headers_mut();
        if let Some(wait) = retry_after {
            providers::retry_headers(wait, headers);
        }
        if let Some(retry) = should_retry {
            headers.insert(
                HeaderName::from_static("x-should-retry"),
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        Outcome::Respond(response)
    }

    fn finish(
        &self,
        status: StatusCode,
        content_type: &'static str,
        body: ResponseBody,
        length: Option<u64>,
    ) -> Response {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let limits = self.limits.unwrap_or_default();
        if let (Provider::OpenAi, "application/json", Some(length)) =
            (self.provider, content_type, length)
        {
            if let Some(ready) = openai::unlimited_json_headers(&limits, length, &self.request_id) {
                *response.headers_mut() = ready;
                return response;
            }
        }
        let headers = response.headers_mut();
        headers.reserve(16);
        headers.append(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(length) = length {
            headers.append(CONTENT_LENGTH, length.into());
        }
        if content_type == "text/event-stream" {
            headers.append(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        providers::limit_headers(self.provider, &limits, &self.request_id, headers);
        response
    }
}
