//! OpenAI wire format: chat completions (plain and `chat.completion.chunk` SSE ending in `data: [DONE]`),
//! embeddings, models, `{"error":{...}}` bodies and `x-ratelimit-*` headers with Go-style durations.

use super::{
    parse_body, to_json, ApiError, Completion, EmbeddingSpec, ParsedRequest, TokenTemplate,
    TOKEN_MARKER,
};
use crate::faults::LimitKind;
use crate::limiter::{LimitStatus, UNLIMITED_RPM, UNLIMITED_TPM};
use crate::text::{self, CountedTokens};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

const SYSTEM_FINGERPRINT: &str = "fp_mock0001";
/// Frames before the first token: the `role: assistant` chunk.
pub(crate) const PREAMBLE_FRAMES: usize = 1;

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    messages: Option<CountedTokens>,
    #[serde(default)]
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Parse `POST /v1/chat/completions`.
pub(crate) fn parse_chat(body: &[u8]) -> Result<ParsedRequest, ApiError> {
    let request: ChatRequest = parse_body(body)?;
    let model = request
        .model
        .ok_or_else(|| missing("model", "you must provide a model parameter"))?;
    let messages = request
        .messages
        .ok_or_else(|| missing("messages", "Missing required parameter: 'messages'."))?;
    if !messages.is_non_empty_array() {
        return Err(missing(
            "messages",
            "Invalid 'messages': expected a non-empty array of message objects.",
        ));
    }
    Ok(ParsedRequest {
        model: Some(model),
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        input_tokens: messages.tokens.max(1),
        embedding: None,
    })
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: Option<String>,
    input: Option<Value>,
    encoding_format: Option<String>,
    dimensions: Option<usize>,
}

/// Parse `POST /v1/embeddings` (`input`: a string, an array of strings or of token arrays).
pub(crate) fn parse_embeddings(body: &[u8]) -> Result<ParsedRequest, ApiError> {
    let request: EmbeddingsRequest = parse_body(body)?;
    let model = request
        .model
        .ok_or_else(|| missing("model", "you must provide a model parameter"))?;
    let input = request
        .input
        .ok_or_else(|| missing("input", "Missing required parameter: 'input'."))?;
    let (inputs, tokens) = match &input {
        Value::String(text) => (1, text::estimate_tokens(text)),
        Value::Array(items) if !items.is_empty() => (items.len(), input_array_tokens(items)),
        _ => {
            return Err(missing(
                "input",
                "'input' must be a non-empty string or array",
            ))
        }
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(missing(
                "encoding_format",
                &format!("'{other}' is not one of ['float', 'base64']"),
            ))
        }
    };
    let default_dimensions = if model.ends_with("-large") {
        3072
    } else {
        1536
    };
    let dimensions = request.dimensions.unwrap_or(default_dimensions);
    if dimensions == 0 || dimensions > 3072 || inputs > 2048 {
        return Err(missing(
            "dimensions",
            "dimensions must be 1..=3072 and at most 2048 inputs",
        ));
    }
    Ok(ParsedRequest {
        model: Some(model),
        input_tokens: tokens.max(1),
        embedding: Some(EmbeddingSpec {
            inputs,
            dimensions,
            base64,
        }),
        ..Default::default()
    })
}

fn input_array_tokens(items: &[Value]) -> u64 {
    items
        .iter()
        .map(|item| match item {
            Value::Array(tokens) => tokens.len() as u64,
            Value::Number(_) => 1,
            other => text::estimate_value_tokens(other),
        })
        .sum()
}

fn missing(field: &'static str, message: &str) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.to_string(),
    }
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    fn of(completion: &Completion) -> Self {
        let output = u64::from(completion.output_tokens);
        Usage {
            prompt_tokens: completion.input_tokens,
            completion_tokens: output,
            total_tokens: completion.input_tokens + output,
        }
    }
}

