//! Who may use the proxy and its admin API. Pure decisions over headers and the peer address, so every case
//! (including non-loopback peers, which loopback tests cannot produce) is unit-tested.

use std::net::IpAddr;

use http::HeaderMap;

use crate::error::ProxyError;
use crate::key::Secret;

/// Whether a client request may be forwarded: always when client auth is off; otherwise its
/// `Authorization: Bearer T` or `x-api-key: T` must equal the configured token.
pub fn client_allowed(expected: Option<&Secret>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    [bearer(headers), api_key]
        .into_iter()
        .flatten()
        .any(|token| constant_time_eq(token.as_bytes(), expected.expose().as_bytes()))
}

/// Admin API policy.
#[derive(Debug, Clone, Copy)]
pub struct AdminPolicy<'a> {
    /// Bearer token required, if any.
    pub token: Option<&'a Secret>,
    /// Whether non-loopback peers are allowed.
    pub allow_remote: bool,
}

/// Whether an admin request from `peer` (unknown = not loopback) with `headers` may proceed.
pub fn admin_access(
    policy: AdminPolicy<'_>,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    let loopback = peer.is_some_and(|ip| ip.is_loopback());
    if !loopback && !policy.allow_remote {
        return Err(ProxyError::AdminForbidden);
    }
    match (policy.token, bearer(headers)) {
        (None, _) => Ok(()),
        (Some(expected), Some(presented))
            if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), _) => Err(ProxyError::AdminUnauthorized),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares without an early exit, so response timing does not reveal how much of a token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    /// Configured token, request headers, allowed?
    type ClientCase<'a> = (
        Option<&'a Secret>,
        &'static [(&'static str, &'static str)],
        bool,
    );

    #[test]
    fn client_token_cases() {
        let token = Secret::new("t0k");
        let cases: &[ClientCase] = &[
            (None, &[], true),
            (None, &[("authorization", "Bearer anything")], true),
            (Some(&token), &[], false),
            (Some(&token), &[("authorization", "Bearer t0k")], true),
            (Some(&token), &[("x-api-key", "t0k")], true),
            (Some(&token), &[("authorization", "Bearer t0")], false),
            (Some(&token), &[("authorization", "t0k")], false),
            (
                Some(&token),
                &[("x-api-key", "nope"), ("authorization", "Bearer t0k")],
                true,
            ),
        ];
        for (expected, pairs, want) in cases {
            assert_eq!(
                client_allowed(*expected, &headers(pairs)),
                *want,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn admin_access_cases() {
        let token = Secret::new("adm");
        let local: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        let local6: Option<IpAddr> = Some("::1".parse().unwrap());
        let remote: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
        let open = AdminPolicy {
            token: None,
            allow_remote: false,
        };
        let locked = AdminPolicy {
            token: Some(&token),
            allow_remote: false,
        };
        let remote_ok = AdminPolicy {
            token: Some(&token),
            allow_remote: true,
        };
        let good: &[(&'static str, &'static str)] = &[("authorization", "Bearer adm")];
        let bad: &[(&'static str, &'static str)] = &[("authorization", "Bearer nope")];
        let cases = [
            (open, local, &[][..], Ok(())),
            (open, local6, &[][..], Ok(())),
            (open, remote, good, Err(403)),
            (open, None, &[][..], Err(403)),
            (locked, local, &[][..], Err(401)),
            (locked, local, bad, Err(401)),
            (locked, local, good, Ok(())),
            (locked, remote, good, Err(403)),
            (remote_ok, remote, good, Ok(())),
            (remote_ok, remote, bad, Err(401)),
        ];
        for (policy, peer, pairs, want) in cases {
            let got = admin_access(policy, peer, &headers(pairs)).map_err(|e| e.status().as_u16());
            assert_eq!(got, want, "{policy:?} {peer:?} {pairs:?}");
        }
    }
}
