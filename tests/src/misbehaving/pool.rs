//! Which key the next attempt uses. A correct pool rotates over the keys that are not resting and rests a key
//! for as long as the upstream asked after a 429; two defects bend exactly these rules:
//! `first-key-only` starts every scan at key 0, `ignores-retry-after` never rests a key.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::misbehaving::{Defect, PoolKey};

/// The fixture's key pool.
#[derive(Debug)]
pub struct KeyPool {
    keys: Vec<PoolKey>,
    defect: Defect,
    next: AtomicUsize,
    resting_until: Mutex<Vec<Option<Instant>>>,
}

impl KeyPool {
    /// A pool over `keys` (in the given order) with `defect`.
    pub fn new(keys: Vec<PoolKey>, defect: Defect) -> Self {
        let resting_until = Mutex::new(vec![None; keys.len()]);
        KeyPool {
            keys,
            defect,
            next: AtomicUsize::new(0),
            resting_until,
        }
    }

    /// The key at `index` (as returned by [`KeyPool::select`]).
    pub fn key(&self, index: usize) -> &PoolKey {
        &self.keys[index]
    }

    /// Upstream attempts one request may make: one per key, or one in all with `no-failover`.
    pub fn max_attempts(&self) -> usize {
        if self.defect == Defect::NoFailover {
            1
        } else {
            self.keys.len()
        }
    }

    /// The next key not in `tried` and not resting at `now`, scanning from the rotation point (from key 0 with
    /// `first-key-only`). `Err(wait)` when every untried key rests: `wait` is the time until the first is back.
    pub fn select(&self, tried: &[usize], now: Instant) -> Result<usize, Option<Duration>> {
        let count = self.keys.len();
        let start = match self.defect {
            Defect::FirstKeyOnly => 0,
            _ => self.next.fetch_add(1, Ordering::Relaxed),
        };
        let resting = self.resting_until.lock();
        let untried = (0..count)
            .map(|offset| (start + offset) % count)
            .filter(|index| !tried.contains(index));
        let mut earliest: Option<Duration> = None;
        for index in untried {
            match resting[index].filter(|until| *until > now) {
                None => return Ok(index),
                Some(until) => {
                    earliest = Some(earliest.map_or(until - now, |e| e.min(until - now)))
                }
            }
        }
        Err(earliest)
    }

    /// Rest the key at `index` for `duration` from `now` — unless the defect is `ignores-retry-after`.
    pub fn rest(&self, index: usize, duration: Duration, now: Instant) {
        if self.defect == Defect::IgnoresRetryAfter {
            return;
        }
        let mut resting = self.resting_until.lock();
        let until = now + duration;
        resting[index] = Some(resting[index].map_or(until, |current| current.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference_proxy::Secret;

    fn pool(defect: Defect) -> KeyPool {
        let keys = ["k1", "k2", "k3"]
            .map(|id| PoolKey {
                id: id.to_string(),
                secret: Secret::new("s"),
            })
            .to_vec();
        KeyPool::new(keys, defect)
    }

    fn picks(pool: &KeyPool, n: usize, now: Instant) -> Vec<usize> {
        (0..n).map(|_| pool.select(&[], now).unwrap()).collect()
    }

    #[test]
    fn selection_table() {
        let now = Instant::now();
        // (defect, rest key 1 for 2 s first?, expected picks)
        let cases = [
            (Defect::BuffersStreams, false, vec![0, 1, 2, 0, 1, 2]),
            (Defect::FirstKeyOnly, false, vec![0, 0, 0, 0, 0, 0]),
            (Defect::NoFailover, true, vec![0, 2, 2, 0, 2, 2]),
            (Defect::IgnoresRetryAfter, true, vec![0, 1, 2, 0, 1, 2]),
            (Defect::None, true, vec![0, 2, 2, 0, 2, 2]),
            (Defect::HoldsWhenExhausted, false, vec![0, 1, 2, 0, 1, 2]),
        ];
        for (defect, rest, expected) in cases {
            let pool = pool(defect);
            if rest {
                pool.rest(1, Duration::from_secs(2), now);
            }
            assert_eq!(picks(&pool, 6, now), expected, "{defect:?}");
            assert_eq!(picks(&pool, 3, now + Duration::from_secs(3)).len(), 3);
        }
    }

    #[test]
    fn tried_keys_and_all_resting() {
        let now = Instant::now();
        let pool = pool(Defect::FirstKeyOnly);
        assert_eq!(pool.select(&[0], now), Ok(1));
        assert_eq!(pool.select(&[0, 1, 2], now), Err(None));
        pool.rest(0, Duration::from_secs(5), now);
        pool.rest(1, Duration::from_secs(2), now);
        assert_eq!(pool.select(&[2], now), Err(Some(Duration::from_secs(2))));
        assert_eq!(pool.max_attempts(), 3);
        assert_eq!(self::pool(Defect::NoFailover).max_attempts(), 1);
    }
}
