//! What a provider request's headers say, as pure functions: the API-key secret (per provider convention)
//! and the optional `x-mock-*` override headers turned into a one-off fault rule.

use crate::faults::{FaultKind, FaultRule};
use crate::latency::Distribution;
use crate::providers::ApiError;
use crate::route::Provider;
use http::{HeaderMap, HeaderName};

// Ready-made names: looking a header up by `&str` parses and validates the name on every request.
static API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static MOCK_FAULT: HeaderName = HeaderName::from_static("x-mock-fault");
static MOCK_STATUS: HeaderName = HeaderName::from_static("x-mock-status");
static MOCK_LATENCY: HeaderName = HeaderName::from_static("x-mock-latency");

/// The secret a request carries: OpenAI `Authorization: Bearer`, Anthropic `x-api-key` (each falls back to
/// the other, as both SDKs can be configured either way).
pub(crate) fn secret(headers: &HeaderMap, provider: Provider) -> Option<&str> {
    let bearer = || {
        headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
    };
    let api_key = || headers.get(&API_KEY)?.to_str().ok().map(str::trim);
    match provider {
        Provider::OpenAi => bearer().or_else(api_key),
        Provider::Anthropic => api_key().or_else(bearer),
    }
}

/// Build a one-off rule from `x-mock-status`, `x-mock-latency` and `x-mock-fault` (checked like any rule).
pub(crate) fn override_rule(headers: &HeaderMap) -> Result<Option<FaultRule>, ApiError> {
    let header = |name: &'static HeaderName| {
        headers
            .get(name)
            .map(|v| (name.as_str(), v.to_str().unwrap_or_default().trim()))
    };
    let invalid = |field: &'static str, message: String| ApiError::InvalidField { field, message };
    let mut rule = match (header(&MOCK_FAULT), header(&MOCK_STATUS)) {
        (Some((name, kind)), _) => FaultRule::new(
            serde_json::from_value(serde_json::Value::String(kind.into()))
                .map_err(|_| invalid(name, format!("unknown fault kind `{kind}`")))?,
        ),
        (None, Some((name, status))) => FaultRule {
            status: Some(
                status
                    .parse()
                    .map_err(|_| invalid(name, format!("`{status}` is not an HTTP status")))?,
            ),
            ..FaultRule::new(FaultKind::Error)
        },
        (None, None) => FaultRule::new(FaultKind::Latency),
    };
    if let Some((name, latency)) = header(&MOCK_LATENCY) {
        let delay = human_duration::parse(latency).map_err(|err| invalid(name, err.to_string()))?;
        if rule.action == FaultKind::Latency {
            rule.latency = Some(Distribution::Fixed(delay));
        } else {
            return Err(invalid(
                name,
                "combine x-mock-latency with neither x-mock-status nor x-mock-fault".into(),
            ));
        }
    } else if rule.action == FaultKind::Latency {
        return Ok(None);
    }
    rule.validate("x-mock-* headers")
        .map_err(|err| invalid("x-mock-fault", err.to_string()))?;
    Ok(Some(rule))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn secrets_by_provider() {
        let both = headers(&[("authorization", "Bearer sk-a"), ("x-api-key", "sk-b")]);
        assert_eq!(secret(&both, Provider::OpenAi), Some("sk-a"));
        assert_eq!(secret(&both, Provider::Anthropic), Some("sk-b"));
        assert_eq!(
            secret(&headers(&[("x-api-key", "sk-b")]), Provider::OpenAi),
            Some("sk-b")
        );
        assert_eq!(
            secret(&headers(&[("authorization", "Basic x")]), Provider::OpenAi),
            None
        );
    }

    #[test]
    fn override_headers_table() {
        let kind = |pairs: &[(&'static str, &str)]| {
            override_rule(&headers(pairs)).map(|r| r.map(|r| (r.action, r.status)))
        };
        assert_eq!(kind(&[]), Ok(None));
        assert_eq!(
            kind(&[("x-mock-status", "503")]),
            Ok(Some((FaultKind::Error, Some(503))))
        );
        assert_eq!(
            kind(&[("x-mock-fault", "tcp_reset")]),
            Ok(Some((FaultKind::TcpReset, None)))
        );
        assert_eq!(
            kind(&[("x-mock-latency", "5ms")]),
            Ok(Some((FaultKind::Latency, None)))
        );
        assert!(kind(&[("x-mock-status", "abc")]).is_err());
        assert!(kind(&[("x-mock-fault", "explode")]).is_err());
        assert!(kind(&[("x-mock-fault", "disconnect")]).is_err());
        assert!(kind(&[("x-mock-latency", "soon")]).is_err());
    }
}
