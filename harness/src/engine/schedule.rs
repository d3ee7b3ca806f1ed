//! Pure load schedules: how many users (closed model) or what arrival rate (open model) at a given offset.

use crate::scenario::{ClosedStage, OpenStage};
use std::time::Duration;

/// Longest pause between two arrival checks when the rate is zero.
const IDLE_STEP: Duration = Duration::from_millis(10);

/// Closed-model user count at offset `t`: each stage moves toward its `users` at its spawn rate; after the last
/// stage the last count holds.
pub fn users_at(stages: &[ClosedStage], default_spawn_rate: f64, t: Duration) -> u32 {
    let mut users = 0.0_f64;
    let mut stage_start = Duration::ZERO;
    for s in stages {
        let rate = s.spawn_rate.unwrap_or(default_spawn_rate);
        let stage_end = stage_start + s.duration;
        let dt = if t < stage_end {
            t - stage_start
        } else {
            s.duration
        };
        users = move_towards(users, f64::from(s.users), rate * dt.as_secs_f64());
        if t < stage_end {
            break;
        }
        stage_start = stage_end;
    }
    users.floor() as u32
}

fn move_towards(from: f64, to: f64, max_step: f64) -> f64 {
    if from < to {
        (from + max_step).min(to)
    } else {
        (from - max_step).max(to)
    }
}

/// Open-model arrival rate (requests/s) at offset `t`. A ramping stage goes linearly from the previous stage's
/// rate (0 before the first) to its own; after the last stage its rate holds.
pub fn rate_at(stages: &[OpenStage], t: Duration) -> f64 {
    let mut prev = 0.0;
    let mut stage_start = Duration::ZERO;
    for s in stages {
        let stage_end = stage_start + s.duration;
        if t < stage_end {
            if !s.ramp || s.duration.is_zero() {
                return s.rate;
            }
            let frac = (t - stage_start).as_secs_f64() / s.duration.as_secs_f64();
            return prev + (s.rate - prev) * frac;
        }
        prev = s.rate;
        stage_start = stage_end;
    }
    prev
}

/// The arrival after one at offset `t`: one inter-arrival time of the current rate later (or a short idle
/// step when the rate is zero, so a later stage can start the traffic again).
pub fn next_arrival(stages: &[OpenStage], t: Duration) -> (Duration, bool) {
    let rate = rate_at(stages, t);
    if rate > 0.0 {
        (t + Duration::from_secs_f64(1.0 / rate.min(1e7)), true)
    } else {
        (t + IDLE_STEP, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn closed_users_follow_stages_at_spawn_rate() {
        let stages = vec![
            ClosedStage {
                duration: s(10),
                users: 20,
                spawn_rate: None,
            },
            ClosedStage {
                duration: s(10),
                users: 5,
                spawn_rate: Some(5.0),
            },
        ];
        let cases = [
            (0, 0),
            (1, 4),
            (5, 20),
            (9, 20),
            (10, 20),
            (11, 15),
            (13, 5),
            (19, 5),
            (60, 5),
        ];
        for (t, want) in cases {
            assert_eq!(users_at(&stages, 4.0, s(t)), want, "t={t}");
        }
    }

    #[test]
    fn open_rate_ramps_and_holds() {
        let stages = vec![
            OpenStage {
                duration: s(10),
                rate: 100.0,
                ramp: true,
            },
            OpenStage {
                duration: s(10),
                rate: 100.0,
                ramp: false,
            },
            OpenStage {
                duration: s(10),
                rate: 0.0,
                ramp: true,
            },
        ];
        let cases = [
            (0, 0.0),
            (5, 50.0),
            (10, 100.0),
            (15, 100.0),
            (25, 50.0),
            (40, 0.0),
        ];
        for (t, want) in cases {
            assert!((rate_at(&stages, s(t)) - want).abs() < 1e-9, "t={t}");
        }
    }

    #[test]
    fn arrivals_are_spaced_by_the_rate() {
        let stages = vec![OpenStage {
            duration: s(10),
            rate: 200.0,
            ramp: false,
        }];
        assert_eq!(
            next_arrival(&stages, s(1)),
            (s(1) + Duration::from_millis(5), true)
        );
        let idle = vec![OpenStage {
            duration: s(10),
            rate: 0.0,
            ramp: false,
        }];
        assert_eq!(next_arrival(&idle, s(1)), (s(1) + IDLE_STEP, false));
    }
}
