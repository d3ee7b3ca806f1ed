//! Anthropic wire format: `POST /v1/messages` (plain `message` and the SSE event sequence message_start,
//! content_block_start, ping, content_block_delta…, content_block_stop, message_delta, message_stop),
//! `{"type":"error",...}` bodies and `anthropic-ratelimit-*` headers with RFC 3339 resets.

use super::{
    parse_body, to_json, ApiError, Completion, ParsedRequest, TokenTemplate, TOKEN_MARKER,
};
use crate::limiter::LimitStatus;
use crate::text::{self, CountedTokens};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::SystemTime;

/// Frames before the first token: message_start, content_block_start, ping.
pub(crate) const PREAMBLE_FRAMES: usize = 3;

#[derive(Deserialize)]
struct MessagesRequest {
    model: Option<String>,
    messages: Option<CountedTokens>,
    max_tokens: Option<u32>,
    system: Option<CountedTokens>,
    stream: Option<bool>,
}

/// Parse `POST /v1/messages` (`model`, `messages` and `max_tokens` are required, as in the real API).
pub(crate) fn parse_messages(body: &[u8]) -> Result<ParsedRequest, ApiError> {
    let request: MessagesRequest = parse_body(body)?;
    let model = request
        .model
        .ok_or_else(|| field("model", "model: Field required"))?;
    let messages = request
        .messages
        .ok_or_else(|| field("messages", "messages: Field required"))?;
    let max_tokens = request
        .max_tokens
        .ok_or_else(|| field("max_tokens", "max_tokens: Field required"))?;
    if !messages.is_non_empty_array() {
        return Err(field(
            "messages",
            "messages: at least one message is required",
        ));
    }
    let system_tokens = request.system.map_or(0, |system| system.tokens);
    Ok(ParsedRequest {
        model: Some(model),
        stream: request.stream.unwrap_or(false),
        include_usage: false,
        max_tokens: Some(max_tokens),
        input_tokens: (messages.tokens + system_tokens).max(1),
        embedding: None,
    })
}

fn field(field: &'static str, message: &str) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.to_string(),
    }
}

fn stop_reason(completion: &Completion) -> &'static str {
    if completion.hit_max_tokens {
        "max_tokens"
    } else {
        "end_turn"
    }
}

fn usage(completion: &Completion, output_tokens: u32) -> Value {
    json!({
        "input_tokens": completion.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

/// Body of a non-streaming `message`.
pub(crate) fn message_body(completion: &Completion) -> Bytes {
    let content = text::generate(completion.text_start, completion.output_tokens);
    to_json(&json!({
        "id": completion.id,
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": [{"type": "text", "text": content}],
        "stop_reason": stop_reason(completion),
        "stop_sequence": null,
        "usage": usage(completion, completion.output_tokens),
    }))
}

/// Frame `frame` of the event stream; `None` after message_stop.
pub(crate) fn stream_frame(completion: &Completion, frame: usize) -> Option<Bytes> {
    let tokens = completion.output_tokens as usize;
    let (event, data) = match frame {
        0 => ("message_start", message_start(completion)),
        1 => (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        2 => ("ping", json!({"type": "ping"})),
        f if f < PREAMBLE_FRAMES + tokens => {
            let template = completion
                .token_template
                .get_or_init(|| TokenTemplate::from_marked(&token_frame(TOKEN_MARKER)));
            return Some(template.render(text::token(
                completion.text_start,
                (f - PREAMBLE_FRAMES) as u32,
            )));
        }
        f if f == PREAMBLE_FRAMES + tokens => (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        f if f == PREAMBLE_FRAMES + tokens + 1 => (
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(completion), "stop_sequence": null},
                "usage": {"output_tokens": completion.output_tokens},
            }),
        ),
        f if f == PREAMBLE_FRAMES + tokens + 2 => ("message_stop", json!({"type": "message_stop"})),
        _ => return None,
    };
    Some(event_frame(event, &data))
}

/// A `content_block_delta` carrying `token` (rendered for real only once per stream, as a template).
fn token_frame(token: &str) -> Bytes {
    let data = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}});
    event_frame("content_block_delta", &data)
}

fn message_start(completion: &Completion) -> Value {
    json!({
        "type": "message_start",
        "message": {
            "id": completion.id,
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(completion, 1),
        },
    })
}

