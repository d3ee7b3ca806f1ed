//! Generator health: a run whose load the harness itself could not deliver proves nothing about the proxy, so
//! its PASS becomes INCONCLUSIVE (exit 5). But a run whose load the *target* could not take is a finding about
//! the target, not an inconclusive run — so late and never-sent arrivals are judged by cause.
//!
//! Signs of an overloaded generator, each against a `[load.generator]` limit:
//! - open model: sends that left more than `LATE_AFTER` (10 ms) behind schedule for the generator's own
//!   reasons (timer or runtime lag while an in-flight slot was free), in % of sends;
//! - open model: arrivals due but never sent because the generator fell behind, in % of scheduled arrivals;
//! - the harness process's mean CPU over the run, in % of the cores it may use (sampled by the resource
//!   monitor; only when the proxy's PID is known).
//!
//! Sends that waited for a free slot (`max_in_flight` reached) and arrivals never sent because every slot
//! stayed busy, beyond the same limits, mean one of two things. A slot stays busy until its response is
//! processed; if the busiest load thread was busy (on a CPU or waiting for one) for at least
//! [`BUSY_THREAD_PERCENT`] of the run, it could not process the responses in time: the generator is overloaded.
//! Otherwise the target is saturated: noted, not INCONCLUSIVE — those requests' latency counts from their
//! intended send time and the never-sent ones are recorded as failed requests (by the engine, which applies
//! the same rule per load thread), so latency and error thresholds judge the target on them. Pure.

use crate::engine::BUSY_THREAD_PERCENT;
use crate::scenario::GeneratorLimits;
use serde::Serialize;

/// What the run tells about the generator.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeneratorLoad {
    /// Open model (late/dropped are only judged there).
    pub open_model: bool,
    /// Requests dispatched.
    pub sent: u64,
    /// Open model: sends more than `LATE_AFTER` behind schedule for the generator's own reasons.
    pub late: u64,
    /// Open model: arrivals due but never sent because the generator fell behind.
    pub dropped: u64,
    /// Open model: sends that waited more than `LATE_AFTER` for a free in-flight slot.
    pub slot_late: u64,
    /// Open model: arrivals never sent because every in-flight slot stayed busy until the run stopped.
    pub slot_dropped: u64,
    /// Open model: the in-flight limit.
    pub max_in_flight: u32,
    /// Open model: the busiest load thread's share of the run on a CPU or waiting for one, in % (`None` when
    /// not measurable).
    pub busiest_thread_percent: Option<f64>,
    /// Mean CPU of the harness process in % of one core (`None` without monitor samples).
    pub cpu_mean_percent: Option<f64>,
    /// Cores the harness may run on.
    pub cores: usize,
}

/// `engine.generator` in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorVerdict {
    /// Sends late for the generator's own reasons, in % of sends (open model).
    pub late_percent: Option<f64>,
    /// Arrivals the generator fell too far behind to send, in % of scheduled arrivals (open model).
    pub dropped_percent: Option<f64>,
    /// Sends that waited more than 10 ms for a free in-flight slot, in % of sends (open model).
    pub slot_late_percent: Option<f64>,
    /// Arrivals never sent because every in-flight slot stayed busy, in % of scheduled arrivals (open model).
    pub slot_dropped_percent: Option<f64>,
    /// The busiest load thread's share of the run on a CPU or waiting for one, in % (open model).
    pub busiest_thread_percent: Option<f64>,
    /// Mean harness CPU in % of its cores.
    pub cpu_percent_of_cores: Option<f64>,
    /// The limits applied.
    pub limits: GeneratorLimits,
    /// Whether any limit was exceeded for the generator's own reasons.
    pub overloaded: bool,
    /// One `generator overloaded: ...` sentence per exceeded limit (they make a PASS INCONCLUSIVE).
    pub reasons: Vec<String>,
    /// `target saturated: ...` when the in-flight limit, not the generator, held the load back (a note, not
    /// INCONCLUSIVE).
    pub target_saturated: Option<String>,
}

