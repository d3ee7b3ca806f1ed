//! Which headers cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1, plus those a `Connection` header names)
//! belong to one connection and are dropped both ways; the client's credential is dropped on the way up and
//! replaced by a pool key; everything else passes untouched.

use http::header::{self, HeaderMap, HeaderName};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers of a client request as they go upstream: no hop-by-hop, no `Host` (the client library sets the
/// upstream's), no `Content-Length` (recomputed from the body) and no client credential.
pub fn upstream_request_headers(incoming: &HeaderMap) -> HeaderMap {
    copy_except(incoming, |name| {
        name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::AUTHORIZATION
            || name == "x-api-key"
    })
}

/// Headers of an upstream response as they go to the client: no hop-by-hop. `Content-Length` stays: the body
/// is passed through byte for byte.
pub fn client_response_headers(upstream: &HeaderMap) -> HeaderMap {
    copy_except(upstream, |_| false)
}

fn copy_except(from: &HeaderMap, also_drop: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    let named_by_connection: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let hop = HOP_BY_HOP.contains(&name.as_str())
            || named_by_connection.iter().any(|n| n == name.as_str());
        if !hop && !also_drop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
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
