//! Shared state of a running mock: configuration, clock, rule book, key registry and metrics. Cloned into
//! every handler (`Arc` inside). The mock-wide latency, the Retry-After grace and the served models start from
//! the config but can be replaced through the admin API, so they live beside it rather than in it.

use super::metrics::LatencyHistograms;
use super::serve::ConnectionGauge;
use crate::config::{KeyConfig, MockConfig};
use crate::faults::book::RuleBook;
use crate::faults::{FaultRule, RuleError};
use crate::keys::KeyRegistry;
use crate::latency::{LatencyProfile, LatencySettings};
use crate::ledger::LedgerSnapshot;
use crate::models::ServedModels;
use crate::route::Route;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Handle on the shared state.
#[derive(Clone)]
pub(crate) struct MockState(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) config: MockConfig,
    started: Instant,
    epoch_ms: AtomicU64,
    pub(crate) rules: RuleBook,
    keys: RwLock<Arc<KeyRegistry>>,
    models: RwLock<Arc<ServedModels>>,
    pub(crate) latency_histograms: LatencyHistograms,
    pub(crate) connections: Arc<ConnectionGauge>,
    request_counter: AtomicU64,
    id_nonce: u64,
    latency: RwLock<Arc<LatencySettings>>,
    retry_after_grace_us: AtomicU64,
}

impl std::ops::Deref for MockState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl MockState {
    /// State for a validated config; rules are validated again as they are installed.
    pub(crate) fn new(config: MockConfig) -> Result<Self, RuleError> {
        let rules = RuleBook::new(config.rules.clone(), Duration::ZERO)?;
        let keys = RwLock::new(Arc::new(KeyRegistry::new(&config, Duration::ZERO)));
        let id_nonce = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Ok(MockState(Arc::new(Inner {
            models: RwLock::new(Arc::new(ServedModels::new(&config.models))),
            latency: RwLock::new(Arc::new(config.latency_settings())),
            retry_after_grace_us: AtomicU64::new(config.retry_after_grace.as_micros() as u64),
            config,
            started: Instant::now(),
            epoch_ms: AtomicU64::new(0),
            rules,
            keys,
            latency_histograms: LatencyHistograms::default(),
            connections: Arc::default(),
            request_counter: AtomicU64::new(0),
            id_nonce,
        })))
    }
}

/// Append the low `digits` hex digits of `value` (no `format!` machinery: this runs on every request).
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(HEX[((value >> (shift * 4)) & 0xf) as usize] as char);
    }
}

impl Inner {
    /// Time since the mock started: the clock of limiters, TTLs and the ledger.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The mock's clock at `instant` (no clock read).
    pub(crate) fn at(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.started)
    }

    /// Time since the fault-window epoch (the start, unless set through the admin API).
    pub(crate) fn since_epoch(&self, now: Duration) -> Duration {
        now.saturating_sub(Duration::from_millis(self.epoch_ms.load(Ordering::Relaxed)))
    }

    /// Set the fault-window epoch to now; returns it (ms since start).
    pub(crate) fn set_epoch_now(&self) -> u64 {
        let now = self.now().as_millis() as u64;
        self.epoch_ms.store(now, Ordering::Relaxed);
        now
    }

    pub(crate) fn registry(&self) -> Arc<KeyRegistry> {
        Arc::clone(&self.keys.read())
    }

    /// The served models in force now.
    pub(crate) fn served_models(&self) -> Arc<ServedModels> {
        Arc::clone(&self.models.read())
    }

    /// Replaces the served models (a list already validated; empty = any) for requests from now on.
    pub(crate) fn set_models(&self, models: &[String]) {
        *self.models.write() = Arc::new(ServedModels::new(models));
    }

    /// Latency profile for a key on a route: the key's own, else the route's, else the default.
    pub(crate) fn latency_profile(&self, key: &KeyConfig, route: Route) -> LatencyProfile {
        match &key.latency {
            Some(own) => own.clone(),
            None => self.latency.read().for_route(route).clone(),
        }
    }

    /// The mock-wide latency now.
    pub(crate) fn latency_settings(&self) -> LatencySettings {
        LatencySettings::clone(&self.latency.read())
    }

    /// Replaces the mock-wide latency (already validated); requests decided from now on use it.
    pub(crate) fn set_latency_settings(&self, settings: LatencySettings) {
        *self.latency.write() = Arc::new(settings);
    }

    /// How long after a retry window opens an arrival is still a race.
    pub(crate) fn retry_after_grace(&self) -> Duration {
        Duration::from_micros(self.retry_after_grace_us.load(Ordering::Relaxed))
    }

    /// Sets the race grace for arrivals from now on.
    pub(crate) fn set_retry_after_grace(&self, grace: Duration) {
        self.retry_after_grace_us
            .store(grace.as_micros() as u64, Ordering::Relaxed);
    }

    /// The config as it is in force now (runtime latency, grace and models), secrets redacted.
    pub(crate) fn effective_config(&self) -> MockConfig {
        let mut config = self.config.redacted();
        let LatencySettings {
            latency,
            route_latency,
        } = self.latency_settings();
        (config.latency, config.route_latency) = (latency, route_latency);
        config.retry_after_grace = self.retry_after_grace();
        config.models = self.served_models().configured().to_vec();
        config
    }

    /// A unique request id `req_<24 hex>`; the hex part is also the suffix of response ids.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(28);
        id.push_str("req_");
        push_hex(&mut id, self.id_nonce, 12);
        push_hex(&mut id, n, 12);
        id
    }

    /// Forget counters, limiters, rule match counts and the ledger (rules, latency, grace and models stay: they
    /// are settings, not counts).
    pub(crate) fn reset(&self) {
        let fresh = Arc::new(KeyRegistry::new(&self.config, self.now()));
        *self.keys.write() = fresh;
        self.rules.reset_counters();
        self.latency_histograms.reset();
    }

    pub(crate) fn ledger(&self) -> LedgerSnapshot {
        let registry = self.registry();
        let keys: BTreeMap<_, _> = registry
            .ledger_entries()
            .map(|key| (key.id().to_string(), key.ledger().snapshot()))
            .filter(|(id, snapshot)| !id.starts_with('_') || snapshot.total_requests > 0)
            .collect();
        LedgerSnapshot::from_keys(self.now(), keys)
    }

    pub(crate) fn list_rules(&self) -> Vec<FaultRule> {
        self.rules.list(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_shaped() {
        let state = MockState::new(MockConfig::default()).unwrap();
        let (a, b) = (state.next_request_id(), state.next_request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 28);
        assert!(a.starts_with("req_") && a[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert!(b.ends_with("000000000001"));
    }
}
