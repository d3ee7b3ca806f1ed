//! Open model: arrivals on a schedule, latency measured from each arrival's *intended* send time.
//!
//! When the target stalls, in-flight requests pile up to `max_in_flight`; later arrivals wait for a slot and
//! are sent late, but their latency still counts from when they should have left — the stall's queueing shows
//! up in the percentiles instead of being hidden (coordinated omission). Late sends are counted; arrivals still
//! waiting when the run ends are counted as dropped.
//!
//! Each in-flight slot owns a connection. Free slots are a stack, so the most recently used (warm) connection
//! goes out first and a run needing few concurrent requests opens few connections whatever `max_in_flight`.
//! After a stall the stack holds every connection the pile-up opened; those left untouched at the bottom for a
//! whole [`IDLE_PRUNE_AFTER`] are closed ([`IdleStack`]), so one stall does not keep hundreds of connections
//! (and their buffers: ~20 KiB each in the harness, more in the target) for the rest of a soak.

use super::schedule::next_arrival;
use super::workers::Worker;
use super::{rng_for, Shared, LATE_AFTER};
use crate::http::Connection;
use crate::scenario::{OpenLoad, OpenStage};
use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a free connection may go unused before it is closed.
const IDLE_PRUNE_AFTER: Duration = Duration::from_secs(10);

/// This worker's in-flight slots: permits shared by all workers (`max_in_flight` in all), connections its own
/// (opened on this worker's runtime, unopened until first used).
struct Slots {
    permits: Arc<Semaphore>,
    free: Mutex<IdleStack<Connection>>,
    keep_alive: bool,
}

impl Slots {
    /// Waits for a free slot unless the engine is stopped first.
    async fn acquire(&self, shared: &Shared) -> Option<(OwnedSemaphorePermit, Connection)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                p = self.permits.clone().acquire_owned() => p.ok()?,
                () = shared.stop.cancelled() => return None,
            },
        };
        let conn = self.lock().pop();
        Some((
            permit,
            conn.unwrap_or_else(|| Connection::new(self.keep_alive)),
        ))
    }

    fn release(&self, conn: Connection, permit: OwnedSemaphorePermit) {
        let pruned = {
            let mut free = self.lock();
            free.push(conn);
            free.prune_idle(Instant::now())
        };
        drop(pruned); // closes them outside the lock
        drop(permit);
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, IdleStack<Connection>> {
        self.free.lock()
    }
}

/// A LIFO stack of free items that can tell which ones went unused for a whole window: the bottom
/// `low_water` items (the fewest the stack held since the window began) were never popped during it.
#[derive(Debug)]
struct IdleStack<T> {
    items: Vec<T>,
    low_water: usize,
    window_start: Instant,
}

impl<T> IdleStack<T> {
    fn new(now: Instant) -> Self {
        Self {
            items: Vec::new(),
            low_water: 0,
            window_start: now,
        }
    }

    fn pop(&mut self) -> Option<T> {
        let item = self.items.pop();
        self.low_water = self.low_water.min(self.items.len());
        item
    }

    fn push(&mut self, item: T) {
        self.items.push(item);
    }

    /// Once per [`IDLE_PRUNE_AFTER`] window, removes (and returns, for the caller to drop) the items that stayed
    /// at the bottom, unused, for the whole window.
    fn prune_idle(&mut self, now: Instant) -> Vec<T> {
        if now.duration_since(self.window_start) < IDLE_PRUNE_AFTER {
            return Vec::new();
        }
        let idle: Vec<T> = self.items.drain(..self.low_water).collect();
        self.low_water = self.items.len();
        self.window_start = now;
        idle
    }
}

/// Runs `worker`'s share of the open model (arrivals `worker.index`, `+ worker.count`, ... of the common
/// schedule starting at `start`) until its run time is over or the engine is stopped.
pub(super) async fn drive(
    shared: Arc<Shared>,
    load: OpenLoad,
    seed: u64,
    worker: Worker,
    start: Instant,
    permits: Arc<Semaphore>,
) {
    let stages = if load.stages.is_empty() {
        vec![OpenStage {
            duration: load.run_time,
            rate: load.rate,
            ramp: false,
        }]
    } else {
        load.stages.clone()
    };
    let slots = Arc::new(Slots {
        permits,
        free: Mutex::new(IdleStack::new(Instant::now())),
        keep_alive: shared.keep_alive,
    });
    let mut rng = rng_for(seed, worker.index as u64);
    let mut next = Arrival {
        t: Duration::ZERO,
        due: super::schedule::rate_at(&stages, Duration::ZERO) > 0.0,
        n: 0,
    };
    let mut in_flight = tokio::task::JoinSet::new();
    let mut stopped = false;
    while next.t < load.run_time {
        let mine = next.due && worker.owns(next.n);
        if (mine || !next.due) && !sleep_until(start + next.t, &shared).await {
            stopped = true;
            break;
        }
        if mine {
            let intended = start + next.t;
            let Some((permit, mut conn)) = slots.acquire(&shared).await else {
                stopped = true;
                break;
            };
            if intended.elapsed() > LATE_AFTER {
                shared.counters.late.fetch_add(1, Ordering::Relaxed);
            }
            let pick = shared.mix.pick(&mut rng);
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            let (sender, slots) = (shared.clone(), slots.clone());
            in_flight.spawn(async move {
                sender.send(&mut conn, worker.index, pick, intended).await;
                slots.release(conn, permit);
            });
            while in_flight.try_join_next().is_some() {}
        }
        next = next.after(&stages);
    }
    if !stopped {
        // The last arrivals may be other workers': stay until the run time like them.
        sleep_until(start + load.run_time, &shared).await;
    }
    let now = start.elapsed().min(load.run_time);
    let dropped = count_due(&stages, next, now, worker);
    shared
        .counters
        .dropped
        .fetch_add(dropped, Ordering::Relaxed);
    shared.stop.cancel();
    in_flight.shutdown().await;
}

