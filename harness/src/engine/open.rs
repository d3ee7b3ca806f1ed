//! Open model: arrivals on a schedule, latency measured from each arrival's *intended* send time.
//!
//! When the target stalls, in-flight requests pile up to `max_in_flight`; later arrivals wait for a slot and
//! are sent late, but their latency still counts from when they should have left — the stall's queueing shows
//! up in the percentiles instead of being hidden (coordinated omission). The generator's own lag (timer tick,
//! busy runtime) is not the target's and is left out of the latency ([`SendDelay`]). Late sends are counted by
//! cause; arrivals still waiting when the run ends are counted as dropped — those that waited for a slot are
//! the target's and are also recorded as failed requests.
//!
//! Each in-flight slot owns a connection. Free slots are a stack, so the most recently used (warm) connection
//! goes out first and a run needing few concurrent requests opens few connections whatever `max_in_flight`.
//! After a stall the stack holds every connection the pile-up opened; those left untouched at the bottom for a
//! whole [`IDLE_PRUNE_AFTER`] are closed ([`IdleStack`]), so one stall does not keep hundreds of connections
//! (and their buffers: ~20 KiB each in the harness, more in the target) for the rest of a soak.

use super::lateness::{thread_kept_up, SendDelay};
use super::schedule::next_arrival;
use super::workers::{ThreadBusy, Worker};
use super::{rng_for, Shared};
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
    /// Takes a free slot, waiting for one if every slot is busy (then `slot_freed` becomes the moment it got
    /// one), unless the engine is stopped first.
    async fn acquire(
        &self,
        shared: &Shared,
        slot_freed: &mut Option<Instant>,
    ) -> Option<(OwnedSemaphorePermit, Connection)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let permit = tokio::select! {
                    p = self.permits.clone().acquire_owned() => p.ok()?,
                    () = shared.stop.cancelled() => return None,
                };
                *slot_freed = Some(Instant::now());
                permit
            }
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
    let busy = ThreadBusy::start();
    let mut rng = rng_for(seed, worker.index as u64);
    let mut next = Arrival {
        t: Duration::ZERO,
        due: super::schedule::rate_at(&stages, Duration::ZERO) > 0.0,
        n: 0,
    };
    let mut in_flight = tokio::task::JoinSet::new();
    // When the scheduler last got a slot after waiting for one; while it is still waiting at the stop, the
    // stop itself (every slot stayed busy until then).
    let mut slot_freed = None;
    let mut stopped = false;
    while next.t < load.run_time {
        let mine = next.due && worker.owns(next.n);
        if (mine || !next.due) && !sleep_until(start + next.t, &shared).await {
            stopped = true;
            break;
        }
        if mine {
            let intended = start + next.t;
            let Some((permit, mut conn)) = slots.acquire(&shared, &mut slot_freed).await else {
                slot_freed = Some(Instant::now());
                stopped = true;
                break;
            };
            let pick = shared.mix.pick(&mut rng);
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            let (sender, slots) = (shared.clone(), slots.clone());
            in_flight.spawn(async move {
                let delay = SendDelay::attribute(intended, slot_freed, Instant::now());
                sender.count_lateness(&delay);
                let origin = delay.origin(intended);
                sender.send(&mut conn, worker.index, pick, origin).await;
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
    let slot_freed = slot_freed.map(|at| at.saturating_duration_since(start));
    let unsent = Unsent::split(&stages, next, now, slot_freed, worker);
    let busy = busy.permille();
    account_unsent(&shared, &unsent, busy, load.max_in_flight, worker, &mut rng);
    shared.stop.cancel();
    in_flight.shutdown().await;
}

impl Shared {
    /// Counts a late send under its cause.
    fn count_lateness(&self, delay: &SendDelay) {
        if delay.late_for_generator() {
            self.counters.late.fetch_add(1, Ordering::Relaxed);
        }
        if delay.late_for_slot() {
            self.counters.slot_late.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Notes the worker thread's busy share (`busy` ‰) and counts the arrivals it never sent: when the thread kept
/// up, those that waited for a slot are the target's (recorded as failed requests), the rest the generator's;
/// otherwise all are the generator's.
fn account_unsent(
    shared: &Shared,
    unsent: &Unsent,
    busy: Option<u64>,
    max_in_flight: u32,
    worker: Worker,
    rng: &mut rand_chacha::ChaCha8Rng,
) {
    let counters = &shared.counters;
    counters
        .busiest_thread_permille
        .fetch_max(busy.unwrap_or(0), Ordering::Relaxed);
    if thread_kept_up(busy) {
        counters
            .dropped
            .fetch_add(unsent.generator, Ordering::Relaxed);
        record_never_sent(shared, unsent, max_in_flight, worker, rng);
    } else {
        counters
            .dropped
            .fetch_add(unsent.count(), Ordering::Relaxed);
    }
}

/// Counts the arrivals that waited for a slot until the stop and records each as a failed request (the mix
/// picked as if it had been sent), latency from its intended time to the stop.
fn record_never_sent(
    shared: &Shared,
    unsent: &Unsent,
    max_in_flight: u32,
    worker: Worker,
    rng: &mut rand_chacha::ChaCha8Rng,
) {
    if unsent.target.is_empty() {
        return;
    }
    let why = format!("never sent: all {max_in_flight} in-flight slots (max_in_flight) stayed busy until the run ended");
    let stop = unsent.until;
    for due in &unsent.target {
        let pick = shared.mix.pick(rng);
        shared.record_never_sent(worker.index, pick, stop.saturating_sub(*due), &why);
    }
    let n = unsent.target.len() as u64;
    shared.counters.slot_dropped.fetch_add(n, Ordering::Relaxed);
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

/// `worker`'s arrivals that were due but never sent when the run stopped, by cause.
#[derive(Debug, PartialEq)]
struct Unsent {
    /// Intended offsets of the arrivals due while the scheduler was waiting for a slot (the target's).
    target: Vec<Duration>,
    /// Arrivals due after its latest slot wait ended: the generator had fallen behind on its own.
    generator: u64,
    /// The stop (offset from the start, at most the run time).
    until: Duration,
}

impl Unsent {
    /// Splits `worker`'s arrivals from `next` (inclusive) that were due before `now`: those due before
    /// `slot_freed` (the end of the scheduler's latest wait for a slot, or the stop if it was still waiting)
    /// are the target's, the rest the generator's.
    fn split(
        stages: &[OpenStage],
        mut next: Arrival,
        now: Duration,
        slot_freed: Option<Duration>,
        worker: Worker,
    ) -> Unsent {
        let slot_freed = slot_freed.unwrap_or(Duration::ZERO);
        let mut unsent = Unsent {
            target: Vec::new(),
            generator: 0,
            until: now,
        };
        while next.t < now {
            if next.due && worker.owns(next.n) {
                if next.t < slot_freed {
                    unsent.target.push(next.t);
                } else {
                    unsent.generator += 1;
                }
            }
            next = next.after(stages);
        }
        unsent
    }

    fn count(&self) -> u64 {
        self.target.len() as u64 + self.generator
    }
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
                Unsent::split(&stages, next, now, None, worker).count(),
                want,
                "t={t:?} n={n} now={now:?} {worker:?}"
            );
        }
    }

    #[test]
    fn unsent_arrivals_due_during_a_slot_wait_are_the_targets() {
        let stages = [OpenStage {
            duration: Duration::from_secs(1),
            rate: 100.0,
            ramp: false,
        }];
        let ms = Duration::from_millis;
        let one = Worker { index: 0, count: 1 };
        let next = Arrival {
            t: ms(900),
            due: true,
            n: 90,
        };
        // (end of the latest slot wait) -> (target's, generator's)
        let cases = [
            (None, 0, 10),
            (Some(ms(500)), 0, 10),
            (Some(ms(950)), 5, 5),
            // Still waiting at the stop: the stop is the end of the wait.
            (Some(ms(1000)), 10, 0),
        ];
        for (slot_freed, target, generator) in cases {
            let unsent = Unsent::split(&stages, next, ms(1000), slot_freed, one);
            assert_eq!(
                (unsent.target.len(), unsent.generator),
                (target, generator),
                "{slot_freed:?}"
            );
            assert_eq!(
                unsent.target.first().copied(),
                (target > 0).then_some(ms(900))
            );
            assert_eq!(unsent.until, ms(1000));
        }
    }
}
