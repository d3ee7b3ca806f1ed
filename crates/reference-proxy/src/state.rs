//! Server state shared by every handler: the checked config, the key pool behind a mutex (held only for
//! microseconds, never across an await) and the upstream connection pool.

use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::ProxyConfig;
use crate::key::{KeySpec, KeyStatus};
use crate::pool::{ChosenKey, KeyPool, PoolError, PoolSummary, RestReason, Selection};
use crate::provider::Provider;
use crate::upstream::{Upstream, UpstreamError};

/// Cheap to clone; one per server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Checked configuration.
    pub config: Arc<ProxyConfig>,
    /// The key pool.
    pub pool: SharedPool,
    /// Upstream HTTP client (connection pool); behind an `Arc` so cloning the state per request stays cheap.
    pub upstream: Arc<Upstream>,
}

impl AppState {
    /// Builds the pool and the upstream client from `config`.
    pub fn new(config: ProxyConfig) -> Result<AppState, StateError> {
        let pool = KeyPool::new(config.strategy, &config.keys)?;
        let upstream = Upstream::new(
            &config.upstream,
            config.connect_timeout,
            config.max_upstream_connections,
            config.upstream_tls.clone(),
        )?;
        Ok(AppState {
            config: Arc::new(config),
            pool: SharedPool(Arc::new(Mutex::new(pool))),
            upstream: Arc::new(upstream),
        })
    }
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The configured keys do not form a pool.
    #[error("key pool: {0}")]
    Pool(#[from] PoolError),
    /// The upstream base URL is unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// The pool behind a mutex, reading the real clock. Each method locks once, briefly.
#[derive(Debug, Clone)]
pub struct SharedPool(Arc<Mutex<KeyPool>>);

impl SharedPool {
    fn lock(&self) -> MutexGuard<'_, KeyPool> {
        self.0.lock()
    }

    /// See [`KeyPool::select`].
    pub fn select(&self, provider: Provider, tried: &[Arc<str>]) -> Selection {
        self.lock().select(provider, tried, Instant::now())
    }

    /// See [`KeyPool::release`].
    pub fn release(&self, id: &str) {
        self.lock().release(id);
    }

    /// See [`KeyPool::settle_probe`].
    pub fn settle_probe(&self, id: &str) {
        self.lock().settle_probe(id);
    }

    /// Rests `id` for `duration` from now.
    pub fn rest(&self, id: &str, duration: Duration, reason: RestReason) {
        let now = Instant::now();
        self.lock().rest(id, now + duration, reason);
    }

    /// See [`KeyPool::disable`].
    pub fn disable(&self, id: &str) {
        self.lock().disable(id);
    }

    /// Adds keys all-or-nothing.
    pub fn add_all(&self, keys: &[KeySpec]) -> Result<(), PoolError> {
        let mut pool = self.lock();
        for (index, key) in keys.iter().enumerate() {
            if let Err(error) = pool.add(key) {
                for added in &keys[..index] {
                    pool.remove(&added.id);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// See [`KeyPool::remove`].
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id)
    }

    /// See [`KeyPool::statuses`].
    pub fn statuses(&self) -> Vec<KeyStatus> {
        self.lock().statuses(Instant::now())
    }

    /// See [`KeyPool::summary`].
    pub fn summary(&self) -> PoolSummary {
        self.lock().summary(Instant::now())
    }
}

/// One attempt's claim on a key: counts as in flight until dropped (when the response body is finished or
/// abandoned), so least-in-flight sees streams that are still running. If the attempt is the key's half-open
/// probe, the probe is settled by [`Lease::settle_probe`] once the answer is judged, or at the latest on drop (an
/// attempt that failed or was abandoned must not leave the key closed forever).
#[derive(Debug)]
pub struct Lease {
    pool: SharedPool,
    id: Arc<str>,
    probe: bool,
}

impl Lease {
    /// Wraps a key already counted in flight by [`SharedPool::select`]; `probe` as in [`ChosenKey::probe`].
    pub fn new(pool: SharedPool, key: &ChosenKey) -> Lease {
        Lease {
            pool,
            id: key.id.clone(),
            probe: key.probe,
        }
    }

    /// The attempt's answer has been judged (and any new rest applied): open the key for everyone unless it
    /// rests again.
    pub fn settle_probe(&mut self) {
        if std::mem::take(&mut self.probe) {
            self.pool.settle_probe(&self.id);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.settle_probe();
        self.pool.release(&self.id);
    }
}