/// Judges the generator against `limits`.
pub fn judge(load: &GeneratorLoad, limits: &GeneratorLimits) -> GeneratorVerdict {
    let percent = |part: u64, whole: u64| (whole > 0).then(|| 100.0 * part as f64 / whole as f64);
    let scheduled = load.sent + load.dropped + load.slot_dropped;
    let open = |part: u64, whole: u64| percent(part, whole).filter(|_| load.open_model);
    let late_percent = open(load.late, load.sent);
    let dropped_percent = open(load.dropped, scheduled);
    let slot_late_percent = open(load.slot_late, load.sent);
    let slot_dropped_percent = open(load.slot_dropped, scheduled);
    let cpu_percent_of_cores = load
        .cpu_mean_percent
        .map(|cpu| cpu / load.cores.max(1) as f64);
    let over = |value: Option<f64>, limit: f64| value.filter(|v| *v > limit);
    let checks = [
        (
            over(late_percent, limits.max_late_percent),
            limits.max_late_percent,
            "sends left more than 10 ms behind schedule while an in-flight slot was free",
            "(timer or runtime lag: a CPU-bound generator)",
        ),
        (
            over(dropped_percent, limits.max_dropped_percent),
            limits.max_dropped_percent,
            "arrivals were due but never sent",
            "(the generator's backlog when the run stopped)",
        ),
        (
            over(cpu_percent_of_cores, limits.max_cpu_percent),
            limits.max_cpu_percent,
            "mean harness CPU of its cores",
            "(the harness process, in-process mock included)",
        ),
    ];
    let mut reasons: Vec<String> = checks
        .iter()
        .filter_map(|(value, limit, what, why)| {
            value.map(|v| format!("generator overloaded: {v:.2} % {what} (limit {limit} %) {why}"))
        })
        .collect();
    let slots_short = over(slot_late_percent, limits.max_late_percent).is_some()
        || over(slot_dropped_percent, limits.max_dropped_percent).is_some();
    let mut target_saturated = None;
    if slots_short {
        let (waited, unsent, limit) = (load.slot_late, load.slot_dropped, load.max_in_flight);
        let slot_waits = format!("{waited} sends waited for a free slot, {unsent} never sent");
        match load.busiest_thread_percent {
            Some(busy) if busy < BUSY_THREAD_PERCENT => {
                target_saturated = Some(format!(
                    "target saturated: {slot_waits} (max_in_flight {limit} reached)"
                ));
            }
            Some(busy) => reasons.push(format!(
                "generator overloaded: {slot_waits} while a load thread was {busy:.0} % busy \
                 (it could not process the responses in time; max_in_flight {limit})"
            )),
            None => reasons.push(format!(
                "generator overloaded: {slot_waits} (max_in_flight {limit} reached; the load threads' \
                 busy time is not measurable here, so the generator cannot be ruled out)"
            )),
        }
    }
    GeneratorVerdict {
        late_percent,
        dropped_percent,
        slot_late_percent,
        slot_dropped_percent,
        busiest_thread_percent: load.busiest_thread_percent.filter(|_| load.open_model),
        cpu_percent_of_cores,
        limits: *limits,
        overloaded: !reasons.is_empty(),
        reasons,
        target_saturated,
    }
}

