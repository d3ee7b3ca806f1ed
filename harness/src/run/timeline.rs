//! `[[timeline]]`: fault rules switched on and off in the mock (in-process, or external through its admin API)
//! at offsets of the load clock.
//!
//! Shortened runs (`-t`) **clip**: offsets are never scaled; an event whose `at` is at or after the end of the
//! load is skipped (and listed as skipped), and a window still open when the load ends is closed then. Each
//! window's opening and closing take a ledger snapshot and the client's completed/failed counts, which the
//! failover-masking verdict compares. Times are seconds since the start of the load.

use crate::engine::Counters;
use crate::scenario::TimelineEvent;
use crate::sut::MockHandle;
use proxy_behaviour::{ledger_counts, LedgerCounts, WindowCounts};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One planned window (after clipping to the run time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// Index in the scenario's `[[timeline]]`.
    pub index: usize,
    /// Shown in `timeline.csv` and reports.
    pub label: String,
    /// When the fault goes on.
    pub start: Duration,
    /// When it goes off (clipped to the end of the load).
    pub end: Duration,
}

/// Windows to run and events skipped because they start at or after the end of the load (pure).
pub fn plan(events: &[TimelineEvent], run_time: Duration) -> (Vec<Planned>, Vec<Skipped>) {
    let (mut planned, mut skipped) = (Vec::new(), Vec::new());
    for (index, event) in events.iter().enumerate() {
        let label = label(event);
        if event.at >= run_time {
            skipped.push(Skipped {
                index,
                label,
                at_s: event.at.as_secs_f64(),
                reason: format!("starts at or after the end of the load ({run_time:?})"),
            });
            continue;
        }
        let end = event
            .duration
            .map_or(run_time, |d| (event.at + d).min(run_time));
        planned.push(Planned {
            index,
            label,
            start: event.at,
            end,
        });
    }
    (planned, skipped)
}

/// The event's label, or one derived from its rule (`k2 rate_limit`, `all keys overloaded`).
pub fn label(event: &TimelineEvent) -> String {
    if let Some(label) = &event.label {
        return label.clone();
    }
    let keys = if event.fault.keys.is_empty() {
        "all keys".to_string()
    } else {
        event.fault.keys.join("+")
    };
    let mut text = format!("{keys} {}", event.fault.action);
    if let Some(p) = event.fault.probability {
        text.push_str(&format!(" {:.0}%", p * 100.0));
    }
    text
}

/// An event that did not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Index in `[[timeline]]`.
    pub index: usize,
    /// Label.
    pub label: String,
    /// Its offset, seconds.
    pub at_s: f64,
    /// Why.
    pub reason: String,
}

/// One side of a window boundary: the mock's ledger and the client's counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds since the start of the load.
    pub at_s: f64,
    /// The mock's per-key counters then (counts only: the fault sequences stay out of memory).
    pub ledger: LedgerCounts,
    /// Client requests completed / failed then.
    pub client: WindowCounts,
}

/// A window as it actually ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    /// The plan.
    pub planned: Planned,
    /// When the rule went on.
    pub opened: Mark,
    /// When it went off.
    pub closed: Mark,
}

/// What the timeline did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TimelineOutcome {
    /// Windows that ran.
    pub windows: Vec<Window>,
    /// Events that did not run (clipped, or the mock refused the rule, or the load stopped first).
    pub skipped: Vec<Skipped>,
}

impl TimelineOutcome {
    /// Nothing can be switched without a mock under the harness's control (`--target` without `--upstream`):
    /// every planned window is skipped.
    pub fn without_mock(planned: Vec<Planned>) -> TimelineOutcome {
        let skipped = planned
            .into_iter()
            .map(|p| Skipped {
                index: p.index,
                at_s: p.start.as_secs_f64(),
                label: p.label,
                reason: "no mock under the harness's control (--target without --upstream): faults cannot be \
                         switched"
                    .into(),
            })
            .collect();
        TimelineOutcome {
            windows: Vec::new(),
            skipped,
        }
    }
}

