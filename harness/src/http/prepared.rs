//! Scenario requests turned into ready-to-send parts (URI, method, headers, serialized body variants).

use crate::scenario::RequestSpec;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// The connection address (`host:port`, port 80 by default) and the wire head of a request to `uri`: origin-form
/// URI (what HTTP/1.1 sends to an origin server) and the headers plus `Host`.
fn wire_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(String, http::request::Parts), String> {
    let authority = uri.authority().ok_or("no host")?;
    let host = authority.host();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let connect_to = format!("{host}:{}", authority.port_u16().unwrap_or(80));
    let host_header = match authority.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (mut head, ()) = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts();
    head.headers = headers.clone();
    head.headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&host_header).map_err(|e| e.to_string())?,
    );
    Ok((connect_to, head))
}

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
    /// `host:port` to open connections to.
    connect_to: String,
    /// Method, origin-form URI and headers (with `Host`) as they go on the wire; cloned per send.
    head: http::request::Parts,
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
        let method = Method::from_bytes(spec.method.as_bytes()).map_err(|e| err(e.to_string()))?;
        let (connect_to, head) = wire_head(&method, &uri, &headers).map_err(err)?;
        Ok(PreparedRequest {
            name: spec.name.clone(),
            method,
            uri,
            headers,
            bodies: spec.body_variants.iter().map(|b| b.json.clone()).collect(),
            stream: spec.stream,
            expect: spec.expect.clone(),
            expect_header: spec
                .expect_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            connect_to,
            head,
        })
    }

    /// `host:port` that connections for this request go to.
    pub fn connect_to(&self) -> &str {
        &self.connect_to
    }

    /// Builds one instance with body variant `variant` (ignored when there is no body), ready for a
    /// connection-level client: origin-form URI and a `Host` header. Costs a clone of the prepared head.
    pub fn build(&self, variant: usize) -> http::Request<http_body_util::Full<Bytes>> {
        let body = self
            .bodies
            .get(variant % self.bodies.len().max(1))
            .cloned()
            .unwrap_or_default();
        http::Request::from_parts(self.head.clone(), http_body_util::Full::new(body))
    }
}
