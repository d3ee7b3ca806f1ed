//! Provider wire formats, kept apart from fault logic: request parsing, response bodies, SSE frames, error
//! bodies and rate-limit headers for OpenAI ([`openai`]) and Anthropic ([`anthropic`]). Everything here is a
//! pure function from data to bytes/headers.

pub(crate) mod anthropic;
pub(crate) mod openai;

use crate::faults::LimitKind;
use crate::limiter::LimitStatus;
use crate::route::Provider;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::time::Duration;

/// A request problem or an injected error, rendered in the provider's own error shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// Body is not JSON or has the wrong structure (400).
    InvalidBody(String),
    /// A required field is missing or has the wrong type (400).
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// No key in the request, or one the mock does not know (401).
    InvalidKey,
    /// The key exists but was revoked (401).
    RevokedKey,
    /// The key is bound to the other provider (401).
    WrongProvider,
    /// Unknown model (404).
    ModelNotFound(String),
    /// Unknown path (404).
    UnknownRoute(String),
    /// Rate limit (429) with the provider's message and a retry hint.
    RateLimited {
        kind: LimitKind,
        model: String,
        limit: u64,
        used: u64,
        requested: u64,
        retry_after: Duration,
    },
    /// Out of credit: OpenAI 429 `insufficient_quota`; Anthropic 400 credit balance too low.
    Quota,
    /// An injected error of any status, with an optional message override.
    Injected {
        status: u16,
        message: Option<String>,
    },
}

impl ApiError {
    /// HTTP status for `provider`.
    pub(crate) fn status(&self, provider: Provider) -> StatusCode {
        let code = match self {
            ApiError::InvalidBody(_) | ApiError::InvalidField { .. } => 400,
            ApiError::InvalidKey | ApiError::RevokedKey | ApiError::WrongProvider => 401,
            ApiError::ModelNotFound(_) | ApiError::UnknownRoute(_) => 404,
            ApiError::RateLimited { .. } => 429,
            ApiError::Quota if provider == Provider::Anthropic => 400,
            ApiError::Quota => 429,
            ApiError::Injected { status, .. } => *status,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Body in `provider`'s error shape.
    pub(crate) fn body(&self, provider: Provider, request_id: &str) -> Bytes {
        match provider {
            Provider::OpenAi => openai::error_body(self),
            Provider::Anthropic => anthropic::error_body(self, request_id),
        }
    }
}

/// A generated completion: everything needed to render it whole or as a stream.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u32,
    /// Word offset of the generated text (seeded).
    pub(crate) text_start: u64,
    /// True when generation stopped at `max_tokens`.
    pub(crate) hit_max_tokens: bool,
    /// OpenAI `stream_options.include_usage`.
    pub(crate) include_usage: bool,
    /// Token-frame template, rendered on the stream's first token frame.
    pub(crate) token_template: std::sync::OnceLock<TokenTemplate>,
}

/// Stands in for the token while a stream's token-frame template is rendered.
pub(crate) const TOKEN_MARKER: &str = "@@mock-token@@";

/// The bytes before and after the token in every token frame of one stream. Token frames differ only by
/// the word (and generated words need no JSON escaping), so each stream serializes one frame, not one per token.
#[derive(Debug, Clone)]
pub(crate) struct TokenTemplate {
    prefix: Bytes,
    suffix: Bytes,
}

impl TokenTemplate {
    /// Split a frame rendered with [`TOKEN_MARKER`] as its token (the last occurrence is the token's place).
    pub(crate) fn from_marked(frame: &[u8]) -> Self {
        let marker = TOKEN_MARKER.as_bytes();
        let at = frame
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap_or(frame.len());
        let end = (at + marker.len()).min(frame.len());
        TokenTemplate {
            prefix: Bytes::copy_from_slice(&frame[..at]),
            suffix: Bytes::copy_from_slice(&frame[end..]),
        }
    }

    /// The frame for `token`.
    pub(crate) fn render(&self, token: &str) -> Bytes {
        let mut frame = Vec::with_capacity(self.prefix.len() + token.len() + self.suffix.len());
        frame.extend_from_slice(&self.prefix);
        frame.extend_from_slice(token.as_bytes());
        frame.extend_from_slice(&self.suffix);
        Bytes::from(frame)
    }
}

/// A parsed provider request: the facts the mock needs, whatever the endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ParsedRequest {
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) input_tokens: u64,
    pub(crate) embedding: Option<EmbeddingSpec>,
}

