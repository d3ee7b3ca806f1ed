//! The key pool: which key serves the next attempt, and what each key may not do right now.
//!
//! Pure bookkeeping with the clock passed in (`now: Instant`), so strategies, cooldowns and the
//! "every key is cooling" answer are unit-tested without sleeping. The shared, locked wrapper the server uses
//! lives in `state`; this type never does I/O.
//!
//! A key whose rest has ended is **half-open** (like a circuit breaker): exactly one attempt — the probe — may use
//! it until that attempt's answer is known. If the probe is rate-limited again the key rests again; otherwise it is
//! ready for everyone. Without this, every request waiting for the key would leave at the instant the rest ends,
//! and all but the first would arrive inside the *next* retry window the upstream announces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::key::{KeySpec, KeyStatus};
use crate::provider::Provider;

/// How the next key is chosen among the usable ones.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Each key in turn.
    RoundRobin,
    /// The key with the fewest requests in flight; ties go round-robin.
    LeastInFlight,
}

/// Why a key is resting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestReason {
    /// Rate-limited (429 with a retry hint or the default cooldown).
    RateLimited,
    /// Quota exhausted (`insufficient_quota`): parked for a long time.
    QuotaExhausted,
}

/// The usability of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// May be used.
    Ready,
    /// Must not be used before `until`.
    Resting {
        /// First instant the key may be used again.
        until: Instant,
        /// Why it rests.
        reason: RestReason,
    },
    /// Its rest is over; one probe attempt decides whether it is usable again (half-open).
    Probing {
        /// The probe is out: no other attempt may use the key until it is settled.
        sent: bool,
    },
    /// Upstream rejected the key (401); never used again until re-added.
    Disabled,
}

/// What a client told "every key is resting" should wait while the only recovering key is being probed: about one
/// upstream round trip.
pub const PROBE_RETRY_AFTER: Duration = Duration::from_millis(100);

/// A key chosen for one attempt, with its credential headers pre-built.
#[derive(Debug, Clone)]
pub struct ChosenKey {
    /// Public id (for `X-Key-Used`).
    pub id: Arc<str>,
    /// The credential header value for the request's provider (sensitive).
    pub credential: HeaderValue,
    /// The id as an `X-Key-Used` value (`None` if the id cannot be sent in a header).
    pub id_header: Option<HeaderValue>,
    /// This attempt is the key's half-open probe: settle it ([`KeyPool::settle_probe`]) once its answer is known.
    pub probe: bool,
}

/// The answer to "which key next?".
#[derive(Debug, Clone)]
pub enum Selection {
    /// Use this key; its in-flight count has been incremented (call [`KeyPool::release`] when done).
    Key(ChosenKey),
    /// Every key for this provider is resting; the earliest recovers after `retry_after`.
    AllResting {
        /// Time until the first key becomes usable.
        retry_after: Duration,
    },
    /// No key can ever serve this provider (none configured, or all disabled).
    NoUsableKey,
}

/// Pool errors from key management.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Two keys with one id.
    #[error("key id `{0}` is already in the pool")]
    DuplicateId(String),
    /// The secret cannot be sent in an HTTP header.
    #[error("the secret of key `{0}` contains characters not allowed in an HTTP header")]
    UnsendableSecret(String),
    /// An empty id.
    #[error("a key id must not be empty")]
    EmptyId,
}

#[derive(Debug)]
struct Slot {
    id: Arc<str>,
    id_header: Option<HeaderValue>,
    provider: Option<Provider>,
    openai_credential: HeaderValue,
    anthropic_credential: HeaderValue,
    state: KeyState,
    in_flight: u32,
    attempts: u64,
}

impl Slot {
    fn new(spec: &KeySpec) -> Result<Slot, PoolError> {
        if spec.id.trim().is_empty() {
            return Err(PoolError::EmptyId);
        }
        let unsendable = |_| PoolError::UnsendableSecret(spec.id.clone());
        Ok(Slot {
            id: Arc::from(spec.id.as_str()),
            id_header: HeaderValue::from_str(&spec.id).ok(),
            provider: spec.provider,
            openai_credential: Provider::OpenAi
                .credential_value(spec.secret.expose())
                .map_err(unsendable)?,
            anthropic_credential: Provider::Anthropic
                .credential_value(spec.secret.expose())
                .map_err(unsendable)?,
            state: KeyState::Ready,
            in_flight: 0,
            attempts: 0,
        })
    }

