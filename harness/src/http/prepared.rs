//! Scenario requests turned into ready-to-send parts (URI, method, headers, serialized body variants).

use crate::scenario::RequestSpec;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// The target URL is not usable.
#[derive(Debug, thiserror::Error)]
#[error("invalid target URL {url:?}: {reason}")]
pub struct TargetError {
    /// The URL as given.
    pub url: String,
    /// Why it was rejected.
    pub reason: String,
}

/// One request of the mix, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// Name in the results.
    pub name: String,
    /// Method.
    pub method: Method,
    /// Full URI (target + path).
    pub uri: Uri,
    /// Headers sent with every instance.
    pub headers: HeaderMap,
    /// Body variants (one picked per send); empty = no body.
    pub bodies: Vec<Bytes>,
    /// Scan the response as SSE.
    pub stream: bool,
    /// Statuses that count as success.
    pub expect: Vec<u16>,
    /// A header required for success.
    pub expect_header: Option<HeaderName>,
}

impl PreparedRequest {
    /// Prepares `spec` against `target` (e.g. `http://127.0.0.1:8000`). The scenario is already validated, so
    /// only the combination with the target can fail.
    pub fn new(spec: &RequestSpec, target: &str) -> Result<PreparedRequest, TargetError> {
        let err = |reason: String| TargetError {
            url: target.to_string(),
            reason,
        };
        let base = target.trim_end_matches('/');
        let uri: Uri = format!("{base}{}", spec.path)
            .parse()
            .map_err(|e| err(format!("{e}")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(err(
                "must be http://host[:port] (TLS is not supported on the hot path)".into(),
            ));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| err(e.to_string()))?;
            headers.insert(
                name,
                HeaderValue::from_str(v).map_err(|e| err(e.to_string()))?,
            );
        }
        if !spec.body_variants.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if spec.stream && !headers.contains_key(http::header::ACCEPT) {
            headers.insert(
                http::header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        }
        Ok(PreparedRequest {
            name: spec.name.clone(),
            method: Method::from_bytes(spec.method.as_bytes()).map_err(|e| err(e.to_string()))?,
            uri,
            headers,
            bodies: spec.body_variants.iter().map(|b| b.json.clone()).collect(),
            stream: spec.stream,
            expect: spec.expect.clone(),
            expect_header: spec
                .expect_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        })
    }

    /// Builds one instance with body variant `variant` (ignored when there is no body).
    pub fn build(&self, variant: usize) -> http::Request<http_body_util::Full<Bytes>> {
        let body = self
            .bodies
            .get(variant % self.bodies.len().max(1))
            .cloned()
            .unwrap_or_default();
        let mut req = http::Request::new(http_body_util::Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}
