//! The one error type that becomes an HTTP response. Proxy-made errors are shaped like the provider's own
//! (OpenAI's `{"error":{...}}` or Anthropic's `{"type":"error",...}`) so client SDKs handle them natively.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderValue, StatusCode};

use crate::provider::Provider;

/// Name of the response header that says which pool key served a request.
pub const KEY_USED_HEADER: &str = "x-key-used";

/// Everything the proxy itself can answer with instead of an upstream response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Client auth is on and the request's token is missing or wrong.
    #[error("missing or invalid proxy token: send it as `Authorization: Bearer <token>` or `x-api-key: <token>`")]
    ClientUnauthorized,
    /// The request body is larger than `--max-body-bytes`.
    #[error("request body exceeds the proxy's limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BodyUnreadable(String),
    /// The request target cannot be appended to the upstream base URL.
    #[error("bad request target: {0}")]
    BadRequestTarget(String),
    /// Every key able to serve the route is cooling down.
    #[error("all API keys are rate limited; retry after {}", human_duration::format(*.retry_after))]
    AllKeysResting {
        /// Time until the first key recovers.
        retry_after: Duration,
    },
    /// No key can serve the route (none configured for this provider, or all disabled).
    #[error("no usable API key for this route: the pool has none for this provider, or all were rejected upstream")]
    NoUsableKey,
    /// The upstream could not be reached or broke the connection on the last attempt.
    #[error("upstream unreachable or connection broken (last key tried: {key})")]
    UpstreamUnreachable {
        /// Key of the last attempt.
        key: Arc<str>,
    },
    /// The upstream did not answer in time on the last attempt.
    #[error("upstream did not answer in time (last key tried: {key})")]
    UpstreamTimeout {
        /// Key of the last attempt.
        key: Arc<str>,
    },
    /// Admin API used from a non-loopback peer without `--admin-allow-remote`.
    #[error("the admin API only accepts loopback clients (start the proxy with --admin-allow-remote and --admin-token)")]
    AdminForbidden,
    /// Admin token missing or wrong.
    #[error("missing or invalid admin token: send `Authorization: Bearer <admin token>`")]
    AdminUnauthorized,
    /// Malformed admin request.
    #[error("bad admin request: {0}")]
    AdminBadRequest(String),
    /// Admin request names a key that is not in the pool.
    #[error("no key with id `{0}` in the pool")]
    KeyNotFound(String),
    /// Admin request adds a key id that already exists.
    #[error("key id `{0}` is already in the pool")]
    DuplicateKey(String),
}

impl ProxyError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::ClientUnauthorized | ProxyError::AdminUnauthorized => {
                StatusCode::UNAUTHORIZED
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyUnreadable(_)
            | ProxyError::BadRequestTarget(_)
            | ProxyError::AdminBadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::AllKeysResting { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::NoUsableKey => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamUnreachable { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::AdminForbidden => StatusCode::FORBIDDEN,
            ProxyError::KeyNotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::DuplicateKey(_) => StatusCode::CONFLICT,
        }
    }

    /// Shapes this error for a client of `provider`.
    pub fn for_provider(self, provider: Provider) -> ApiError {
        ApiError {
            provider,
            error: self,
        }
    }
}

/// A [`ProxyError`] together with the provider whose error shape the response uses.
#[derive(Debug)]
pub struct ApiError {
    /// Whose shape.
    pub provider: Provider,
    /// What went wrong.
    pub error: ProxyError,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let body = self.provider.error_body(status, &self.error.to_string());
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self.error {
            ProxyError::AllKeysResting { retry_after } => {
                // Whole seconds, rounded up so a client never comes back too early; ms for precise clients.
                let secs = retry_after.as_millis().div_ceil(1000).max(1);
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs as u64));
                headers.insert(
                    "retry-after-ms",
                    HeaderValue::from(retry_after.as_millis() as u64),
                );
            }
            ProxyError::UpstreamUnreachable { key } | ProxyError::UpstreamTimeout { key } => {
                if let Ok(value) = HeaderValue::from_str(key) {
                    headers.insert(KEY_USED_HEADER, value);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_resting_carries_retry_after_rounded_up() {
        let cases = [
            (300, "1", "300"),
            (1000, "1", "1000"),
            (1001, "2", "1001"),
            (0, "1", "0"),
        ];
        for (ms, secs, precise) in cases {
            let error = ProxyError::AllKeysResting {
                retry_after: Duration::from_millis(ms),
            };
            let response = error.for_provider(Provider::OpenAi).into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()["retry-after"], secs, "{ms}");
            assert_eq!(response.headers()["retry-after-ms"], precise, "{ms}");
        }
    }

    #[test]
    fn statuses_for_client_mistakes_are_4xx() {
        let cases = [
            (ProxyError::ClientUnauthorized, 401),
            (ProxyError::BodyTooLarge { limit: 1 }, 413),
            (ProxyError::BodyUnreadable("x".into()), 400),
            (ProxyError::AdminBadRequest("x".into()), 400),
            (ProxyError::AdminForbidden, 403),
            (ProxyError::KeyNotFound("k".into()), 404),
            (ProxyError::DuplicateKey("k".into()), 409),
            (ProxyError::NoUsableKey, 503),
            (ProxyError::UpstreamTimeout { key: "k".into() }, 504),
        ];
        for (error, code) in cases {
            assert_eq!(error.status().as_u16(), code, "{error:?}");
        }
    }
}
