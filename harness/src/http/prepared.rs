//! Scenario requests turned into ready-to-send parts (URI, method, headers, serialized body variants).

use crate::scenario::RequestSpec;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// Why a request head could not be built for a target URI.
#[derive(Debug, thiserror::Error)]
enum WireHeadError {
    #[error("no host")]
    NoHost,
    #[error(transparent)]
    Request(#[from] http::Error),
    #[error("host is not a valid header value: {0}")]
    Host(#[from] http::header::InvalidHeaderValue),
}

/// The connection address (`host:port`, port 80 by default) and the wire head of a request to `uri`: origin-form
/// URI (what HTTP/1.1 sends to an origin server) and the headers plus `Host`.
fn wire_head(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(String, http::request::Parts), WireHeadError> {
    let authority = uri.authority().ok_or(WireHeadError::NoHost)?;
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
        .body(())?
        .into_parts();
    head.headers = headers.clone();
    head.headers
        .insert(http::header::HOST, HeaderValue::from_str(&host_header)?);
    Ok((connect_to, head))
}

/// Header slots of every request's header map. hyper reuses a sent request's header map for its response's
/// headers, so a map with room for a response's headers (nginx sends 5, the mock provider and proxies a dozen:
/// rate limits, key used, ...) is not regrown twice while the response is parsed, as a clone of the prepared map
/// (room for the request's own headers only) was: two reallocations per request.
const HEADER_SLOTS: usize = 12;

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
    /// The response header naming the key the proxy used (`X-Key-Used` unless a profile says otherwise; `None`:
    /// the proxy names none).
    pub key_header: Option<HeaderName>,
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
        let (connect_to, head) =
            wire_head(&method, &uri, &headers).map_err(|e| err(e.to_string()))?;
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
            key_header: Some(crate::engine::KEY_USED_HEADER),
            connect_to,
            head,
        })
    }

    /// `host:port` that connections for this request go to.
    pub fn connect_to(&self) -> &str {
        &self.connect_to
    }

    /// Builds one instance with body variant `variant` (ignored when there is no body), ready for a
    /// connection-level client: origin-form URI and a `Host` header. The header map is built with room for
    /// `HEADER_SLOTS` headers rather than cloned (see there).
    pub fn build(&self, variant: usize) -> http::Request<http_body_util::Full<Bytes>> {
        let body = self
            .bodies
            .get(variant % self.bodies.len().max(1))
            .cloned()
            .unwrap_or_default();
        let mut req = http::Request::new(http_body_util::Full::new(body));
        *req.method_mut() = self.head.method.clone();
        *req.uri_mut() = self.head.uri.clone();
        let headers = req.headers_mut();
        headers.reserve(HEADER_SLOTS.max(self.head.headers.len()));
        for (name, value) in &self.head.headers {
            headers.append(name.clone(), value.clone());
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> RequestSpec {
        toml::from_str(toml_text).expect("test request spec")
    }

    #[test]
    fn build_sends_origin_form_with_host_and_the_scenario_headers_in_a_roomy_map() {
        let cases = [
            ("http://127.0.0.1:8000", "127.0.0.1:8000", "127.0.0.1:8000"),
            ("http://localhost/", "localhost", "localhost:80"),
            ("http://[::1]:9000", "[::1]:9000", "[::1]:9000"),
        ];
        let spec = spec(
            "name = \"chat\"\npath = \"/v1/chat?x=1\"\n[headers]\nauthorization = \"Bearer k\"\nx-tenant = \"t1\"\n",
        );
        for (target, host, connect_to) in cases {
            let prepared = PreparedRequest::new(&spec, target).expect("valid target");
            assert_eq!(prepared.connect_to(), connect_to, "{target}");
            let req = prepared.build(0);
            assert_eq!(req.method(), Method::GET);
            assert_eq!(req.uri(), "/v1/chat?x=1");
            let headers = req.headers();
            assert_eq!(headers.len(), 3, "{headers:?}");
            assert_eq!(headers[http::header::HOST], host);
            assert_eq!(headers[http::header::AUTHORIZATION], "Bearer k");
            assert_eq!(headers["x-tenant"], "t1");
            assert!(headers.capacity() >= HEADER_SLOTS, "{}", headers.capacity());
        }
    }
}