/// A point of the common arrival schedule: offset `t`, whether an arrival is due there (or only an idle
/// check) and the arrival's number `n` (arrivals are numbered from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Arrival {
    t: Duration,
    due: bool,
    n: u64,
}

impl Arrival {
    fn after(self, stages: &[OpenStage]) -> Arrival {
        let (t, due) = next_arrival(stages, self.t);
        Arrival {
            t,
            due,
            n: self.n + u64::from(self.due),
        }
    }
}

/// Waits until `at` unless the engine is stopped first.
async fn sleep_until(at: Instant, shared: &Shared) -> bool {
    if at <= Instant::now() {
        return !shared.stop.is_cancelled();
    }
    tokio::select! {
        () = tokio::time::sleep_until(at.into()) => true,
        () = shared.stop.cancelled() => false,
    }
}

/// `worker`'s arrivals from `next` (inclusive) that were due before `now` but not sent.
fn count_due(stages: &[OpenStage], mut next: Arrival, now: Duration, worker: Worker) -> u64 {
    let mut n = 0;
    while next.t < now {
        n += u64::from(next.due && worker.owns(next.n));
        next = next.after(stages);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_unused_for_a_whole_window_are_pruned() {
        let t0 = Instant::now();
        let later = |s: u64| t0 + Duration::from_secs(s);
        let mut stack = IdleStack::new(t0);
        // A stall piled up 5 connections; all come back.
        (0..5).for_each(|i| stack.push(i));
        assert!(
            stack.prune_idle(later(3)).is_empty(),
            "before the window ends"
        );
        // First window: low water was 0 (the stack started empty), nothing has been idle a whole window yet.
        assert!(stack.prune_idle(later(10)).is_empty());
        // Steady load afterwards needs 2 at once: the top two are reused, the bottom three never are.
        for _ in 0..50 {
            let (a, b) = (stack.pop().unwrap(), stack.pop().unwrap());
            stack.push(b);
            stack.push(a);
        }
        assert!(
            stack.prune_idle(later(15)).is_empty(),
            "the window is not over"
        );
        assert_eq!(stack.prune_idle(later(20)), vec![0, 1, 2]);
        assert_eq!(stack.items, vec![3, 4]);
        // The survivors stay while they are used.
        let top = stack.pop().unwrap();
        stack.push(top);
        assert!(stack.prune_idle(later(31)).iter().eq([3].iter()));
        assert_eq!(stack.items, vec![4]);
    }

    #[test]
    fn due_arrivals_are_counted_up_to_but_not_at_the_end() {
        let stages = [OpenStage {
            duration: Duration::from_secs(1),
            rate: 100.0,
            ramp: false,
        }];
        let ms = Duration::from_millis;
        let one = Worker { index: 0, count: 1 };
        let (first, second) = (Worker { index: 0, count: 2 }, Worker { index: 1, count: 2 });
        // (next arrival, its number, now, worker) -> due
        let cases = [
            (ms(1000), 100, ms(1000), one, 0),
            (ms(990), 99, ms(1000), one, 1),
            (ms(900), 90, ms(1000), one, 10),
            (ms(0), 0, ms(0), one, 0),
            (ms(900), 90, ms(1000), first, 5),
            (ms(900), 90, ms(1000), second, 5),
            (ms(990), 99, ms(1000), first, 0),
            (ms(990), 99, ms(1000), second, 1),
        ];
        for (t, n, now, worker, want) in cases {
            let next = Arrival { t, due: true, n };
            assert_eq!(
                count_due(&stages, next, now, worker),
                want,
                "t={t:?} n={n} now={now:?} {worker:?}"
            );
        }
    }
}
