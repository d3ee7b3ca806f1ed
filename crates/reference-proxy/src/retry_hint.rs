//! Reading "when may I try again?" from an upstream 429's headers.
//!
//! Providers spell it differently: `retry-after-ms` (OpenAI SDK convention), `retry-after` (seconds or an
//! HTTP-date), OpenAI's `x-ratelimit-reset-requests` / `-tokens` (Go-style durations such as `6m0s`, `1s`,
//! `12ms`) and Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339 instants). Pure functions over a header map
//! and the wall clock, so every spelling is covered by table-driven tests.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

/// OpenAI's reset headers, each paired with the "remaining" header that says whether that limit is the one hit.
const OPENAI_RESETS: [(&str, &str); 2] = [
    (
        "x-ratelimit-reset-requests",
        "x-ratelimit-remaining-requests",
    ),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
];

/// Anthropic's reset headers, paired likewise.
const ANTHROPIC_RESETS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-requests-remaining",
    ),
    (
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-tokens-remaining",
    ),
    (
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-input-tokens-remaining",
    ),
    (
        "anthropic-ratelimit-output-tokens-reset",
        "anthropic-ratelimit-output-tokens-remaining",
    ),
];

/// How long the upstream asks us to wait, from the most explicit hint present: `retry-after-ms`, then
/// `retry-after`, then the provider reset headers. `None` when no hint is present or parseable.
pub fn retry_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(parse_millis) {
        return Some(ms);
    }
    if let Some(after) = text("retry-after").and_then(|v| parse_retry_after(v, now)) {
        return Some(after);
    }
    let openai = OPENAI_RESETS
        .map(|(reset, remaining)| (text(reset).and_then(parse_go_duration), text(remaining)));
    let anthropic = ANTHROPIC_RESETS.map(|(reset, remaining)| {
        (
            text(reset).and_then(|v| until_rfc3339(v, now)),
            text(remaining),
        )
    });
    exhausted_reset(openai.iter().chain(anthropic.iter()).copied())
}

/// Among `(reset, remaining)` pairs, the longest reset of the limits that are exhausted (remaining `0`);
/// if none is known to be exhausted, the longest reset of all (waiting too little only earns another 429).
fn exhausted_reset<'a>(
    pairs: impl Iterator<Item = (Option<Duration>, Option<&'a str>)> + Clone,
) -> Option<Duration> {
    let exhausted = pairs
        .clone()
        .filter(|(_, remaining)| *remaining == Some("0"))
        .filter_map(|(reset, _)| reset)
        .max();
    exhausted.or_else(|| pairs.filter_map(|(reset, _)| reset).max())
}

/// A non-negative number of milliseconds (fractions allowed).
fn parse_millis(value: &str) -> Option<Duration> {
    let ms: f64 = value.parse().ok()?;
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// `Retry-After`: delay-seconds (fractions tolerated) or an HTTP-date (IMF-fixdate). Dates in the past → zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a subset of RFC 2822 as `time` parses it.
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    Some(until(at, now))
}

fn until_rfc3339(value: &str, now: SystemTime) -> Option<Duration> {
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .map(|at| until(at, now))
}

fn until(at: OffsetDateTime, now: SystemTime) -> Duration {
    let delta = at - OffsetDateTime::from(now);
    Duration::try_from(delta).unwrap_or(Duration::ZERO)
}

/// A Go-style duration as OpenAI sends it: one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`,
/// `us`/`µs`, `ns`; numbers may have fractions (`1.5s`, `6m0s`, `12ms`, `1h2m3.5s`).
pub fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// 2026-01-01T00:00:00Z
    fn fixed_now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("1s", Some(1000)),
            ("6m0s", Some(360_000)),
            ("12ms", Some(12)),
            ("1.5s", Some(1500)),
            ("1h2m3s", Some(3_723_000)),
            ("250us", Some(0)),
            ("0s", Some(0)),
            ("", None),
            ("5", None),
            ("s", None),
            ("3x", None),
            ("1..2s", None),
        ];
        for (text, want_ms) in cases {
            let got = parse_go_duration(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, want_ms, "{text:?}");
        }
    }

    #[test]
    fn retry_after_values() {
        let now = fixed_now();
        let cases = [
            ("3", Some(3000)),
            ("0", Some(0)),
            ("1.5", Some(1500)),
            ("Thu, 01 Jan 2026 00:00:07 GMT", Some(7000)),
            ("Wed, 31 Dec 2025 23:59:00 GMT", Some(0)),
            ("-1", None),
            ("soon", None),
        ];
        for (text, want_ms) in cases {
            let got = parse_retry_after(text, now).map(|d| d.as_millis() as u64);
            assert_eq!(got, want_ms, "{text:?}");
        }
    }

    /// Response headers → expected hint in milliseconds.
    type HintCase = (&'static [(&'static str, &'static str)], Option<u64>);

    #[test]
    fn hints_in_priority_order() {
        let now = fixed_now();
        let cases: &[HintCase] = &[
            (&[], None),
            (&[("retry-after-ms", "250")], Some(250)),
            (
                &[("retry-after-ms", "250"), ("retry-after", "9")],
                Some(250),
            ),
            (
                &[("retry-after-ms", "junk"), ("retry-after", "9")],
                Some(9000),
            ),
            (
                &[("retry-after", "2"), ("x-ratelimit-reset-requests", "6m0s")],
                Some(2000),
            ),
            // OpenAI: the exhausted limit decides.
            (
                &[
                    ("x-ratelimit-reset-requests", "6m0s"),
                    ("x-ratelimit-remaining-requests", "12"),
                    ("x-ratelimit-reset-tokens", "12ms"),
                    ("x-ratelimit-remaining-tokens", "0"),
                ],
                Some(12),
            ),
            // Nothing known to be exhausted: wait for the longest.
            (
                &[
                    ("x-ratelimit-reset-requests", "1s"),
                    ("x-ratelimit-reset-tokens", "20ms"),
                ],
                Some(1000),
            ),
            // Anthropic RFC 3339 instants.
            (
                &[
                    ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:02Z"),
                    ("anthropic-ratelimit-requests-remaining", "0"),
                    ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:01:00Z"),
                    ("anthropic-ratelimit-tokens-remaining", "5000"),
                ],
                Some(2000),
            ),
            (
                &[("anthropic-ratelimit-tokens-reset", "2025-12-31T00:00:00Z")],
                Some(0),
            ),
            (&[("anthropic-ratelimit-tokens-reset", "tomorrow")], None),
        ];
        for (pairs, want_ms) in cases {
            let got = retry_hint(&headers(pairs), now).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want_ms, "{pairs:?}");
        }
    }
}