/// Runs the windows against `mock` on the load clock `origin` until all are closed or `load_done` fires (then
/// open windows are closed at once and windows not yet opened are skipped). With `switches_faults` false (a
/// shard other than 0: shard 0 switches the faults at the same wall-clock times) the windows are only marked
/// — the ledger read at their edges — and the mock's rules are left alone.
pub async fn drive(
    mock: &MockHandle,
    events: &[TimelineEvent],
    planned: Vec<Planned>,
    (origin, switches_faults): (Instant, bool),
    counters: &Counters,
    load_done: &CancellationToken,
) -> TimelineOutcome {
    let mut outcome = TimelineOutcome::default();
    let marks = Marks {
        mock,
        origin,
        counters,
    };
    let mut open: Vec<(Planned, Option<String>, Mark)> = Vec::new();
    let mut pending = planned;
    pending.sort_by_key(|p| p.start);
    let mut pending = pending.into_iter().peekable();
    loop {
        let next_open = pending.peek().map(|p| p.start);
        let next_close = open.iter().map(|(p, _, _)| p.end).min();
        let Some(due) = [next_open, next_close].into_iter().flatten().min() else {
            break;
        };
        let stopped = tokio::select! {
            () = tokio::time::sleep_until((origin + due).into()) => false,
            () = load_done.cancelled() => true,
        };
        if stopped {
            break;
        }
        // Close before open, so back-to-back windows do not overlap.
        while let Some(i) = open.iter().position(|(p, _, _)| p.end <= due) {
            let (planned, id, opened) = open.swap_remove(i);
            outcome
                .windows
                .push(marks.close(planned, id.as_deref(), opened).await);
        }
        while pending.peek().is_some_and(|p| p.start <= due) {
            let Some(p) = pending.next() else { break };
            let mut rule = events[p.index].fault.clone();
            rule.id = None;
            let opened = marks.mark().await;
            let added = match switches_faults {
                true => mock.add_rule(rule).await.map(Some),
                false => Ok(None),
            };
            match added {
                Ok(id) => open.push((p, id, opened)),
                Err(e) => outcome.skipped.push(Skipped {
                    index: p.index,
                    at_s: p.start.as_secs_f64(),
                    label: p.label,
                    reason: format!("the mock refused the rule: {e}"),
                }),
            }
        }
    }
    for (planned, id, opened) in open {
        outcome
            .windows
            .push(marks.close(planned, id.as_deref(), opened).await);
    }
    outcome.skipped.extend(pending.map(|p| Skipped {
        index: p.index,
        at_s: p.start.as_secs_f64(),
        label: p.label,
        reason: "the load stopped before it started".into(),
    }));
    outcome.windows.sort_by_key(|w| w.planned.start);
    outcome
}

/// Takes the window-edge marks: the mock's ledger counts and the client's counts, on the load clock.
struct Marks<'a> {
    mock: &'a MockHandle,
    origin: Instant,
    counters: &'a Counters,
}

impl Marks<'_> {
    /// A mark now. A ledger the mock cannot deliver (an external mock gone away) counts as empty, with a
    /// warning: the window's masking figures are then wrong, and the end-of-run ledger says so too.
    async fn mark(&self) -> Mark {
        let ledger = match self.mock.ledger().await {
            Ok(l) => ledger_counts(&l),
            Err(e) => {
                tracing::warn!("timeline: cannot read the mock's ledger: {e}");
                LedgerCounts::default()
            }
        };
        Mark {
            at_s: self.origin.elapsed().as_secs_f64(),
            ledger,
            client: WindowCounts {
                requests: self.counters.completed.load(Ordering::Relaxed),
                errors: self.counters.failed.load(Ordering::Relaxed),
            },
        }
    }

    /// Removes the window's rule (when this run added it) and closes it.
    async fn close(&self, planned: Planned, id: Option<&str>, opened: Mark) -> Window {
        if let Some(id) = id {
            if let Err(e) = self.mock.remove_rule(id).await {
                tracing::warn!("timeline: cannot remove rule {id} ({}): {e}", planned.label);
            }
        }
        Window {
            planned,
            opened,
            closed: self.mark().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mock_upstream::{FaultKind, FaultRule};

    fn event(at: u64, dur: Option<u64>, keys: &[&str]) -> TimelineEvent {
        TimelineEvent {
            at: Duration::from_secs(at),
            duration: dur.map(Duration::from_secs),
            label: None,
            fault: FaultRule {
                keys: keys.iter().map(|k| k.to_string()).collect(),
                ..FaultRule::new(FaultKind::RateLimit)
            },
        }
    }

    #[test]
    fn plan_clips_to_the_run_time() {
        let events = [
            event(2, Some(3), &["k2"]),
            event(8, Some(10), &[]),
            event(9, None, &["k1", "k3"]),
            event(10, Some(1), &["k1"]),
            event(30, Some(1), &["k1"]),
        ];
        let (planned, skipped) = plan(&events, Duration::from_secs(10));
        let got: Vec<(usize, u64, u64, &str)> = planned
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.start.as_secs(),
                    p.end.as_secs(),
                    p.label.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 2, 5, "k2 rate_limit"),
                (1, 8, 10, "all keys rate_limit"),
                (2, 9, 10, "k1+k3 rate_limit"),
            ]
        );
        assert_eq!(
            skipped.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn labels_name_keys_action_and_probability() {
        let mut e = event(0, None, &["k2"]);
        e.fault.probability = Some(0.25);
        assert_eq!(label(&e), "k2 rate_limit 25%");
        e.label = Some("key 2 throttled".into());
        assert_eq!(label(&e), "key 2 throttled");
    }
}