/// What an embeddings request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmbeddingSpec {
    pub(crate) inputs: usize,
    pub(crate) dimensions: usize,
    pub(crate) base64: bool,
}

/// SSE frames of a completion for one provider: preamble, one frame per token, epilogue.
pub(crate) fn stream_frame(
    provider: Provider,
    completion: &Completion,
    frame: usize,
) -> Option<Bytes> {
    match provider {
        Provider::OpenAi => openai::stream_frame(completion, frame),
        Provider::Anthropic => anthropic::stream_frame(completion, frame),
    }
}

/// Number of frames before the first token frame.
pub(crate) fn preamble_frames(provider: Provider) -> usize {
    match provider {
        Provider::OpenAi => openai::PREAMBLE_FRAMES,
        Provider::Anthropic => anthropic::PREAMBLE_FRAMES,
    }
}

/// The provider's in-stream error event.
pub(crate) fn stream_error_frame(
    provider: Provider,
    message: Option<&str>,
    request_id: &str,
) -> Bytes {
    match provider {
        Provider::OpenAi => openai::stream_error_frame(message),
        Provider::Anthropic => anthropic::stream_error_frame(message, request_id),
    }
}

/// A frame whose `data:` line is not valid JSON.
pub(crate) fn malformed_frame(provider: Provider) -> Bytes {
    match provider {
        Provider::OpenAi => Bytes::from_static(
            b"data: {\"id\":\"chatcmpl-broken\",\"choices\":[{\"delta\":{\"content\n\n",
        ),
        Provider::Anthropic => Bytes::from_static(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":\n\n",
        ),
    }
}

/// Rate-limit and request-id headers in the provider's format.
pub(crate) fn limit_headers(
    provider: Provider,
    status: &LimitStatus,
    request_id: &str,
    headers: &mut HeaderMap,
) {
    match provider {
        Provider::OpenAi => openai::limit_headers(status, request_id, headers),
        Provider::Anthropic => anthropic::limit_headers(status, request_id, headers),
    }
}

/// `retry-after` (whole seconds, rounded up) and `retry-after-ms`, as both providers send them.
pub(crate) fn retry_headers(wait: Duration, headers: &mut HeaderMap) {
    let seconds = wait.as_millis().div_ceil(1000) as u64;
    headers.insert(http::header::RETRY_AFTER, seconds.into());
    headers.insert(
        http::HeaderName::from_static("retry-after-ms"),
        (wait.as_millis() as u64).into(),
    );
}

/// Serialize a response body (these structs cannot fail to serialize).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Bytes {
    let mut out = Vec::with_capacity(512);
    let _ = serde_json::to_writer(&mut out, value);
    Bytes::from(out)
}

/// Parse a JSON body into `T`, mapping serde errors to a 400 naming the problem.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::InvalidBody(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    // Fast path without path tracking; re-parse with it only to explain an error.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match path.as_str() {
            "." | "?" => ApiError::InvalidBody(format!("could not parse the JSON body: {inner}")),
            _ => ApiError::InvalidBody(format!("invalid field `{path}`: {inner}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let cases = [
            (1, "1", "1"),
            (1_000, "1", "1000"),
            (1_200, "2", "1200"),
            (0, "0", "0"),
        ];
        for (millis, seconds, ms) in cases {
            let mut headers = HeaderMap::new();
            retry_headers(Duration::from_millis(millis), &mut headers);
            assert_eq!(headers["retry-after"], seconds);
            assert_eq!(headers["retry-after-ms"], ms);
        }
    }

    #[test]
    fn statuses_per_provider() {
        assert_eq!(ApiError::Quota.status(Provider::OpenAi), 429);
        assert_eq!(ApiError::Quota.status(Provider::Anthropic), 400);
        assert_eq!(
            ApiError::Injected {
                status: 529,
                message: None
            }
            .status(Provider::Anthropic),
            529
        );
        assert_eq!(ApiError::RevokedKey.status(Provider::OpenAi), 401);
    }
}