fn finish_reason(completion: &Completion) -> &'static str {
    if completion.hit_max_tokens {
        "length"
    } else {
        "stop"
    }
}

/// Body of a non-streaming `chat.completion`, written straight into one buffer: this is the hot path of
/// the throughput benchmark. Only the model needs escaping (ids are hex, generated words are plain).
pub(crate) fn chat_body(completion: &Completion) -> Bytes {
    let usage = Usage::of(completion);
    let mut out =
        Vec::with_capacity(384 + completion.model.len() + completion.output_tokens as usize * 9);
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(completion.id.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"chat.completion\",\"created\":");
    write_json(&mut out, &completion.created);
    out.extend_from_slice(b",\"model\":");
    write_json(&mut out, completion.model.as_str());
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"",
    );
    text::write_generated(&mut out, completion.text_start, completion.output_tokens);
    out.extend_from_slice(
        b"\",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"",
    );
    out.extend_from_slice(finish_reason(completion).as_bytes());
    out.extend_from_slice(b"\"}],\"usage\":");
    write_json(&mut out, &usage);
    out.extend_from_slice(b",\"service_tier\":\"default\",\"system_fingerprint\":\"");
    out.extend_from_slice(SYSTEM_FINGERPRINT.as_bytes());
    out.extend_from_slice(b"\"}");
    Bytes::from(out)
}

fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(out, value);
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    service_tier: &'static str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Option<()>>,
}

/// Frame `frame` of the SSE stream: role chunk, one chunk per token, finish chunk, usage chunk (when
/// `include_usage`), `data: [DONE]`; `None` after the last.
pub(crate) fn stream_frame(completion: &Completion, frame: usize) -> Option<Bytes> {
    let tokens = completion.output_tokens as usize;
    let usage_frames = usize::from(completion.include_usage);
    let chunk = |choices, usage| chunk(completion, choices, usage);
    let choice = |delta, finish_reason| {
        vec![ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }]
    };
    let value = match frame {
        0 => chunk(
            choice(
                Delta {
                    role: Some("assistant"),
                    content: Some(""),
                    refusal: Some(None),
                },
                None,
            ),
            None,
        ),
        f if f <= tokens => {
            let template = completion
                .token_template
                .get_or_init(|| TokenTemplate::from_marked(&token_frame(completion, TOKEN_MARKER)));
            return Some(template.render(text::token(completion.text_start, (f - 1) as u32)));
        }
        f if f == tokens + 1 => chunk(
            choice(Delta::default(), Some(finish_reason(completion))),
            None,
        ),
        f if f == tokens + 1 + usage_frames => chunk(Vec::new(), Some(Usage::of(completion))),
        f if f == tokens + 2 + usage_frames => {
            return Some(Bytes::from_static(b"data: [DONE]\n\n"))
        }
        _ => return None,
    };
    Some(sse_data(&to_json(&value)))
}

/// A content chunk carrying `token` (rendered for real only once per stream, as a template).
fn token_frame(completion: &Completion, token: &str) -> Bytes {
    let delta = Delta {
        content: Some(token),
        ..Default::default()
    };
    let choices = vec![ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: None,
    }];
    sse_data(&to_json(&chunk(completion, choices, None)))
}

fn chunk<'a>(
    completion: &'a Completion,
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<Usage>,
) -> Chunk<'a> {
    Chunk {
        id: &completion.id,
        object: "chat.completion.chunk",
        created: completion.created,
        model: &completion.model,
        service_tier: "default",
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices,
        usage: completion.include_usage.then_some(usage),
    }
}