/// Cores this process may run on (its CPU affinity), at least 1.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(sent: u64, late: u64, dropped: u64, cpu: Option<f64>) -> GeneratorLoad {
        GeneratorLoad {
            open_model: true,
            sent,
            late,
            dropped,
            max_in_flight: 100,
            busiest_thread_percent: Some(5.0),
            cpu_mean_percent: cpu,
            cores: 2,
            ..GeneratorLoad::default()
        }
    }

    /// An open-model run that waited for slots: `slot_late` sends waited, `slot_dropped` never left, the
    /// busiest load thread was `busy` % busy.
    fn short_of_slots(slot_late: u64, slot_dropped: u64, busy: Option<f64>) -> GeneratorLoad {
        GeneratorLoad {
            slot_late,
            slot_dropped,
            busiest_thread_percent: busy,
            ..open(1000, 0, 0, Some(1.0))
        }
    }

    #[test]
    fn overload_table() {
        let limits = GeneratorLimits::default();
        let cases = [
            (open(10_000, 50, 0, Some(60.0)), vec![]),
            (open(10_000, 499, 0, None), vec![]),
            (open(10_000, 501, 0, None), vec!["behind schedule"]),
            (open(10_000, 0, 11, None), vec!["never sent"]),
            (open(10_000, 0, 0, Some(190.0)), vec!["CPU"]),
            (
                open(10, 10, 200_000, Some(199.0)),
                vec!["behind", "never", "CPU"],
            ),
            (open(0, 0, 0, None), vec![]),
            // Slot waits on a busy load thread: the generator could not process responses.
            (short_of_slots(830, 0, Some(97.0)), vec!["97 % busy"]),
            (short_of_slots(0, 190, Some(50.0)), vec!["190 never sent"]),
            // ... and where busy time cannot be measured, the generator cannot be ruled out.
            (short_of_slots(830, 190, None), vec!["not measurable"]),
            // Slot waits on an idle load thread are the target's: no generator reason.
            (short_of_slots(830, 190, Some(0.8)), vec![]),
        ];
        for (load, want) in cases {
            let v = judge(&load, &limits);
            assert_eq!(v.reasons.len(), want.len(), "{load:?}: {:?}", v.reasons);
            for (reason, word) in v.reasons.iter().zip(want) {
                assert!(reason.starts_with("generator overloaded: "), "{reason}");
                assert!(reason.contains(word), "{reason} lacks {word}");
            }
            assert_eq!(v.overloaded, !v.reasons.is_empty());
        }
    }

    #[test]
    fn saturation_table() {
        let limits = GeneratorLimits::default();
        // (load) -> target-saturated sentence
        let cases = [
            (
                short_of_slots(830, 190, Some(0.8)),
                Some("target saturated: 830 sends waited for a free slot, 190 never sent (max_in_flight 100 reached)"),
            ),
            (
                short_of_slots(0, 2, Some(10.0)),
                Some("target saturated: 0 sends waited for a free slot, 2 never sent (max_in_flight 100 reached)"),
            ),
            // Within the limits (5 % late, 0.1 % dropped): nothing to say.
            (short_of_slots(50, 1, Some(10.0)), None),
            // A busy load thread: the generator's fault, not the target's.
            (short_of_slots(830, 190, Some(95.0)), None),
            (short_of_slots(830, 190, None), None),
        ];
        for (load, want) in cases {
            let v = judge(&load, &limits);
            assert_eq!(v.target_saturated.as_deref(), want, "{load:?}");
        }
        let v = judge(&short_of_slots(830, 190, Some(0.8)), &limits);
        assert_eq!(v.slot_late_percent, Some(83.0));
        assert!((v.slot_dropped_percent.unwrap() - 100.0 * 190.0 / 1190.0).abs() < 1e-9);
        assert!(!v.overloaded);
    }

    #[test]
    fn the_closed_model_is_judged_on_cpu_only() {
        let mut load = open(100, 100, 100, Some(50.0));
        (load.slot_late, load.slot_dropped, load.open_model) = (100, 100, false);
        let v = judge(&load, &GeneratorLimits::default());
        assert_eq!((v.late_percent, v.dropped_percent), (None, None));
        assert_eq!((v.slot_late_percent, v.slot_dropped_percent), (None, None));
        assert_eq!(v.cpu_percent_of_cores, Some(25.0));
        assert!(!v.overloaded);
        assert_eq!(v.target_saturated, None);
    }
}
