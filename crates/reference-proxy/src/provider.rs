//! Which provider a request speaks, and everything that differs between them: how a pool key is presented
//! upstream and what an error body looks like. Kept in one place so the forwarder and the error type never
//! branch on provider details themselves.

use http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The API dialect of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI-shaped: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, ...; key in `Authorization: Bearer`.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic-shaped: `/v1/messages`; key in `x-api-key`.
    Anthropic,
}

impl Provider {
    /// The dialect of a request path: Anthropic's `/v1/messages` (and its sub-routes such as
    /// `/v1/messages/count_tokens`) and the legacy `/v1/complete`; everything else is OpenAI-shaped.
    pub fn for_path(path: &str) -> Provider {
        let anthropic =
            path == "/v1/messages" || path.starts_with("/v1/messages/") || path == "/v1/complete";
        if anthropic {
            Provider::Anthropic
        } else {
            Provider::OpenAi
        }
    }

    /// Lower-case name as used in config files and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// The header that carries an API key for this provider.
    pub fn credential_header(self) -> HeaderName {
        match self {
            Provider::OpenAi => http::header::AUTHORIZATION,
            Provider::Anthropic => HeaderName::from_static("x-api-key"),
        }
    }

    /// The header value presenting `secret` for this provider, marked sensitive so it is never printed.
    pub fn credential_value(
        self,
        secret: &str,
    ) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
        let mut value = match self {
            Provider::OpenAi => HeaderValue::try_from(format!("Bearer {secret}"))?,
            Provider::Anthropic => HeaderValue::try_from(secret)?,
        };
        value.set_sensitive(true);
        Ok(value)
    }

    /// An error body in this provider's documented shape.
    pub fn error_body(self, status: StatusCode, message: &str) -> Value {
        match self {
            Provider::OpenAi => json!({
                "error": {
                    "message": message,
                    "type": openai_error_type(status),
                    "param": null,
                    "code": openai_error_code(status),
                }
            }),
            Provider::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_error_type(status), "message": message }
            }),
        }
    }
}

fn openai_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

fn openai_error_code(status: StatusCode) -> Value {
    match status.as_u16() {
        401 => json!("invalid_api_key"),
        429 => json!("rate_limit_exceeded"),
        _ => Value::Null,
    }
}

fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_providers() {
        let cases = [
            ("/v1/chat/completions", Provider::OpenAi),
            ("/v1/embeddings", Provider::OpenAi),
            ("/v1/models", Provider::OpenAi),
            ("/v1/messages", Provider::Anthropic),
            ("/v1/messages/count_tokens", Provider::Anthropic),
            ("/v1/messagesx", Provider::OpenAi),
            ("/v1/complete", Provider::Anthropic),
        ];
        for (path, want) in cases {
            assert_eq!(Provider::for_path(path), want, "{path}");
        }
    }

    #[test]
    fn credentials_use_each_providers_header() {
        let v = Provider::OpenAi.credential_value("sk-1").unwrap();
        assert_eq!(v, "Bearer sk-1");
        assert!(v.is_sensitive());
        assert_eq!(Provider::OpenAi.credential_header(), "authorization");
        assert_eq!(
            Provider::Anthropic.credential_value("sk-2").unwrap(),
            "sk-2"
        );
        assert_eq!(Provider::Anthropic.credential_header(), "x-api-key");
    }

    #[test]
    fn error_bodies_follow_each_shape() {
        let openai = Provider::OpenAi.error_body(StatusCode::TOO_MANY_REQUESTS, "slow down");
        assert_eq!(openai["error"]["type"], "rate_limit_error");
        assert_eq!(openai["error"]["message"], "slow down");
        let anthropic = Provider::Anthropic.error_body(StatusCode::TOO_MANY_REQUESTS, "slow down");
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "rate_limit_error");
        let overloaded = Provider::Anthropic.error_body(StatusCode::from_u16(529).unwrap(), "x");
        assert_eq!(overloaded["error"]["type"], "overloaded_error");
    }
}