fn sse_data(json: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(json.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(json);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// The error object OpenAI sends inside a stream before closing it.
pub(crate) fn stream_error_frame(message: Option<&str>) -> Bytes {
    let message = message
        .unwrap_or("The server had an error while processing your request. Sorry about that!");
    sse_data(&error_json(message, "server_error", None, None))
}

/// Body of `POST /v1/embeddings`: deterministic unit-ish vectors derived from `seed`.
pub(crate) fn embeddings_body(
    spec: &EmbeddingSpec,
    model: &str,
    input_tokens: u64,
    seed: u64,
) -> Bytes {
    let data: Vec<Value> = (0..spec.inputs)
        .map(|index| {
            let vector = embedding_vector(seed.wrapping_add(index as u64), spec.dimensions);
            let embedding = if spec.base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(vector)
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    to_json(&serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
    }))
}

fn embedding_vector(seed: u64, dimensions: usize) -> Vec<f32> {
    let mut state = seed | 1;
    (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

fn model_object(id: &str) -> Value {
    let owned_by = if id.starts_with("claude") {
        "anthropic"
    } else {
        "openai"
    };
    serde_json::json!({"id": id, "object": "model", "created": 1_686_935_002u64, "owned_by": owned_by})
}

/// Body of `GET /v1/models`.
pub(crate) fn models_body(models: &[String]) -> Bytes {
    let data: Vec<Value> = models.iter().map(|id| model_object(id)).collect();
    to_json(&serde_json::json!({"object": "list", "data": data}))
}

/// Body of `GET /v1/models/{id}`.
pub(crate) fn model_body(id: &str) -> Bytes {
    to_json(&model_object(id))
}

fn error_json(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
        .unwrap_or_default()
}

/// `{"error":{"message","type","param","code"}}` as OpenAI sends it.
pub(crate) fn error_body(error: &ApiError) -> Bytes {
    let body = match error {
        ApiError::InvalidBody(message) => error_json(message, "invalid_request_error", None, None),
        ApiError::InvalidField { field, message } => error_json(message, "invalid_request_error", Some(field), None),
        ApiError::InvalidKey | ApiError::RevokedKey => error_json(
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        ApiError::WrongProvider => error_json(
            "This API key is not valid for the OpenAI API.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        ApiError::ModelNotFound(model) => error_json(
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model"),
            Some("model_not_found"),
        ),
        ApiError::UnknownRoute(path) => {
            error_json(&format!("Invalid URL ({path})"), "invalid_request_error", None, None)
        }
        ApiError::RateLimited { kind, model, limit, used, requested, retry_after } => {
            let (unit, kind_name) = match kind {
                LimitKind::Requests => ("requests per min (RPM)", "requests"),
                LimitKind::Tokens => ("tokens per min (TPM)", "tokens"),
            };
            let message = format!(
                "Rate limit reached for {model} in organization org-mock on {unit}: Limit {limit}, Used {used}, \
                 Requested {requested}. Please try again in {}. Visit https://platform.openai.com/account/rate-limits \
                 to learn more.",
                go_duration(*retry_after)
            );
            error_json(&message, kind_name, None, Some("rate_limit_exceeded"))
        }
        ApiError::Quota => error_json(
            "You exceeded your current quota, please check your plan and billing details. For more information on \
             this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
        ),
        ApiError::Injected { status, message } => {
            let (kind, default_message) = injected_error(*status);
            error_json(message.as_deref().unwrap_or(default_message), kind, None, None)
        }
    };
    Bytes::from(body)
}

fn injected_error(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("invalid_request_error", "Incorrect API key provided."),
        403 => (
            "permission_error",
            "You are not allowed to access this resource.",
        ),
        404 => (
            "invalid_request_error",
            "The requested resource does not exist.",
        ),
        408 => ("timeout", "Request timed out."),
        409 => (
            "conflict",
            "The request conflicts with the current state of the resource.",
        ),
        413 => ("invalid_request_error", "Request too large."),
        429 => ("requests", "Rate limit reached. Please try again later."),
        502 => ("server_error", "Bad gateway."),
        503 | 529 => (
            "server_error",
            "The engine is currently overloaded, please try again later.",
        ),
        504 => ("server_error", "Gateway timeout."),
        _ => (
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        ),
    }
}

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` and `x-request-id` (names are constants, values
/// of unlimited keys static: this runs on every response).
pub(crate) fn limit_headers(status: &LimitStatus, request_id: &str, headers: &mut HeaderMap) {
    headers.append(LIMIT_REQUESTS, count(status.limit_requests));
    headers.append(LIMIT_TOKENS, count(status.limit_tokens));
    headers.append(REMAINING_REQUESTS, count(status.remaining_requests));
    headers.append(REMAINING_TOKENS, count(status.remaining_tokens));
    headers.append(RESET_REQUESTS, reset(status.reset_requests));
    headers.append(RESET_TOKENS, reset(status.reset_tokens));
    headers.append(REQUEST_ID, header_text(request_id));
    headers.append(ORGANIZATION, HeaderValue::from_static("org-mock"));
}

/// What an unlimited key's limiter reports (limits and remaining at the advertised maximum, nothing to reset).
const UNLIMITED: LimitStatus = LimitStatus {
    limit_requests: UNLIMITED_RPM,
    remaining_requests: UNLIMITED_RPM,
    reset_requests: Duration::ZERO,
    limit_tokens: UNLIMITED_TPM,
    remaining_tokens: UNLIMITED_TPM,
    reset_tokens: Duration::ZERO,
};

/// All headers of a JSON response to an unlimited key (the throughput benchmark's case), or `None` for
/// any other key: cloning a map built once beats hashing ten header names per response.
pub(crate) fn unlimited_json_headers(
    status: &LimitStatus,
    length: u64,
    request_id: &str,
) -> Option<HeaderMap> {
    static TEMPLATE: OnceLock<HeaderMap> = OnceLock::new();
    if *status != UNLIMITED {
        return None;
    }
    let mut headers = TEMPLATE
        .get_or_init(|| {
            let mut headers = HeaderMap::with_capacity(10);
            headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.append(CONTENT_LENGTH, HeaderValue::from_static("0"));
            limit_headers(&UNLIMITED, "", &mut headers);
            headers
        })
        .clone();
    headers.insert(CONTENT_LENGTH, length.into());
    headers.insert(REQUEST_ID, header_text(request_id));
    Some(headers)
}

/// A count header; the unlimited defaults are static (no allocation on the hot path).
fn count(value: u64) -> HeaderValue {
    match value {
        UNLIMITED_RPM => HeaderValue::from_static("1000000"),
        UNLIMITED_TPM => HeaderValue::from_static("1000000000"),
        other => other.into(),
    }
}

fn reset(wait: Duration) -> HeaderValue {
    if wait.is_zero() {
        HeaderValue::from_static("0s")
    } else {
        header_text(&go_duration(wait))
    }
}

fn header_text(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// OpenAI's duration format (Go's `time.Duration` string, millisecond precision): `0s`, `12ms`, `1s`,
/// `8.64s`, `6m0s`, `1h2m3.5s`.
pub fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}", rest / 1000)
    } else {
        format!("{}.{:03}", rest / 1000, rest % 1000)
            .trim_end_matches('0')
            .to_string()
    };
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(output_tokens: u32, include_usage: bool) -> Completion {
        Completion {
            id: "chatcmpl-1".into(),
            model: "gpt-4".into(),
            created: 1,
            input_tokens: 7,
            output_tokens,
            text_start: 0,
            hit_max_tokens: true,
            include_usage,
            token_template: Default::default(),
        }
    }

    #[test]
    fn unlimited_template_equals_headers_built_one_by_one() {
        let built = |status: &LimitStatus| {
            let mut headers = HeaderMap::new();
            headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.append(CONTENT_LENGTH, 476.into());
            limit_headers(status, "req_1", &mut headers);
            headers
        };
        assert_eq!(
            unlimited_json_headers(&UNLIMITED, 476, "req_1"),
            Some(built(&UNLIMITED))
        );
        let limited = LimitStatus {
            limit_requests: 60,
            ..UNLIMITED
        };
        assert_eq!(unlimited_json_headers(&limited, 476, "req_1"), None);
    }

    #[test]
    fn go_duration_table() {
        let cases = [
            (0, "0s"),
            (12, "12ms"),
            (999, "999ms"),
            (1_000, "1s"),
            (8_640, "8.64s"),
            (59_999, "59.999s"),
            (360_000, "6m0s"),
            (90_500, "1m30.5s"),
            (3_723_500, "1h2m3.5s"),
        ];
        for (millis, expected) in cases {
            assert_eq!(go_duration(Duration::from_millis(millis)), expected);
        }
    }

    #[test]
    fn chat_body_is_the_sdk_shape_exactly() {
        let mut completion = completion(3, false);
        completion.model = "odd \"model\"".into();
        let body: Value = serde_json::from_slice(&chat_body(&completion)).unwrap();
        let expected = serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "odd \"model\"",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text::generate(0, 3), "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "length",
            }],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn chat_body_has_the_sdk_fields() {
        let body: Value = serde_json::from_slice(&chat_body(&completion(3, false))).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            3
        );
        assert_eq!(body["choices"][0]["finish_reason"], "length");
        assert_eq!(body["usage"]["total_tokens"], 10);
    }

    #[test]
    fn templated_token_frames_equal_serialized_ones() {
        for include_usage in [false, true] {
            let completion = completion(40, include_usage);
            for frame in 1..=40 {
                let token = text::token(completion.text_start, frame as u32 - 1);
                assert_eq!(
                    stream_frame(&completion, frame).unwrap(),
                    token_frame(&completion, token)
                );
            }
        }
    }

    #[test]
    fn stream_frames_in_order() {
        let frames: Vec<Bytes> = (0..)
            .map_while(|f| stream_frame(&completion(2, true), f))
            .collect();
        assert_eq!(frames.len(), 6);
        let json = |frame: &Bytes| -> Value {
            serde_json::from_slice(&frame[6..frame.len() - 2]).unwrap()
        };
        assert_eq!(json(&frames[0])["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(json(&frames[1])["usage"], Value::Null);
        assert_eq!(json(&frames[3])["choices"][0]["finish_reason"], "length");
        assert_eq!(json(&frames[4])["usage"]["completion_tokens"], 2);
        assert_eq!(json(&frames[4])["choices"].as_array().unwrap().len(), 0);
        assert_eq!(&frames[5][..], b"data: [DONE]\n\n");
        let without_usage: Vec<Bytes> = (0..)
            .map_while(|f| stream_frame(&completion(2, false), f))
            .collect();
        assert_eq!(without_usage.len(), 5);
        assert!(json(&without_usage[1]).get("usage").is_none());
    }

    #[test]
    fn parse_errors_name_the_field() {
        let cases: [(&[u8], &str); 5] = [
            (b"{", "could not parse"),
            (b"{\"model\":\"gpt-4\"}", "messages"),
            (
                b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                "model",
            ),
            (b"{\"model\":\"gpt-4\",\"messages\":[]}", "messages"),
            (
                b"{\"model\":\"gpt-4\",\"messages\":[{}],\"max_tokens\":\"x\"}",
                "max_tokens",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_chat(body).unwrap_err();
            let text = String::from_utf8(error_body(&err).to_vec()).unwrap();
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn rate_limit_body_is_exact() {
        let error = ApiError::RateLimited {
            kind: LimitKind::Tokens,
            model: "gpt-4".into(),
            limit: 100,
            used: 90,
            requested: 20,
            retry_after: Duration::from_millis(1200),
        };
        let body: Value = serde_json::from_slice(&error_body(&error)).unwrap();
        assert_eq!(body["error"]["type"], "tokens");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["param"], Value::Null);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Rate limit reached for gpt-4 "),
            "{message}"
        );
        assert!(message.contains("Please try again in 1.2s."), "{message}");
    }
}
