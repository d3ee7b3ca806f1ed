//! Key registry: maps the secret a client sends to the key's runtime state (limiter, request counters,
//! ledger). Configured keys are fixed at start; every unconfigured secret shares one pooled bucket, so memory
//! stays bounded however many random keys a client sends.

use crate::config::{KeyConfig, MockConfig, ANY_KEY_ID, UNKNOWN_KEY_ID};
use crate::ledger::KeyLedger;
use crate::limiter::KeyLimiter;
use crate::route::Route;
use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runtime state of one key (or of a pooled bucket).
#[derive(Debug)]
pub(crate) struct KeyRuntime {
    pub(crate) config: KeyConfig,
    limiter: Mutex<KeyLimiter>,
    request_counts: [AtomicU64; Route::ALL.len()],
    ledger: Mutex<KeyLedger>,
}

impl KeyRuntime {
    fn new(config: KeyConfig, fault_sequence_cap: usize, now: Duration) -> Self {
        KeyRuntime {
            limiter: Mutex::new(KeyLimiter::new(config.rpm, config.tpm, now)),
            request_counts: Default::default(),
            ledger: Mutex::new(KeyLedger::new(fault_sequence_cap)),
            config,
        }
    }

    fn pooled(id: &str, fault_sequence_cap: usize, now: Duration) -> Self {
        KeyRuntime::new(
            KeyConfig {
                id: id.into(),
                ..Default::default()
            },
            fault_sequence_cap,
            now,
        )
    }

    /// Key id.
    pub(crate) fn id(&self) -> &str {
        &self.config.id
    }

    /// Index of the next request of this key on `route` (0-based), counting it.
    pub(crate) fn next_index(&self, route: Route) -> u64 {
        self.request_counts[route.index()].fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn limiter(&self) -> MutexGuard<'_, KeyLimiter> {
        self.limiter.lock()
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, KeyLedger> {
        self.ledger.lock()
    }
}

/// Outcome of looking up the secret of a request.
pub(crate) enum KeyLookup {
    /// A configured key, or the pooled any-key bucket.
    Accepted(Arc<KeyRuntime>),
    /// No usable key; the request is counted in the `_unknown` bucket.
    Rejected(Arc<KeyRuntime>),
}

impl KeyLookup {
    /// The key (or bucket) the request is counted under, accepted or not.
    pub(crate) fn key(&self) -> &Arc<KeyRuntime> {
        match self {
            KeyLookup::Accepted(key) | KeyLookup::Rejected(key) => key,
        }
    }
}

/// All keys of one mock lifetime (rebuilt on admin reset).
#[derive(Debug)]
pub(crate) struct KeyRegistry {
    by_secret: HashMap<String, Arc<KeyRuntime>>,
    configured: Vec<Arc<KeyRuntime>>,
    any: Option<Arc<KeyRuntime>>,
    unknown: Arc<KeyRuntime>,
}

impl KeyRegistry {
    pub(crate) fn new(config: &MockConfig, now: Duration) -> Self {
        let cap = config.fault_sequence_cap;
        let configured: Vec<Arc<KeyRuntime>> = config
            .keys
            .iter()
            .map(|key| Arc::new(KeyRuntime::new(key.clone(), cap, now)))
            .collect();
        let by_secret = configured
            .iter()
            .map(|key| (key.config.secret.clone(), Arc::clone(key)))
            .collect();
        let any = config
            .accepts_any_key()
            .then(|| Arc::new(KeyRuntime::pooled(ANY_KEY_ID, cap, now)));
        KeyRegistry {
            by_secret,
            configured,
            any,
            unknown: Arc::new(KeyRuntime::pooled(UNKNOWN_KEY_ID, cap, now)),
        }
    }

    /// Resolve the secret a request carried (`None` when it carried none).
    pub(crate) fn lookup(&self, secret: Option<&str>) -> KeyLookup {
        let known = secret.and_then(|s| self.by_secret.get(s));
        let pooled = secret.filter(|s| !s.is_empty()).and(self.any.as_ref());
        match known.or(pooled) {
            Some(key) => KeyLookup::Accepted(Arc::clone(key)),
            None => KeyLookup::Rejected(Arc::clone(&self.unknown)),
        }
    }

    /// Every bucket that appears in the ledger: configured keys always, pooled buckets once used.
    pub(crate) fn ledger_entries(&self) -> impl Iterator<Item = &Arc<KeyRuntime>> {
        self.configured
            .iter()
            .chain(self.any.iter())
            .chain(std::iter::once(&self.unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[(&str, &str)], accept_any: Option<bool>) -> MockConfig {
        MockConfig {
            keys: keys
                .iter()
                .map(|(id, secret)| KeyConfig {
                    id: (*id).into(),
                    secret: (*secret).into(),
                    ..Default::default()
                })
                .collect(),
            accept_any_key: accept_any,
            ..Default::default()
        }
    }

    fn resolved(registry: &KeyRegistry, secret: Option<&str>) -> (bool, String) {
        match registry.lookup(secret) {
            KeyLookup::Accepted(key) => (true, key.id().to_string()),
            KeyLookup::Rejected(key) => (false, key.id().to_string()),
        }
    }

    #[test]
    fn lookup_table() {
        let strict = KeyRegistry::new(&config(&[("k1", "s1")], None), Duration::ZERO);
        let open = KeyRegistry::new(&config(&[("k1", "s1")], Some(true)), Duration::ZERO);
        let cases = [
            (&strict, Some("s1"), (true, "k1")),
            (&strict, Some("nope"), (false, "_unknown")),
            (&strict, None, (false, "_unknown")),
            (&open, Some("s1"), (true, "k1")),
            (&open, Some("anything"), (true, "_any")),
            (&open, Some(""), (false, "_unknown")),
            (&open, None, (false, "_unknown")),
        ];
        for (registry, secret, (accepted, id)) in cases {
            assert_eq!(
                resolved(registry, secret),
                (accepted, id.to_string()),
                "{secret:?}"
            );
        }
    }

    #[test]
    fn request_indexes_are_per_route() {
        let registry = KeyRegistry::new(&config(&[("k1", "s1")], None), Duration::ZERO);
        let KeyLookup::Accepted(key) = registry.lookup(Some("s1")) else {
            panic!("not accepted")
        };
        assert_eq!(key.next_index(Route::ChatCompletions), 0);
        assert_eq!(key.next_index(Route::ChatCompletions), 1);
        assert_eq!(key.next_index(Route::Messages), 0);
    }
}
