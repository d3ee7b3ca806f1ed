//! Per-key rate limits as providers apply them: a requests-per-minute and a tokens-per-minute bucket that
//! refill continuously. Pure: the caller passes the current time (`Duration` since the mock started), so the
//! arithmetic is unit-tested without sleeping.

use crate::faults::LimitKind;
use std::time::Duration;

/// Limits advertised in headers when a key has no limit configured (and never enforced).
pub const UNLIMITED_RPM: u64 = 1_000_000;
/// See [`UNLIMITED_RPM`].
pub const UNLIMITED_TPM: u64 = 1_000_000_000;

/// One continuously refilling bucket of `capacity` units per minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    capacity: f64,
    available: f64,
    updated_at: Duration,
}

impl Bucket {
    /// A full bucket of `per_minute` units.
    pub fn new(per_minute: u64, now: Duration) -> Self {
        Bucket {
            capacity: per_minute as f64,
            available: per_minute as f64,
            updated_at: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.updated_at).as_secs_f64();
        self.available = (self.available + elapsed * self.capacity / 60.0).min(self.capacity);
        self.updated_at = self.updated_at.max(now);
    }

    /// How long until `amount` units are available (zero when they are).
    fn wait_for(&self, amount: f64) -> Duration {
        let missing = amount.min(self.capacity) - self.available;
        if missing <= 0.0 || self.capacity <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(missing * 60.0 / self.capacity)
    }

    /// Whole units left.
    pub fn remaining(&self) -> u64 {
        self.available.max(0.0).floor() as u64
    }

    /// Time until the bucket is full again (what providers call "reset").
    pub fn reset_in(&self) -> Duration {
        self.wait_for(self.capacity)
    }
}

/// Rate-limit state of one key at one instant: what the response headers advertise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitStatus {
    /// Requests per minute.
    pub limit_requests: u64,
    /// Requests left now.
    pub remaining_requests: u64,
    /// Until the request bucket is full.
    pub reset_requests: Duration,
    /// Tokens per minute.
    pub limit_tokens: u64,
    /// Tokens left now.
    pub remaining_tokens: u64,
    /// Until the token bucket is full.
    pub reset_tokens: Duration,
}

/// Why a request was refused and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The exhausted limit.
    pub kind: LimitKind,
    /// The limit (per minute).
    pub limit: u64,
    /// Units used in the current window (limit - remaining).
    pub used: u64,
    /// Units this request asked for.
    pub requested: u64,
    /// When enough units will be available.
    pub retry_after: Duration,
}

/// The RPM and TPM buckets of one key; `None` = unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyLimiter {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl KeyLimiter {
    /// Limiter for a key with these optional limits.
    pub fn new(rpm: Option<u64>, tpm: Option<u64>, now: Duration) -> Self {
        KeyLimiter {
            requests: rpm.map(|r| Bucket::new(r, now)),
            tokens: tpm.map(|t| Bucket::new(t, now)),
        }
    }

    /// Take one request and `tokens` tokens, or refuse without taking anything.
    pub fn admit(
        &mut self,
        now: Duration,
        tokens: u64,
    ) -> Result<LimitStatus, (Refusal, LimitStatus)> {
        self.refill(now);
        let checks = [
            (LimitKind::Requests, &self.requests, 1.0),
            (LimitKind::Tokens, &self.tokens, tokens as f64),
        ];
        for (kind, bucket, amount) in checks {
            let Some(bucket) = bucket else { continue };
            let wait = bucket.wait_for(amount);
            if !wait.is_zero() || amount > bucket.capacity {
                let refusal = Refusal {
                    kind,
                    limit: bucket.capacity as u64,
                    used: (bucket.capacity - bucket.available).max(0.0).ceil() as u64,
                    requested: amount as u64,
                    retry_after: wait.max(Duration::from_millis(1)),
                };
                return Err((refusal, self.status()));
            }
        }
        if let Some(bucket) = &mut self.requests {
            bucket.available -= 1.0;
        }
        if let Some(bucket) = &mut self.tokens {
            bucket.available -= tokens as f64;
        }
        Ok(self.status())
    }

    /// Current status without taking anything.
    pub fn peek(&mut self, now: Duration) -> LimitStatus {
        self.refill(now);
        self.status()
    }

    fn refill(&mut self, now: Duration) {
        self.requests
            .iter_mut()
            .chain(self.tokens.iter_mut())
            .for_each(|bucket| bucket.refill(now));
    }

    fn status(&self) -> LimitStatus {
        let describe = |bucket: &Option<Bucket>, unlimited: u64| match bucket {
            Some(b) => (b.capacity as u64, b.remaining(), b.reset_in()),
            None => (unlimited, unlimited, Duration::ZERO),
        };
        let (limit_requests, remaining_requests, reset_requests) =
            describe(&self.requests, UNLIMITED_RPM);
        let (limit_tokens, remaining_tokens, reset_tokens) = describe(&self.tokens, UNLIMITED_TPM);
        LimitStatus {
            limit_requests,
            remaining_requests,
            reset_requests,
            limit_tokens,
            remaining_tokens,
            reset_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(value: f64) -> Duration {
        Duration::from_secs_f64(value)
    }

    #[test]
    fn rpm_refuses_then_refills() {
        let mut limiter = KeyLimiter::new(Some(60), None, secs(0.0));
        for _ in 0..60 {
            assert!(limiter.admit(secs(0.0), 10).is_ok());
        }
        let (refusal, status) = limiter.admit(secs(0.0), 10).unwrap_err();
        assert_eq!(refusal.kind, LimitKind::Requests);
        assert_eq!(
            (refusal.limit, refusal.used, refusal.requested),
            (60, 60, 1)
        );
        assert_eq!(refusal.retry_after, secs(1.0));
        assert_eq!(status.remaining_requests, 0);
        assert_eq!(status.reset_requests, secs(60.0));
        assert_eq!(status.limit_tokens, UNLIMITED_TPM);
        assert!(limiter.admit(secs(0.5), 10).is_err());
        let status = limiter.admit(secs(1.0), 10).unwrap();
        assert_eq!(status.remaining_requests, 0);
    }

    #[test]
    fn tpm_refusal_names_tokens_and_waits_for_the_missing_amount() {
        let mut limiter = KeyLimiter::new(Some(1000), Some(600), secs(0.0));
        assert_eq!(limiter.admit(secs(0.0), 500).unwrap().remaining_tokens, 100);
        let (refusal, _) = limiter.admit(secs(0.0), 200).unwrap_err();
        assert_eq!(refusal.kind, LimitKind::Tokens);
        assert_eq!(refusal.retry_after, secs(10.0));
        // A refused request takes nothing.
        assert_eq!(limiter.peek(secs(0.0)).remaining_requests, 999);
    }

    #[test]
    fn oversized_request_is_refused_with_full_window_wait() {
        let mut limiter = KeyLimiter::new(None, Some(100), secs(0.0));
        limiter.admit(secs(0.0), 50).unwrap();
        let (refusal, _) = limiter.admit(secs(0.0), 500).unwrap_err();
        assert_eq!(refusal.requested, 500);
        assert_eq!(refusal.retry_after, secs(30.0));
    }

    #[test]
    fn unlimited_key_always_admits() {
        let mut limiter = KeyLimiter::new(None, None, secs(0.0));
        for _ in 0..10_000 {
            assert!(limiter.admit(secs(0.0), 1_000).is_ok());
        }
        assert_eq!(limiter.peek(secs(0.0)).remaining_requests, UNLIMITED_RPM);
    }
}
