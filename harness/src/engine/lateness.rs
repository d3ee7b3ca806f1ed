//! Whose fault a late open-model send is: the generator's or the target's (pure).
//!
//! Latency is measured from each arrival's intended send time so that a stalled target cannot hide its queueing
//! (coordinated omission). But a send also leaves late for reasons that are the generator's own: the timer wakes
//! the scheduler up to a tick (1 ms) after the intended instant, and a busy runtime adds more. Counting that as
//! the target's latency turns a 0.2 ms target into a 1.2 ms one. So each send's lateness is split:
//! - **target**: the part spent while every in-flight slot was busy (`max_in_flight` reached) — the scheduler
//!   waited for a slot, for this arrival or for an earlier one it had to send first. A perfect generator would
//!   have waited just as long, so this part stays in the latency;
//! - **generator**: the rest (timer and runtime lag while a slot was free), left out of the latency and judged
//!   on its own as generator health.
//!
//! The target's part is taken as the time from the intended instant to the end of the scheduler's latest wait
//! for a slot, so a timer lag just before that wait counts as the target's too; it is at most a timer tick.

use std::time::{Duration, Instant};

/// A send counts as late when one side's part of its lateness exceeds this.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// A load thread busy (on a CPU or waiting for one) for at least this share of the run is itself the
/// bottleneck of its slot waits: a slot stays busy until its response is processed, and such a thread
/// processes them late. A generator waiting for a slowed-down target is nearly idle.
pub const BUSY_THREAD_PERCENT: f64 = 50.0;

/// Whether a load thread busy `busy_permille` ‰ of the run kept up with its responses, so that its waits for
/// a free slot are the target's. Not measurable (`None`): the generator cannot be ruled out.
pub(crate) fn thread_kept_up(busy_permille: Option<u64>) -> bool {
    busy_permille.is_some_and(|p| (p as f64) < BUSY_THREAD_PERCENT * 10.0)
}

/// One send's lateness, split by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendDelay {
    /// Timer and runtime lag while a slot was free.
    pub(crate) generator: Duration,
    /// Waiting for a free in-flight slot.
    pub(crate) target: Duration,
}

impl SendDelay {
    /// Splits the lateness of a send intended at `intended` that left at `sent`; `slot_freed` is when the
    /// scheduler last got a slot after waiting for one (`None` when it never waited).
    pub(crate) fn attribute(intended: Instant, slot_freed: Option<Instant>, sent: Instant) -> Self {
        let late = sent.saturating_duration_since(intended);
        let target = slot_freed
            .map_or(Duration::ZERO, |freed| {
                freed.saturating_duration_since(intended)
            })
            .min(late);
        SendDelay {
            generator: late - target,
            target,
        }
    }

    /// The instant the target's latency counts from: the intended send time plus the generator's own lag.
    pub(crate) fn origin(&self, intended: Instant) -> Instant {
        intended + self.generator
    }

    /// Whether the generator's own lag made this send late.
    pub(crate) fn late_for_generator(&self) -> bool {
        self.generator > LATE_AFTER
    }

    /// Whether waiting for a free slot made this send late.
    pub(crate) fn late_for_slot(&self) -> bool {
        self.target > LATE_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_or_unmeasured_thread_did_not_keep_up() {
        let cases = [
            (Some(8), true),
            (Some(499), true),
            (Some(500), false),
            (Some(990), false),
            (None, false),
        ];
        for (busy, kept_up) in cases {
            assert_eq!(thread_kept_up(busy), kept_up, "{busy:?}");
        }
    }

    #[test]
    fn lateness_is_split_between_timer_lag_and_slot_waits() {
        let t0 = Instant::now();
        let at = |ms: f64| t0 + Duration::from_secs_f64(ms / 1000.0);
        let ms = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
        // (intended, slot freed, sent) -> (generator, target, late for generator, late for slot)
        let cases = [
            // Timer tick: a free slot, 0.9 ms late — all the generator's, not late.
            (at(10.0), None, at(10.9), (ms(0.9), ms(0.0), false, false)),
            // A slot wait that ended before the arrival was due does not count.
            (
                at(10.0),
                Some(at(5.0)),
                at(10.9),
                (ms(0.9), ms(0.0), false, false),
            ),
            // Waited for a slot until 300 ms, sent 0.2 ms later: 300 ms are the target's.
            (
                at(10.0),
                Some(at(310.0)),
                at(310.2),
                (ms(0.2), ms(300.0), false, true),
            ),
            // Queued behind an earlier arrival's slot wait, then a busy runtime lagged 20 ms more.
            (
                at(10.0),
                Some(at(50.0)),
                at(70.0),
                (ms(20.0), ms(40.0), true, true),
            ),
            // A CPU-bound generator with free slots: 30 ms, all its own.
            (at(10.0), None, at(40.0), (ms(30.0), ms(0.0), true, false)),
            // Sent on time or early: no lateness.
            (
                at(10.0),
                Some(at(12.0)),
                at(10.0),
                (ms(0.0), ms(0.0), false, false),
            ),
        ];
        for (intended, freed, sent, (generator, target, gen_late, slot_late)) in cases {
            let d = SendDelay::attribute(intended, freed, sent);
            let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(1);
            assert!(
                close(d.generator, generator),
                "{d:?} generator != {generator:?}"
            );
            assert!(close(d.target, target), "{d:?} target != {target:?}");
            assert_eq!(d.late_for_generator(), gen_late, "{d:?}");
            assert_eq!(d.late_for_slot(), slot_late, "{d:?}");
            let origin = d.origin(intended);
            assert!(
                close(origin - intended, sent - d.target - intended),
                "{d:?}: origin"
            );
        }
    }
}
