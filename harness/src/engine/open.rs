//! Open model: arrivals on a schedule, latency measured from each arrival's *intended* send time.
//!
//! When the target stalls, in-flight requests pile up to `max_in_flight`; later arrivals wait for a slot and
//! are sent late, but their latency still counts from when they should have left — the stall's queueing shows
//! up in the percentiles instead of being hidden (coordinated omission). Late sends are counted; arrivals still
//! waiting when the run ends are counted as dropped.

use super::schedule::next_arrival;
use super::{rng_for, Shared, LATE_AFTER};
use crate::scenario::{OpenLoad, OpenStage};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Runs the open model until its run time is over or the engine is stopped.
pub(super) async fn drive(shared: Arc<Shared>, load: OpenLoad, seed: u64) {
    let stages = if load.stages.is_empty() {
        vec![OpenStage {
            duration: load.run_time,
            rate: load.rate,
            ramp: false,
        }]
    } else {
        load.stages.clone()
    };
    let slots = Arc::new(Semaphore::new(load.max_in_flight as usize));
    let mut rng = rng_for(seed, 0);
    let start = Instant::now();
    let (mut t, mut arrival) = (
        Duration::ZERO,
        super::schedule::rate_at(&stages, Duration::ZERO) > 0.0,
    );
    let mut seq = 0usize;
    let mut in_flight = tokio::task::JoinSet::new();
    while t < load.run_time {
        let intended = start + t;
        if !sleep_until(intended, &shared).await {
            break;
        }
        if arrival {
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => tokio::select! {
                    p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    () = shared.stop.cancelled() => break,
                },
            };
            if intended.elapsed() > LATE_AFTER {
                shared.counters.late.fetch_add(1, Ordering::Relaxed);
            }
            let pick = shared.mix.pick(&mut rng);
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            let worker = shared.clone();
            in_flight.spawn(async move {
                worker.send(seq, pick, intended).await;
                drop(permit);
            });
            seq = seq.wrapping_add(1);
            while in_flight.try_join_next().is_some() {}
        }
        (t, arrival) = next_arrival(&stages, t);
    }
    let dropped = count_due(&stages, t, arrival, start.elapsed().min(load.run_time));
    shared
        .counters
        .dropped
        .fetch_add(dropped, Ordering::Relaxed);
    shared.stop.cancel();
    in_flight.shutdown().await;
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

/// Arrivals from offset `t` (inclusive when `arrival`) that were due before `now` but not sent.
fn count_due(stages: &[OpenStage], mut t: Duration, mut arrival: bool, now: Duration) -> u64 {
    let mut n = 0;
    while t < now {
        n += u64::from(arrival);
        (t, arrival) = next_arrival(stages, t);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_arrivals_are_counted_up_to_but_not_at_the_end() {
        let stages = [OpenStage {
            duration: Duration::from_secs(1),
            rate: 100.0,
            ramp: false,
        }];
        let ms = Duration::from_millis;
        // (next arrival, now) -> due
        let cases = [
            (ms(1000), ms(1000), 0),
            (ms(990), ms(1000), 1),
            (ms(900), ms(1000), 10),
            (ms(0), ms(0), 0),
        ];
        for (t, now, want) in cases {
            assert_eq!(
                count_due(&stages, t, true, now),
                want,
                "t={t:?} now={now:?}"
            );
        }
    }
}