fn event_frame(event: &str, data: &Value) -> Bytes {
    let json = to_json(data);
    let mut frame = Vec::with_capacity(json.len() + event.len() + 16);
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(event.as_bytes());
    frame.extend_from_slice(b"\ndata: ");
    frame.extend_from_slice(&json);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// The `error` event Anthropic sends mid-stream (e.g. when overloaded).
pub(crate) fn stream_error_frame(message: Option<&str>, request_id: &str) -> Bytes {
    let error = ApiError::Injected {
        status: 529,
        message: message.map(str::to_string),
    };
    let body: Value =
        serde_json::from_slice(&error_body(&error, request_id)).unwrap_or(Value::Null);
    event_frame("error", &body)
}

/// `{"type":"error","error":{"type","message"},"request_id"}` as Anthropic sends it.
pub(crate) fn error_body(error: &ApiError, request_id: &str) -> Bytes {
    let (kind, message) = match error {
        ApiError::InvalidBody(message) => ("invalid_request_error", message.clone()),
        ApiError::InvalidField { message, .. } => ("invalid_request_error", message.clone()),
        ApiError::InvalidKey | ApiError::RevokedKey => ("authentication_error", "invalid x-api-key".to_string()),
        ApiError::WrongProvider => ("authentication_error", "This API key is not valid for the Anthropic API.".into()),
        ApiError::ModelNotFound(model) => ("not_found_error", format!("model: {model}")),
        ApiError::UnknownRoute(path) => ("not_found_error", format!("Not found: {path}")),
        ApiError::RateLimited { kind, retry_after, .. } => (
            "rate_limit_error",
            format!(
                "This request would exceed the rate limit for your organization of {} per minute. Please try again in {:.1}s.",
                match kind {
                    crate::faults::LimitKind::Requests => "requests",
                    crate::faults::LimitKind::Tokens => "input tokens",
                },
                retry_after.as_secs_f64()
            ),
        ),
        ApiError::Quota => (
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or \
             purchase credits."
                .into(),
        ),
        ApiError::Injected { status, message } => {
            let (kind, default_message) = injected_error(*status);
            (kind, message.clone().unwrap_or_else(|| default_message.to_string()))
        }
    };
    to_json(
        &json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}),
    )
}

fn injected_error(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Billing error."),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        408 | 504 => ("timeout_error", "Request timed out."),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit.",
        ),
        503 | 529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    }
}

/// `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` (RFC 3339) and `request-id`.
pub(crate) fn limit_headers(status: &LimitStatus, request_id: &str, headers: &mut HeaderMap) {
    let now = SystemTime::now();
    let pairs: [(&'static str, HeaderValue); 6] = [
        (
            "anthropic-ratelimit-requests-limit",
            status.limit_requests.into(),
        ),
        (
            "anthropic-ratelimit-requests-remaining",
            status.remaining_requests.into(),
        ),
        (
            "anthropic-ratelimit-requests-reset",
            rfc3339(now + status.reset_requests),
        ),
        (
            "anthropic-ratelimit-tokens-limit",
            status.limit_tokens.into(),
        ),
        (
            "anthropic-ratelimit-tokens-remaining",
            status.remaining_tokens.into(),
        ),
        (
            "anthropic-ratelimit-tokens-reset",
            rfc3339(now + status.reset_tokens),
        ),
    ];
    for (name, value) in pairs {
        headers.insert(HeaderName::from_static(name), value);
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("request-id"), value);
    }
}

/// RFC 3339 UTC timestamp rounded up to the next whole second (a client never retries early by rounding).
pub fn rfc3339(at: SystemTime) -> HeaderValue {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
    let stamp = time::OffsetDateTime::from_unix_timestamp(seconds as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    HeaderValue::from_str(&stamp)
        .unwrap_or_else(|_| HeaderValue::from_static("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn completion(output_tokens: u32) -> Completion {
        Completion {
            id: "msg_1".into(),
            model: "claude-3-5-sonnet-20241022".into(),
            created: 0,
            input_tokens: 5,
            output_tokens,
            text_start: 3,
            hit_max_tokens: false,
            include_usage: false,
            token_template: Default::default(),
        }
    }

    #[test]
    fn event_sequence_is_the_real_one() {
        let frames: Vec<Bytes> = (0..)
            .map_while(|f| stream_frame(&completion(2), f))
            .collect();
        let events: Vec<String> = frames
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .lines()
                    .next()
                    .unwrap()
                    .trim_start_matches("event: ")
                    .to_string()
            })
            .collect();
        let expected = [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ];
        assert_eq!(events, expected);
        let delta = String::from_utf8_lossy(&frames[6]).to_string();
        assert!(
            delta.contains("\"end_turn\"") && delta.contains("\"output_tokens\":2"),
            "{delta}"
        );
    }

    #[test]
    fn templated_token_frames_equal_serialized_ones() {
        let completion = completion(40);
        for index in 0..40 {
            let token = text::token(completion.text_start, index);
            let frame = stream_frame(&completion, PREAMBLE_FRAMES + index as usize).unwrap();
            assert_eq!(frame, token_frame(token));
        }
    }

    #[test]
    fn message_body_and_errors_have_the_sdk_shape() {
        let body: Value = serde_json::from_slice(&message_body(&completion(4))).unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(
            body["content"][0]["text"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            4
        );
        assert_eq!(body["usage"]["output_tokens"], 4);
        let cases = [
            (ApiError::InvalidKey, "authentication_error"),
            (ApiError::ModelNotFound("x".into()), "not_found_error"),
            (
                ApiError::Injected {
                    status: 529,
                    message: None,
                },
                "overloaded_error",
            ),
            (
                ApiError::Injected {
                    status: 500,
                    message: None,
                },
                "api_error",
            ),
        ];
        for (error, kind) in cases {
            let body: Value = serde_json::from_slice(&error_body(&error, "req_1")).unwrap();
            assert_eq!(
                (body["type"].as_str(), body["error"]["type"].as_str()),
                (Some("error"), Some(kind))
            );
            assert_eq!(body["request_id"], "req_1");
        }
    }

    #[test]
    fn rfc3339_rounds_up() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(rfc3339(at), "1970-01-01T00:00:02Z");
    }
}
