//! What one upstream attempt's outcome means: may the request be retried on another key, and what happens
//! to the key that served it. Pure decisions; the forwarder applies them.

use std::time::Duration;

use http::StatusCode;

/// How an upstream attempt ended, as far as the retry policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Response headers arrived with this status.
    Status(StatusCode),
    /// Could not connect (refused, unreachable).
    ConnectFailed,
    /// No response headers within the attempt's time budget.
    TimedOut,
    /// The connection broke before response headers (reset, EOF, protocol error).
    Broken,
}

impl AttemptOutcome {
    /// Worth trying again on another key: 429, 5xx (incl. Anthropic's 529) and transport failures.
    /// Never 400, 401, 404, 413 or any other 4xx: the same request would fail the same way.
    pub fn is_retryable(self) -> bool {
        match self {
            AttemptOutcome::Status(status) => {
                status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
                    || status.as_u16() == 529
            }
            AttemptOutcome::ConnectFailed | AttemptOutcome::TimedOut | AttemptOutcome::Broken => {
                true
            }
        }
    }
}

/// The bounds on retrying one client request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Upstream attempts per client request, first one included (>= 1).
    pub max_attempts: u32,
    /// Total time from receiving the request until response headers must be chosen.
    pub deadline: Duration,
}

impl RetryBudget {
    /// Whether another attempt may follow `attempts_made` attempts that took `elapsed` in total, given the last
    /// outcome. Only asked before any byte went to the client, so streams are never retried mid-way.
    pub fn allows_retry(
        &self,
        outcome: AttemptOutcome,
        attempts_made: u32,
        elapsed: Duration,
    ) -> bool {
        outcome.is_retryable() && attempts_made < self.max_attempts && elapsed < self.deadline
    }
}

/// What to do to the key that served an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPenalty {
    /// Nothing; the key stays usable.
    None,
    /// Send nothing on the key for this long (rate limited).
    Cooldown(Duration),
    /// Park the key for this long (quota exhausted).
    Park(Duration),
    /// Never use the key again (upstream rejected it).
    Disable,
}

/// Cooldown lengths when the upstream gives no (usable) hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    /// Rest after a 429 without a retry hint.
    pub default_cooldown: Duration,
    /// Rest after a 429 that says the quota is exhausted (`insufficient_quota`).
    pub quota_park: Duration,
    /// Upper bound on any hinted cooldown, so a garbled header cannot park a key for days.
    pub max_cooldown: Duration,
}

impl CooldownPolicy {
    /// The penalty for a response with `status`, the parsed retry `hint` and whether its body said the quota is
    /// exhausted. A quota-exhausted 429 parks for the longer of the hint and `quota_park`.
    pub fn penalty(
        &self,
        status: StatusCode,
        hint: Option<Duration>,
        quota_exhausted: bool,
    ) -> KeyPenalty {
        match status {
            StatusCode::UNAUTHORIZED => KeyPenalty::Disable,
            StatusCode::TOO_MANY_REQUESTS if quota_exhausted => {
                KeyPenalty::Park(hint.unwrap_or(Duration::ZERO).max(self.quota_park))
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = hint.unwrap_or(self.default_cooldown).min(self.max_cooldown);
                KeyPenalty::Cooldown(wait + clock_guard(wait))
            }
            _ => KeyPenalty::None,
        }
    }
}

/// Extra rest added to every rate-limit cooldown: 2 % of it, at least 50 ms, at most 1 s. The upstream starts its
/// window when it *sent* the 429 and counts to whole milliseconds (or seconds); resting exactly the announced
/// time would let a request land a hair before its window closes.
pub fn clock_guard(cooldown: Duration) -> Duration {
    (cooldown / 50).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Whether a 429 body says the account's quota is exhausted (OpenAI's `insufficient_quota` code or type).
pub fn says_quota_exhausted(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"insufficient_quota";
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Status(StatusCode::from_u16(code).unwrap())
    }

    #[test]
    fn retryable_outcomes() {
        let cases = [
            (status(429), true),
            (status(500), true),
            (status(502), true),
            (status(503), true),
            (status(504), true),
            (status(529), true),
            (AttemptOutcome::ConnectFailed, true),
            (AttemptOutcome::TimedOut, true),
            (AttemptOutcome::Broken, true),
            (status(200), false),
            (status(400), false),
            (status(401), false),
            (status(403), false),
            (status(404), false),
            (status(413), false),
            (status(422), false),
        ];
        for (outcome, want) in cases {
            assert_eq!(outcome.is_retryable(), want, "{outcome:?}");
        }
    }

    #[test]
    fn budget_bounds_attempts_and_time() {
        let budget = RetryBudget {
            max_attempts: 3,
            deadline: Duration::from_secs(10),
        };
        let s = Duration::from_secs;
        let cases = [
            (status(503), 1, s(0), true),
            (status(503), 2, s(9), true),
            (status(503), 3, s(0), false),
            (status(503), 1, s(10), false),
            (status(400), 1, s(0), false),
            (AttemptOutcome::TimedOut, 2, s(1), true),
        ];
        for (outcome, attempts, elapsed, want) in cases {
            assert_eq!(
                budget.allows_retry(outcome, attempts, elapsed),
                want,
                "{outcome:?} {attempts} {elapsed:?}"
            );
        }
    }

    #[test]
    fn penalties() {
        let policy = CooldownPolicy {
            default_cooldown: Duration::from_secs(2),
            quota_park: Duration::from_secs(600),
            max_cooldown: Duration::from_secs(3600),
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let c = |code: u16| StatusCode::from_u16(code).unwrap();
        let cases = [
            (c(429), Some(s(5)), false, KeyPenalty::Cooldown(ms(5_100))),
            (c(429), None, false, KeyPenalty::Cooldown(ms(2_050))),
            (
                c(429),
                Some(s(90_000)),
                false,
                KeyPenalty::Cooldown(s(3601)),
            ),
            (c(429), None, true, KeyPenalty::Park(s(600))),
            (c(429), Some(s(5)), true, KeyPenalty::Park(s(600))),
            (c(429), Some(s(7200)), true, KeyPenalty::Park(s(7200))),
            (c(401), None, false, KeyPenalty::Disable),
            (c(503), Some(s(5)), false, KeyPenalty::None),
            (c(200), None, false, KeyPenalty::None),
            (c(400), None, false, KeyPenalty::None),
        ];
        for (code, hint, quota, want) in cases {
            assert_eq!(
                policy.penalty(code, hint, quota),
                want,
                "{code:?} {hint:?} {quota}"
            );
        }
    }

    #[test]
    fn cooldowns_get_a_clock_guard() {
        let ms = Duration::from_millis;
        let cases = [
            (ms(0), ms(50)),
            (ms(1000), ms(50)),
            (ms(3000), ms(60)),
            (ms(10_000), ms(200)),
            (ms(600_000), ms(1000)),
        ];
        for (cooldown, guard) in cases {
            assert_eq!(clock_guard(cooldown), guard, "{cooldown:?}");
        }
    }

    #[test]
    fn quota_exhaustion_is_read_from_the_body() {
        let openai = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(says_quota_exhausted(openai));
        assert!(!says_quota_exhausted(
            br#"{"error":{"type":"rate_limit_error"}}"#
        ));
        assert!(!says_quota_exhausted(b""));
    }
}