    fn serves(&self, provider: Provider) -> bool {
        self.provider.is_none_or(|p| p == provider)
    }

    /// May an attempt use the key now (as a normal attempt or as its probe)? Lazily turns an expired rest into
    /// an unsent probe.
    fn usable(&mut self, now: Instant) -> bool {
        match self.state {
            KeyState::Ready | KeyState::Probing { sent: false } => true,
            KeyState::Resting { until, .. } if until <= now => {
                self.state = KeyState::Probing { sent: false };
                true
            }
            _ => false,
        }
    }

    fn status(&self, now: Instant) -> KeyStatus {
        let (state, remaining) = match self.state {
            KeyState::Ready => ("ready", Duration::ZERO),
            KeyState::Resting { until, reason } if until > now => {
                let name = match reason {
                    RestReason::RateLimited => "cooling",
                    RestReason::QuotaExhausted => "parked",
                };
                (name, until - now)
            }
            KeyState::Resting { .. } | KeyState::Probing { sent: false } => {
                ("ready", Duration::ZERO)
            }
            KeyState::Probing { sent: true } => ("probing", Duration::ZERO),
            KeyState::Disabled => ("disabled", Duration::ZERO),
        };
        KeyStatus {
            id: self.id.to_string(),
            provider: self.provider,
            state: state.to_string(),
            cooldown_remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
            in_flight: self.in_flight,
            attempts: self.attempts,
        }
    }
}

/// Counts of keys by state, for `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolSummary {
    /// All keys.
    pub total: usize,
    /// Usable now.
    pub ready: usize,
    /// Cooling or parked.
    pub resting: usize,
    /// Disabled after a 401.
    pub disabled: usize,
    /// Requests in flight over all keys.
    pub in_flight: u64,
}

/// The key pool. Not thread-safe by itself; the server keeps it behind a mutex with short critical sections.
#[derive(Debug)]
pub struct KeyPool {
    strategy: Strategy,
    slots: Vec<Slot>,
    cursor: usize,
}

impl KeyPool {
    /// A pool of `keys` (ids must be unique).
    pub fn new(strategy: Strategy, keys: &[KeySpec]) -> Result<KeyPool, PoolError> {
        let mut pool = KeyPool {
            strategy,
            slots: Vec::with_capacity(keys.len()),
            cursor: 0,
        };
        for key in keys {
            pool.add(key)?;
        }
        Ok(pool)
    }

    /// Adds a key, ready at once.
    pub fn add(&mut self, key: &KeySpec) -> Result<(), PoolError> {
        if self.slots.iter().any(|s| *s.id == *key.id) {
            return Err(PoolError::DuplicateId(key.id.clone()));
        }
        self.slots.push(Slot::new(key)?);
        Ok(())
    }

