//! Generator overload: a run whose load the harness itself could not deliver proves nothing about the proxy,
//! so its PASS becomes INCONCLUSIVE (exit 5). Signs, each against a `[load.generator]` limit:
//! - open model: sends that left more than `LATE_AFTER` (10 ms) behind schedule, in % of sends;
//! - open model: arrivals that were due but never sent, in % of scheduled arrivals;
//! - the harness process's mean CPU over the run, in % of the cores it may use (sampled by the resource
//!   monitor; only when the proxy's PID is known).
//!
//! Late and dropped sends also happen when the target is slow and `max_in_flight` is reached; the latency of
//! those requests is still measured from their intended send time, and a latency threshold then FAILs the run
//! (FAIL wins over INCONCLUSIVE). Pure.

use crate::scenario::GeneratorLimits;
use serde::Serialize;

/// What the run tells about the generator.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeneratorLoad {
    /// Open model (late/dropped are only judged there).
    pub open_model: bool,
    /// Requests dispatched.
    pub sent: u64,
    /// Open model: sends more than `LATE_AFTER` behind schedule.
    pub late: u64,
    /// Open model: arrivals due but never sent.
    pub dropped: u64,
    /// Mean CPU of the harness process in % of one core (`None` without monitor samples).
    pub cpu_mean_percent: Option<f64>,
    /// Cores the harness may run on.
    pub cores: usize,
}

/// `engine.generator` in `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorVerdict {
    /// Late sends in % of sends (open model).
    pub late_percent: Option<f64>,
    /// Dropped arrivals in % of scheduled arrivals (open model).
    pub dropped_percent: Option<f64>,
    /// Mean harness CPU in % of its cores.
    pub cpu_percent_of_cores: Option<f64>,
    /// The limits applied.
    pub limits: GeneratorLimits,
    /// Whether any limit was exceeded.
    pub overloaded: bool,
    /// One `generator overloaded: ...` sentence per exceeded limit.
    pub reasons: Vec<String>,
}

/// Judges the generator against `limits`.
pub fn judge(load: &GeneratorLoad, limits: &GeneratorLimits) -> GeneratorVerdict {
    let percent = |part: u64, whole: u64| (whole > 0).then(|| 100.0 * part as f64 / whole as f64);
    let (late_percent, dropped_percent) = if load.open_model {
        (
            percent(load.late, load.sent),
            percent(load.dropped, load.sent + load.dropped),
        )
    } else {
        (None, None)
    };
    let cpu_percent_of_cores = load
        .cpu_mean_percent
        .map(|cpu| cpu / load.cores.max(1) as f64);
    let checks = [
        (
            late_percent,
            limits.max_late_percent,
            "sends left more than 10 ms behind schedule",
            "(a CPU-bound generator, or max_in_flight reached because the target is slow)",
        ),
        (
            dropped_percent,
            limits.max_dropped_percent,
            "arrivals were due but never sent",
            "(the backlog when the run stopped)",
        ),
        (
            cpu_percent_of_cores,
            limits.max_cpu_percent,
            "mean harness CPU of its cores",
            "(the harness process, in-process mock included)",
        ),
    ];
    let reasons: Vec<String> = checks
        .iter()
        .filter_map(|(value, limit, what, why)| {
            let value = (*value)?;
            (value > *limit).then(|| {
                format!("generator overloaded: {value:.2} % {what} (limit {limit} %) {why}")
            })
        })
        .collect();
    GeneratorVerdict {
        late_percent,
        dropped_percent,
        cpu_percent_of_cores,
        limits: *limits,
        overloaded: !reasons.is_empty(),
        reasons,
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
            cpu_mean_percent: cpu,
            cores: 2,
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
    fn the_closed_model_is_judged_on_cpu_only() {
        let mut load = open(100, 100, 100, Some(50.0));
        load.open_model = false;
        let v = judge(&load, &GeneratorLimits::default());
        assert_eq!((v.late_percent, v.dropped_percent), (None, None));
        assert_eq!(v.cpu_percent_of_cores, Some(25.0));
        assert!(!v.overloaded);
    }
}
