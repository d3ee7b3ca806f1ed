//! How fast the fixture serves, independently of its defect: sub-millisecond by default, or slow and unsteady
//! like a real proxy written in a slower stack.
//!
//! Verdicts that pass only against a sub-millisecond proxy prove little: a user's proxy takes milliseconds per
//! request, serves a bounded number at once and stops the world now and then (a garbage collector, a blocked event
//! loop). The three knobs add exactly that, to any defect (or to none):
//! - **service time**: every request waits this long (an async sleep) before it is forwarded;
//! - **bounded concurrency**: a request needs one of N permits, held until its response body is finished — like a
//!   small worker pool, the others queue;
//! - **pauses**: from the process start, every `pause_every` the fixture stops for `pause_for`; while paused no
//!   request starts, is forwarded or answered, and no body chunk is sent.
//!
//! The pause schedule is pure ([`PauseSchedule::remaining`]), so it is unit-tested without sleeping.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tokio::sync::Semaphore;

/// Pause flags the fixture cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// A pause at least as long as its period would never end.
    #[error("--pause-for ({pause_for:?}) must be shorter than --pause-every ({pause_every:?}) and longer than 0")]
    PauseNotShorterThanPeriod {
        /// `--pause-every`.
        pause_every: Duration,
        /// `--pause-for`.
        pause_for: Duration,
    },
}

/// Stop-the-world pauses: `[k·every, k·every + length)` since the process started, for k = 1, 2, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseSchedule {
    every: Duration,
    length: Duration,
}

impl PauseSchedule {
    /// A pause of `length` every `every`; `length` must be in `(0, every)`.
    pub fn new(every: Duration, length: Duration) -> Result<Self, PaceError> {
        if length.is_zero() || length >= every {
            return Err(PaceError::PauseNotShorterThanPeriod {
                pause_every: every,
                pause_for: length,
            });
        }
        Ok(PauseSchedule { every, length })
    }

    /// How long the pause that covers `elapsed` (time since the process started) still lasts; zero between pauses.
    pub fn remaining(&self, elapsed: Duration) -> Duration {
        let every = self.every.as_nanos();
        let period = elapsed.as_nanos() / every;
        let into = elapsed.as_nanos() % every;
        if period == 0 || into >= self.length.as_nanos() {
            return Duration::ZERO;
        }
        // `into` < `length`, a Duration, so it fits in u64 nanoseconds.
        self.length - Duration::from_nanos(into as u64)
    }
}

/// The fixture's pace: service time, worker permits and pauses (each optional).
#[derive(Debug)]
pub struct Pace {
    service_time: Duration,
    workers: Option<Arc<Semaphore>>,
    pauses: Option<PauseSchedule>,
    started: Instant,
}

impl Pace {
    /// A pace from the fixture's flags; the pause clock starts now.
    pub fn new(
        service_time: Duration,
        max_concurrency: Option<NonZeroUsize>,
        pauses: Option<PauseSchedule>,
    ) -> Self {
        Pace {
            service_time,
            workers: max_concurrency.map(|n| Arc::new(Semaphore::new(n.get()))),
            pauses,
            started: Instant::now(),
        }
    }

    /// True when no knob is set: requests pass straight through.
    fn is_immediate(&self) -> bool {
        self.service_time.is_zero() && self.workers.is_none() && self.pauses.is_none()
    }

    /// Returns once no pause is in progress.
    async fn wait_out_pause(&self) {
        let Some(pauses) = self.pauses else { return };
        loop {
            let left = pauses.remaining(self.started.elapsed());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left).await;
        }
    }
}

/// Middleware: queue for a worker, serve the service time, forward, and pace the response body; the worker is
/// released when the body is finished (or dropped by a client that went away).
pub async fn paced(State(pace): State<Arc<Pace>>, request: Request, next: Next) -> Response {
    if pace.is_immediate() {
        return next.run(request).await;
    }
    let worker = match &pace.workers {
        // The semaphore is never closed, so acquiring fails only if it were; then serve unbounded.
        Some(workers) => workers.clone().acquire_owned().await.ok(),
        None => None,
    };
    pace.wait_out_pause().await;
    if !pace.service_time.is_zero() {
        tokio::time::sleep(pace.service_time).await;
        pace.wait_out_pause().await;
    }
    let response = next.run(request).await;
    pace.wait_out_pause().await;
    let (parts, body) = response.into_parts();
    let chunks = body.into_data_stream().then(move |chunk| {
        let _held_until_the_body_ends = &worker;
        let pace = pace.clone();
        async move {
            pace.wait_out_pause().await;
            chunk
        }
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn pause_schedule_table() {
        let schedule = PauseSchedule::new(ms(3000), ms(150)).unwrap();
        // (elapsed, remaining pause)
        let cases = [
            (0, 0),
            (100, 0),
            (2999, 0),
            (3000, 150),
            (3001, 149),
            (3149, 1),
            (3150, 0),
            (5999, 0),
            (6000, 150),
            (6100, 50),
            (90_000, 150),
        ];
        for (elapsed, remaining) in cases {
            assert_eq!(
                schedule.remaining(ms(elapsed)),
                ms(remaining),
                "at {elapsed} ms"
            );
        }
    }

    #[test]
    fn a_pause_must_be_shorter_than_its_period_and_not_empty() {
        let cases = [
            (3000, 150, true),
            (3000, 2999, true),
            (3000, 3000, false),
            (3000, 4000, false),
            (3000, 0, false),
        ];
        for (every, length, ok) in cases {
            let result = PauseSchedule::new(ms(every), ms(length));
            assert_eq!(result.is_ok(), ok, "every {every} ms, for {length} ms");
        }
        let message = PauseSchedule::new(ms(100), ms(100))
            .unwrap_err()
            .to_string();
        assert!(message.contains("--pause-for"), "{message}");
    }

    #[tokio::test]
    async fn workers_are_held_until_the_body_ends() {
        let pace = Arc::new(Pace::new(Duration::ZERO, NonZeroUsize::new(1), None));
        let app = axum::Router::new()
            .fallback(|| async { "body" })
            .layer(axum::middleware::from_fn_with_state(pace.clone(), paced));
        let workers = pace.workers.clone().unwrap();
        let response = tower::ServiceExt::oneshot(app, Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(
            workers.available_permits(),
            0,
            "held while the body is unread"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"body");
        assert_eq!(workers.available_permits(), 1, "released at the body's end");
    }
}