    /// Removes a key; requests already using it finish normally. Returns whether it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| &*s.id != id);
        self.slots.len() != before
    }

    /// Chooses a key for one attempt of a `provider` request. Keys in `tried` (already used by this request) are
    /// chosen only when no other key is usable. Increments the chosen key's in-flight count.
    pub fn select(&mut self, provider: Provider, tried: &[Arc<str>], now: Instant) -> Selection {
        let fresh = self.pick(provider, now, |slot| !tried.contains(&slot.id));
        let chosen = fresh.or_else(|| self.pick(provider, now, |_| true));
        match chosen {
            Some(index) => {
                let n = self.slots.len();
                self.cursor = (index + 1) % n;
                let slot = &mut self.slots[index];
                slot.in_flight += 1;
                slot.attempts += 1;
                let probe = slot.state == KeyState::Probing { sent: false };
                if probe {
                    slot.state = KeyState::Probing { sent: true };
                }
                let credential = match provider {
                    Provider::OpenAi => slot.openai_credential.clone(),
                    Provider::Anthropic => slot.anthropic_credential.clone(),
                };
                Selection::Key(ChosenKey {
                    id: slot.id.clone(),
                    credential,
                    id_header: slot.id_header.clone(),
                    probe,
                })
            }
            None => self.why_none(provider, now),
        }
    }

    /// Index of the best ready key passing `allowed`, scanning round-robin from the cursor.
    fn pick(
        &mut self,
        provider: Provider,
        now: Instant,
        allowed: impl Fn(&Slot) -> bool,
    ) -> Option<usize> {
        let n = self.slots.len();
        let mut best: Option<(usize, u32)> = None;
        for offset in 0..n {
            let index = (self.cursor + offset) % n;
            let slot = &mut self.slots[index];
            if !slot.serves(provider) || !slot.usable(now) || !allowed(slot) {
                continue;
            }
            match self.strategy {
                Strategy::RoundRobin => return Some(index),
                Strategy::LeastInFlight => {
                    if best.is_none_or(|(_, load)| slot.in_flight < load) {
                        best = Some((index, slot.in_flight));
                    }
                }
            }
        }
        best.map(|(index, _)| index)
    }

    fn why_none(&self, provider: Provider, now: Instant) -> Selection {
        let earliest = self
            .slots
            .iter()
            .filter(|s| s.serves(provider))
            .filter_map(|s| match s.state {
                KeyState::Resting { until, .. } => Some(until.saturating_duration_since(now)),
                KeyState::Probing { .. } => Some(PROBE_RETRY_AFTER),
                _ => None,
            })
            .min();
        match earliest {
            Some(retry_after) => Selection::AllResting { retry_after },
            None => Selection::NoUsableKey,
        }
    }

    /// Marks one attempt on `id` finished. Unknown ids (removed meanwhile) are ignored.
    pub fn release(&mut self, id: &str) {
        if let Some(slot) = self.slots.iter_mut().find(|s| &*s.id == id) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
    }

    /// Ends `id`'s half-open probe (its answer is known and did not rest the key again): the key is ready for
    /// every attempt. Does nothing if the key is in any other state (e.g. the probe's 429 rested it again).
    pub fn settle_probe(&mut self, id: &str) {
        if let Some(slot) = self.slots.iter_mut().find(|s| &*s.id == id) {
            if let KeyState::Probing { .. } = slot.state {
                slot.state = KeyState::Ready;
            }
        }
    }

    /// Rests `id` until `until`. A rest is only ever extended, never shortened, and a disabled key stays disabled.
    pub fn rest(&mut self, id: &str, until: Instant, reason: RestReason) {
        let Some(slot) = self.slots.iter_mut().find(|s| &*s.id == id) else {
            return;
        };
        slot.state = match slot.state {
            KeyState::Disabled => KeyState::Disabled,
            KeyState::Resting {
                until: current,
                reason: r,
            } if current >= until => KeyState::Resting {
                until: current,
                reason: r,
            },
            _ => KeyState::Resting { until, reason },
        };
    }

    /// Disables `id` for good (upstream rejected it).
    pub fn disable(&mut self, id: &str) {
        if let Some(slot) = self.slots.iter_mut().find(|s| &*s.id == id) {
            slot.state = KeyState::Disabled;
        }
    }

    /// The state of `id`, if present.
    pub fn state(&self, id: &str) -> Option<KeyState> {
        self.slots.iter().find(|s| &*s.id == id).map(|s| s.state)
    }

    /// Public status of every key, in pool order.
    pub fn statuses(&self, now: Instant) -> Vec<KeyStatus> {
        self.slots.iter().map(|s| s.status(now)).collect()
    }

    /// Counts by state.
    pub fn summary(&self, now: Instant) -> PoolSummary {
        let mut summary = PoolSummary {
            total: self.slots.len(),
            ..PoolSummary::default()
        };
        for slot in &self.slots {
            summary.in_flight += u64::from(slot.in_flight);
            match slot.state {
                KeyState::Disabled => summary.disabled += 1,
                KeyState::Resting { until, .. } if until > now => summary.resting += 1,
                KeyState::Probing { sent: true } => summary.resting += 1,
                _ => summary.ready += 1,
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Secret;

    fn spec(id: &str, provider: Option<Provider>) -> KeySpec {
        KeySpec {
            id: id.to_string(),
            secret: Secret::new(format!("sk-{id}")),
            provider,
        }
    }

    fn pool(strategy: Strategy, ids: &[&str]) -> KeyPool {
        let specs: Vec<_> = ids.iter().map(|id| spec(id, None)).collect();
        KeyPool::new(strategy, &specs).unwrap()
    }

    fn chosen(selection: Selection) -> String {
        match selection {
            Selection::Key(k) => k.id.to_string(),
            other => panic!("expected a key, got {other:?}"),
        }
    }

    fn pick_many(pool: &mut KeyPool, n: usize, now: Instant, release: bool) -> Vec<String> {
        (0..n)
            .map(|_| {
                let id = chosen(pool.select(Provider::OpenAi, &[], now));
                if release {
                    pool.release(&id);
                }
                id
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_keys() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a", "b", "c"]);
        assert_eq!(
            pick_many(&mut p, 6, now, true),
            ["a", "b", "c", "a", "b", "c"]
        );
    }

    #[test]
    fn least_in_flight_prefers_idle_keys() {
        let now = Instant::now();
        let mut p = pool(Strategy::LeastInFlight, &["a", "b", "c"]);
        // Without releases every key gets one before any gets two.
        assert_eq!(pick_many(&mut p, 3, now, false), ["a", "b", "c"]);
        p.release("b");
        assert_eq!(chosen(p.select(Provider::OpenAi, &[], now)), "b");
        // With releases it still rotates (ties go round-robin).
        let mut q = pool(Strategy::LeastInFlight, &["a", "b"]);
        assert_eq!(pick_many(&mut q, 4, now, true), ["a", "b", "a", "b"]);
    }

    #[test]
    fn resting_keys_are_skipped_until_their_rest_ends() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a", "b"]);
        p.rest("a", now + Duration::from_secs(2), RestReason::RateLimited);
        assert_eq!(pick_many(&mut p, 3, now, true), ["b", "b", "b"]);
        let later = now + Duration::from_secs(2);
        let picks = pick_many(&mut p, 2, later, true);
        assert!(picks.contains(&"a".to_string()), "{picks:?}");
    }

    #[test]
    fn a_recovering_key_takes_one_probe_until_settled() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        p.rest("a", now + Duration::from_secs(1), RestReason::RateLimited);
        let later = now + Duration::from_secs(1);
        let Selection::Key(probe) = p.select(Provider::OpenAi, &[], later) else {
            panic!("the rest is over: one probe must go")
        };
        assert!(probe.probe);
        // While the probe is out, nobody else gets the key; clients are told to come back shortly.
        for _ in 0..3 {
            match p.select(Provider::OpenAi, &[], later) {
                Selection::AllResting { retry_after } => assert_eq!(retry_after, PROBE_RETRY_AFTER),
                other => panic!("expected all resting, got {other:?}"),
            }
        }
        assert_eq!(p.statuses(later)[0].state, "probing");
        p.settle_probe("a");
        let picks: Vec<_> = (0..3)
            .map(|_| match p.select(Provider::OpenAi, &[], later) {
                Selection::Key(k) => k.probe,
                other => panic!("expected the key, got {other:?}"),
            })
            .collect();
        assert_eq!(picks, [false, false, false]);
    }

    #[test]
    fn a_probe_that_is_rate_limited_again_rests_the_key_again() {
        let now = Instant::now();
        let mut p = pool(Strategy::LeastInFlight, &["a", "b"]);
        p.rest("a", now + Duration::from_secs(1), RestReason::RateLimited);
        p.disable("b");
        let later = now + Duration::from_secs(1);
        assert!(matches!(p.select(Provider::OpenAi, &[], later), Selection::Key(k) if k.probe));
        let again = later + Duration::from_secs(3);
        p.rest("a", again, RestReason::RateLimited);
        p.settle_probe("a"); // the probe's lease ends after its 429: must not reopen the key
        assert_eq!(
            p.state("a"),
            Some(KeyState::Resting {
                until: again,
                reason: RestReason::RateLimited
            })
        );
        match p.select(Provider::OpenAi, &[], later) {
            Selection::AllResting { retry_after } => {
                assert_eq!(retry_after, Duration::from_secs(3))
            }
            other => panic!("expected all resting, got {other:?}"),
        }
    }

    #[test]
    fn rests_are_extended_never_shortened() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        let long = now + Duration::from_secs(60);
        p.rest("a", long, RestReason::QuotaExhausted);
        p.rest("a", now + Duration::from_secs(1), RestReason::RateLimited);
        assert_eq!(
            p.state("a"),
            Some(KeyState::Resting {
                until: long,
                reason: RestReason::QuotaExhausted
            })
        );
    }

    #[test]
    fn all_resting_reports_the_earliest_recovery() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a", "b", "c"]);
        p.rest("a", now + Duration::from_secs(5), RestReason::RateLimited);
        p.rest(
            "b",
            now + Duration::from_millis(1500),
            RestReason::RateLimited,
        );
        p.disable("c");
        match p.select(Provider::OpenAi, &[], now) {
            Selection::AllResting { retry_after } => {
                assert_eq!(retry_after, Duration::from_millis(1500))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_usable_key_when_all_disabled_or_empty() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        p.disable("a");
        assert!(matches!(
            p.select(Provider::OpenAi, &[], now),
            Selection::NoUsableKey
        ));
        let mut empty = pool(Strategy::RoundRobin, &[]);
        assert!(matches!(
            empty.select(Provider::OpenAi, &[], now),
            Selection::NoUsableKey
        ));
    }

    #[test]
    fn disabled_keys_stay_disabled_even_when_rested() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        p.disable("a");
        p.rest("a", now, RestReason::RateLimited);
        assert_eq!(p.state("a"), Some(KeyState::Disabled));
    }

    #[test]
    fn tried_keys_are_avoided_but_reused_as_last_resort() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a", "b"]);
        let tried: Vec<Arc<str>> = vec![Arc::from("a")];
        for _ in 0..3 {
            let id = chosen(p.select(Provider::OpenAi, &tried, now));
            p.release(&id);
            assert_eq!(id, "b");
        }
        let both: Vec<Arc<str>> = vec![Arc::from("a"), Arc::from("b")];
        let id = chosen(p.select(Provider::OpenAi, &both, now));
        assert!(id == "a" || id == "b");
    }

    #[test]
    fn provider_restricted_keys_serve_only_their_provider() {
        let now = Instant::now();
        let specs = [
            spec("oa", Some(Provider::OpenAi)),
            spec("an", Some(Provider::Anthropic)),
        ];
        let mut p = KeyPool::new(Strategy::RoundRobin, &specs).unwrap();
        for _ in 0..3 {
            assert_eq!(chosen(p.select(Provider::Anthropic, &[], now)), "an");
            assert_eq!(chosen(p.select(Provider::OpenAi, &[], now)), "oa");
        }
    }

    #[test]
    fn credentials_match_the_provider() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        let Selection::Key(k) = p.select(Provider::Anthropic, &[], now) else {
            panic!()
        };
        assert_eq!(k.credential, "sk-a");
        let Selection::Key(k) = p.select(Provider::OpenAi, &[], now) else {
            panic!()
        };
        assert_eq!(k.credential, "Bearer sk-a");
    }

    #[test]
    fn membership_changes_and_bookkeeping() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a"]);
        assert_eq!(
            p.add(&spec("a", None)),
            Err(PoolError::DuplicateId("a".into()))
        );
        assert_eq!(p.add(&spec(" ", None)), Err(PoolError::EmptyId));
        let bad = KeySpec {
            secret: Secret::new("bad\nsecret"),
            ..spec("x", None)
        };
        assert_eq!(p.add(&bad), Err(PoolError::UnsendableSecret("x".into())));
        p.add(&spec("b", None)).unwrap();
        let id = chosen(p.select(Provider::OpenAi, &[], now));
        assert_eq!(p.summary(now).in_flight, 1);
        p.release(&id);
        p.release(&id); // double release never underflows
        assert_eq!(p.summary(now).in_flight, 0);
        assert!(p.remove("a"));
        assert!(!p.remove("a"));
        p.release("a"); // releasing a removed key is harmless
        let statuses = p.statuses(now);
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].id, "b");
        assert_eq!(p.summary(now).total, 1);
    }

    #[test]
    fn statuses_and_summary_name_states() {
        let now = Instant::now();
        let mut p = pool(Strategy::RoundRobin, &["a", "b", "c", "d"]);
        p.rest(
            "a",
            now + Duration::from_millis(300),
            RestReason::RateLimited,
        );
        p.rest(
            "b",
            now + Duration::from_secs(600),
            RestReason::QuotaExhausted,
        );
        p.disable("c");
        let states: Vec<_> = p
            .statuses(now)
            .into_iter()
            .map(|s| (s.state, s.cooldown_remaining_ms))
            .collect();
        assert_eq!(
            states,
            [
                ("cooling".to_string(), 300),
                ("parked".to_string(), 600_000),
                ("disabled".to_string(), 0),
                ("ready".to_string(), 0)
            ]
        );
        let s = p.summary(now);
        assert_eq!((s.total, s.ready, s.resting, s.disabled), (4, 1, 2, 1));
    }
}
