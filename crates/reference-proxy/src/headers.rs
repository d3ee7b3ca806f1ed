//! Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1, plus those a `Connection` header names)
//! belong to one connection and are dropped both ways; the client's credential is dropped on the way up and
//! replaced by a pool key; everything else passes untouched.

use http::header::{self, HeaderMap, HeaderName};

static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers of a client request as they go upstream: no hop-by-hop, no `Host` (the upstream client sets the
/// upstream's), no `Content-Length` (recomputed from the body) and no client credential.
pub fn upstream_request_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = incoming.clone();
    strip_request_headers(&mut out);
    out
}

/// [`upstream_request_headers`] in place, for the hot path (no copy of the map).
pub fn strip_request_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    for name in [header::HOST, header::CONTENT_LENGTH, header::AUTHORIZATION] {
        headers.remove(name);
    }
    headers.remove("x-api-key");
}

/// Headers of an upstream response as they go to the client: no hop-by-hop. `Content-Length` stays: the body
/// is passed through byte for byte.
pub fn client_response_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = upstream.clone();
    strip_response_headers(&mut out);
    out
}

/// [`client_response_headers`] in place, for the hot path (no copy of the map).
pub fn strip_response_headers(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
}

/// Removes the hop-by-hop headers and any header the `Connection` header names. Allocates only when a
/// `Connection` header is present (rare on the hot path: HTTP/1.1 keep-alive is the default).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::try_from(token.trim()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn request_headers_lose_hop_by_hop_and_credentials() {
        let incoming = map(&[
            ("host", "proxy:8000"),
            ("authorization", "Bearer client-token"),
            ("x-api-key", "client-token"),
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("accept", "text/event-stream"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ]);
        let out = upstream_request_headers(&incoming);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["accept", "anthropic-version", "content-type", "x-multi"]
        );
        assert_eq!(out.get_all("x-multi").iter().count(), 2);
    }

    #[test]
    fn response_headers_keep_length_and_rate_limit_info() {
        let upstream = map(&[
            ("content-length", "42"),
            ("content-type", "application/json"),
            ("x-ratelimit-remaining-requests", "10"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
        ]);
        let out = client_response_headers(&upstream);
        let mut names: Vec<_> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "content-length",
                "content-type",
                "x-ratelimit-remaining-requests"
            ]
        );
    }
}
