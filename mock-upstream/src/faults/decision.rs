//! Pure fault decisions: does a rule match a request, and does its trigger fire for the n-th matched request at
//! a given time with a given random draw? No clocks, no locks, no RNG state — callers pass everything in.

use super::rule::FaultRule;
use crate::route::Route;
use std::time::Duration;

/// What a rule can match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Key id (configured id, or the pooled bucket's id).
    pub key_id: &'a str,
    /// Endpoint.
    pub route: Route,
    /// Requested model, when the request names one.
    pub model: Option<&'a str>,
    /// Whether a streaming response was requested.
    pub stream: bool,
}

impl FaultRule {
    /// True when every match field admits the request.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        let stream_wanted = if self.action.is_stream_only() {
            Some(true)
        } else {
            self.stream
        };
        (self.keys.is_empty() || self.keys.iter().any(|k| k == facts.key_id))
            && self.provider.is_none_or(|p| p == facts.route.provider())
            && (self.routes.is_empty() || self.routes.contains(&facts.route))
            && (self.models.is_empty()
                || facts
                    .model
                    .is_some_and(|m| self.models.iter().any(|x| x == m)))
            && stream_wanted.is_none_or(|s| s == facts.stream)
    }

    /// True when the trigger fires for the `matched_index`-th (0-based) request this rule matched,
    /// `since_epoch` after the window epoch, given a uniform `draw` in [0, 1).
    pub fn fires(&self, matched_index: u64, since_epoch: Duration, draw: f64) -> bool {
        self.first_n.is_none_or(|n| matched_index < n)
            && self.after_n.is_none_or(|n| matched_index >= n)
            && self
                .every_nth
                .is_none_or(|n| n > 0 && (matched_index + 1).is_multiple_of(n))
            && self.from.is_none_or(|from| since_epoch >= from)
            && self.until.is_none_or(|until| since_epoch < until)
            && self.probability.is_none_or(|p| draw < p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultKind;
    use crate::route::Provider;

    fn facts(
        key_id: &'static str,
        route: Route,
        model: Option<&'static str>,
        stream: bool,
    ) -> RequestFacts<'static> {
        RequestFacts {
            key_id,
            route,
            model,
            stream,
        }
    }

    #[test]
    fn match_table() {
        let chat = Route::ChatCompletions;
        let rule = |f: fn(&mut FaultRule)| {
            let mut rule = FaultRule::new(FaultKind::Error);
            f(&mut rule);
            rule
        };
        let cases = [
            (rule(|_| {}), facts("k1", chat, None, false), true),
            (
                rule(|r| r.keys = vec!["k2".into()]),
                facts("k1", chat, None, false),
                false,
            ),
            (
                rule(|r| r.keys = vec!["k1".into(), "k2".into()]),
                facts("k2", chat, None, false),
                true,
            ),
            (
                rule(|r| r.provider = Some(Provider::Anthropic)),
                facts("k1", chat, None, false),
                false,
            ),
            (
                rule(|r| r.provider = Some(Provider::Anthropic)),
                facts("k1", Route::Messages, None, false),
                true,
            ),
            (
                rule(|r| r.routes = vec![Route::Embeddings]),
                facts("k1", chat, None, false),
                false,
            ),
            (
                rule(|r| r.models = vec!["gpt-4".into()]),
                facts("k1", chat, Some("gpt-4"), false),
                true,
            ),
            (
                rule(|r| r.models = vec!["gpt-4".into()]),
                facts("k1", chat, Some("gpt-4o"), false),
                false,
            ),
            (
                rule(|r| r.models = vec!["gpt-4".into()]),
                facts("k1", Route::Models, None, false),
                false,
            ),
            (
                rule(|r| r.stream = Some(true)),
                facts("k1", chat, None, false),
                false,
            ),
            (
                rule(|r| r.stream = Some(false)),
                facts("k1", chat, None, false),
                true,
            ),
            (
                rule(|r| r.action = FaultKind::CutStream),
                facts("k1", chat, None, false),
                false,
            ),
            (
                rule(|r| r.action = FaultKind::CutStream),
                facts("k1", chat, None, true),
                true,
            ),
        ];
        for (index, (rule, facts, expected)) in cases.iter().enumerate() {
            assert_eq!(rule.matches(facts), *expected, "case {index}: {rule:?}");
        }
    }

    #[test]
    fn trigger_table() {
        let secs = Duration::from_secs;
        let rule = |f: fn(&mut FaultRule)| {
            let mut rule = FaultRule::new(FaultKind::Error);
            f(&mut rule);
            rule
        };
        // (rule, matched index, since epoch, draw, fires)
        let cases = [
            (rule(|_| {}), 0, secs(0), 0.99, true),
            (rule(|r| r.first_n = Some(2)), 1, secs(0), 0.0, true),
            (rule(|r| r.first_n = Some(2)), 2, secs(0), 0.0, false),
            (rule(|r| r.after_n = Some(2)), 1, secs(0), 0.0, false),
            (rule(|r| r.after_n = Some(2)), 2, secs(0), 0.0, true),
            (rule(|r| r.every_nth = Some(3)), 1, secs(0), 0.0, false),
            (rule(|r| r.every_nth = Some(3)), 2, secs(0), 0.0, true),
            (rule(|r| r.every_nth = Some(3)), 5, secs(0), 0.0, true),
            (
                rule(|r| r.from = Some(Duration::from_secs(10))),
                0,
                secs(9),
                0.0,
                false,
            ),
            (
                rule(|r| r.from = Some(Duration::from_secs(10))),
                0,
                secs(10),
                0.0,
                true,
            ),
            (
                rule(|r| r.until = Some(Duration::from_secs(10))),
                0,
                secs(10),
                0.0,
                false,
            ),
            (rule(|r| r.probability = Some(0.25)), 0, secs(0), 0.24, true),
            (
                rule(|r| r.probability = Some(0.25)),
                0,
                secs(0),
                0.25,
                false,
            ),
            (rule(|r| r.probability = Some(0.0)), 0, secs(0), 0.0, false),
            (
                rule(|r| {
                    r.first_n = Some(10);
                    r.every_nth = Some(2)
                }),
                11,
                secs(0),
                0.0,
                false,
            ),
        ];
        for (index, (rule, n, since, draw, expected)) in cases.iter().enumerate() {
            assert_eq!(
                rule.fires(*n, *since, *draw),
                *expected,
                "case {index}: {rule:?}"
            );
        }
    }
}
