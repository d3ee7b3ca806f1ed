//! Proxy-behaviour measurements of a run against the in-process mock: the mock's ledger (snapshots at the start
//! and end of the load, and at each timeline window's edges) plus the client's own view (reported keys, stream
//! timings, per-second series, answer times by send time in watched windows) turned into `proxy_behaviour`
//! measurements, and the files reports read (`ledger.json`, `timeline.csv`). Pure functions apart from the
//! file writers and [`read_inputs`].
//!
//! A shard (`harness run --shard I/N`) also writes what it collected as `behaviour_inputs.json`: its own
//! client observations are only its share of the traffic the shared mock's ledger counts, so its verdicts
//! compare a part with the whole; `harness merge` adds the shards' inputs into one [`Collected`] and judges
//! it with [`judge`], as one run.

use super::timeline::{Planned, TimelineOutcome, Window};
use crate::engine::{Observed, WatchedSpan};
use crate::error::HarnessError;
use mock_upstream::{LatencyProfile, LedgerSnapshot, MockConfig, Route};
use proxy_behaviour::{
    compare_reported_keys, connection_reuse, counts_between, eligible_keys, every_key_rate_limited,
    exhausted_answers, failover_masking, key_distribution, load_drop_after_peak,
    mock_first_event_delay, recovery, rename_reported_keys, retry_after_compliance,
    stream_pass_through, upstream_window, BehaviourMeasurements, BehaviourReport,
    BehaviourThresholds, ExhaustedAnswers, FailoverMasking, IntervalPoint, LedgerCounts, Recovery,
    RecoveryTolerance, SpanAnswers, StreamRules, WindowCounts,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// File name of the mock's ledger at the end of the load.
pub const LEDGER_FILE: &str = "ledger.json";
/// File name of a shard's behaviour inputs ([`Collected`] without the per-second series, which the merge
/// rebuilds from the shards' `history.hlog`s).
pub const INPUTS_FILE: &str = "behaviour_inputs.json";
/// File name of the fault windows.
pub const TIMELINE_FILE: &str = run_report::input::TIMELINE_FILE;

/// What the behaviour measurements are computed from, collected during the run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Collected {
    /// The mock's effective configuration (eligible keys, latency profile).
    pub config: MockConfig,
    /// Ledger when the load started.
    pub before: LedgerSnapshot,
    /// Ledger when the load ended.
    pub after: LedgerSnapshot,
    /// Client-side observations.
    pub observed: Observed,
    /// The timeline's windows.
    pub timeline: TimelineOutcome,
    /// The windows whose requests the engine counted by send time (see [`watched_spans`]).
    pub watched: Vec<WatchedSpan>,
    /// Per-second points of the load (not persisted: rebuilt from the per-second history).
    #[serde(skip)]
    pub series: Vec<IntervalPoint>,
    /// `(time, users)` per second, closed model only (load-peak recovery); empty otherwise.
    pub users: Vec<(Duration, u32)>,
}

/// The behaviour report of `inputs` judged with `thresholds` (`harness run` and `harness merge` alike).
pub fn judge(inputs: &Collected, thresholds: &BehaviourThresholds) -> BehaviourReport {
    BehaviourReport::new(measure(inputs, thresholds), thresholds)
}

/// Every measurement the data allows (`X-Key-Used` names translated by the thresholds' `key_names` first).
pub fn measure(inputs: &Collected, thresholds: &BehaviourThresholds) -> BehaviourMeasurements {
    let counts = counts_between(&inputs.before, &inputs.after);
    let observed = &inputs.observed;
    let key_report = (!observed.reported_keys.is_empty()).then(|| {
        let reported = rename_reported_keys(&observed.reported_keys, &thresholds.key_names);
        compare_reported_keys(&reported, &counts)
    });
    let streams = (!observed.streams.is_empty()).then(|| {
        let upstream_ttft = mock_first_event_delay(&chat_profile(&inputs.config));
        stream_pass_through(&observed.streams, upstream_ttft, &StreamRules::default())
    });
    let windows = &inputs.timeline.windows;
    let mut recoveries: Vec<Recovery> = windows
        .iter()
        .filter_map(|w| window_recovery(w, &inputs.series))
        .collect();
    if windows.is_empty() {
        recoveries.extend(peak_recovery(&inputs.series, &inputs.users));
    }
    BehaviourMeasurements {
        distribution: Some(key_distribution(&counts, &eligible_keys(&inputs.config))),
        key_report,
        retry_after: Some(
            retry_after_compliance(&counts).with_grace(inputs.config.retry_after_grace),
        ),
        masking: windows.iter().map(window_masking).collect(),
        recovery: recoveries,
        streams,
        exhausted_answer: (!inputs.watched.is_empty()).then(|| exhausted_answer(inputs)),
        connection_reuse: Some(connection_reuse(&inputs.before, &inputs.after)),
    }
}

/// The windows whose requests' answer times the engine keeps by send time: every timeline window when the
/// scenario sets `max_exhausted_answer` (none otherwise, so an unjudged run pays nothing), each ending the
/// limit before the load does — a request sent later could not have been answered within the limit before the
/// load stopped, and would wrongly count as never answered.
pub fn watched_spans(
    planned: &[Planned],
    thresholds: Option<&BehaviourThresholds>,
    run_time: Duration,
) -> Vec<WatchedSpan> {
    let Some(limit) = thresholds.and_then(|t| t.max_exhausted_answer) else {
        return Vec::new();
    };
    let last_send = run_time.saturating_sub(limit);
    planned
        .iter()
        .map(|p| WatchedSpan {
            window: p.index,
            from: p.start,
            to: p.end.min(last_send),
        })
        .filter(|span| span.from < span.to)
        .collect()
}

/// Answer times of the requests sent during the watched windows in which every eligible key answered 429.
fn exhausted_answer(inputs: &Collected) -> ExhaustedAnswers {
    let eligible = eligible_keys(&inputs.config);
    let nothing_sent = SpanAnswers::default();
    let exhausted = inputs
        .timeline
        .windows
        .iter()
        .filter(|w| inputs.watched.iter().any(|s| s.window == w.planned.index))
        .filter(|w| {
            let counts = counts_since(&w.opened.ledger, &w.closed.ledger);
            every_key_rate_limited(&counts, &eligible)
        })
        .map(|w| {
            let answers = inputs.observed.span_answers.get(&w.planned.index);
            (w.planned.label.as_str(), answers.unwrap_or(&nothing_sent))
        });
    exhausted_answers(exhausted)
}

/// The latency profile of chat completions: the route's override where it sets the header delay.
fn chat_profile(config: &MockConfig) -> LatencyProfile {
    let mut profile = config.latency.clone();
    if let Some(base) = config
        .route_latency
        .get(&Route::ChatCompletions)
        .and_then(|p| p.base.clone())
    {
        profile.base = Some(base);
    }
    profile
}

/// Client vs upstream error rates between the window's edges.
fn window_masking(window: &Window) -> FailoverMasking {
    let (open, close) = (&window.opened.client, &window.closed.client);
    let client = WindowCounts {
        requests: close.requests.saturating_sub(open.requests),
        errors: close.errors.saturating_sub(open.errors),
    };
    let upstream = upstream_window(&counts_since(&window.opened.ledger, &window.closed.ledger));
    failover_masking(&window.planned.label, client, upstream)
}

/// Per-key counts from `before` to `after` (keys first seen after `before` count in full).
fn counts_since(before: &LedgerCounts, after: &LedgerCounts) -> LedgerCounts {
    after
        .iter()
        .map(|(id, now)| {
            let delta = before.get(id).map_or(*now, |then| now.since(then));
            (id.clone(), delta)
        })
        .collect()
}

/// Recovery after a window that ended before the load did (a fault lasting to the end has no "after").
fn window_recovery(window: &Window, series: &[IntervalPoint]) -> Option<Recovery> {
    let load_end = series.last()?.end;
    let end = Duration::from_secs_f64(window.closed.at_s.max(0.0));
    let start = Duration::from_secs_f64(window.opened.at_s.max(0.0));
    (end + Duration::from_millis(500) < load_end).then(|| {
        recovery(
            &window.planned.label,
            series,
            start,
            end,
            &RecoveryTolerance::default(),
        )
    })
}

/// Recovery after the load peak of a closed-model run whose users drop after it: the baseline is the
/// intervals before the ramp to the peak began.
fn peak_recovery(series: &[IntervalPoint], users: &[(Duration, u32)]) -> Option<Recovery> {
    let drop = load_drop_after_peak(users)?;
    let peak = users.iter().map(|(_, u)| *u).max()?;
    let first_peak = users.iter().position(|(_, u)| *u == peak)?;
    let mut ramp_start = first_peak;
    while ramp_start > 0 && users[ramp_start - 1].1 < users[ramp_start].1 {
        ramp_start -= 1;
    }
    let fault_start = users[ramp_start].0;
    Some(recovery(
        "after the load peak",
        series,
        fault_start,
        drop,
        &RecoveryTolerance::default(),
    ))
}

/// Writes the mock's ledger as `ledger.json`.
pub fn write_ledger(dir: &Path, ledger: &LedgerSnapshot) -> Result<(), HarnessError> {
    let path = dir.join(LEDGER_FILE);
    let text = serde_json::to_string_pretty(ledger)
        .map_err(|e| HarnessError::io(&path, std::io::Error::other(e)))?;
    std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
}

/// Writes `behaviour_inputs.json` (compact JSON: about 3 kB for a chat load; the engine caps the reported keys
/// and keeps at most 2048 stream samples per generator thread, ~80 kB each).
pub fn write_inputs(dir: &Path, inputs: &Collected) -> Result<(), HarnessError> {
    let path = dir.join(INPUTS_FILE);
    let text = serde_json::to_string(inputs)
        .map_err(|e| HarnessError::io(&path, std::io::Error::other(e)))?;
    std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
}

/// Reads `behaviour_inputs.json` of `dir`: `Ok(None)` when absent, an error naming the file when it does not
/// parse.
pub fn read_inputs(dir: &Path) -> Result<Option<Collected>, String> {
    let path = dir.join(INPUTS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{INPUTS_FILE}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{INPUTS_FILE}: {e}")),
    }
}

/// Writes `timeline.csv` (run-report's format: `start_s,end_s,label`, seconds since the start of the load).
pub fn write_timeline(dir: &Path, timeline: &TimelineOutcome) -> Result<(), HarnessError> {
    use run_report::input::timeline::{write, FaultWindow};
    let path = dir.join(TIMELINE_FILE);
    let windows: Vec<FaultWindow> = timeline
        .windows
        .iter()
        .map(|w| FaultWindow {
            start_s: round_ms(w.opened.at_s),
            end_s: Some(round_ms(w.closed.at_s)),
            label: w.planned.label.clone(),
        })
        .collect();
    let file = std::fs::File::create(&path).map_err(|e| HarnessError::io(&path, e))?;
    write(file, &windows).map_err(|e| HarnessError::io(&path, std::io::Error::other(e)))
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// `engine.timeline` in `summary.json`: windows as they ran, and skipped events.
pub fn timeline_json(timeline: &TimelineOutcome) -> serde_json::Value {
    let windows: Vec<serde_json::Value> = timeline
        .windows
        .iter()
        .map(|w| {
            serde_json::json!({
                "index": w.planned.index,
                "label": w.planned.label,
                "start_s": w.opened.at_s,
                "end_s": w.closed.at_s,
                "planned_start_s": w.planned.start.as_secs_f64(),
                "planned_end_s": w.planned.end.as_secs_f64(),
            })
        })
        .collect();
    serde_json::json!({
        "shortening": "clip",
        "windows": windows,
        "skipped": timeline.skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(end: u64, requests: u64, success_rate: f64, p95_ms: u64) -> IntervalPoint {
        let mut latency = load_stats::LatencyHistogram::aggregate();
        for _ in 0..requests {
            latency.record(Duration::from_millis(p95_ms));
        }
        IntervalPoint {
            end: Duration::from_secs(end),
            requests,
            success_rate,
            p95: Some(Duration::from_millis(p95_ms)),
            latency: Some(latency.pack()),
        }
    }

    #[test]
    fn watched_spans_end_the_limit_before_the_load_and_only_when_judged() {
        let planned = |index, start, end| Planned {
            index,
            label: format!("w{index}"),
            start: Duration::from_secs(start),
            end: Duration::from_secs(end),
        };
        let windows = [planned(0, 10, 25), planned(2, 40, 45), planned(3, 44, 45)];
        let judged = BehaviourThresholds {
            max_exhausted_answer: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let run_time = Duration::from_secs(45);
        let spans = watched_spans(&windows, Some(&judged), run_time);
        let got: Vec<(usize, u64, u64)> = spans
            .iter()
            .map(|s| (s.window, s.from.as_secs(), s.to.as_secs()))
            .collect();
        assert_eq!(
            got,
            [(0, 10, 25), (2, 40, 44)],
            "the last one is all in the final second"
        );
        assert!(watched_spans(&windows, None, run_time).is_empty());
        assert!(
            watched_spans(&windows, Some(&BehaviourThresholds::default()), run_time).is_empty()
        );
    }

    #[test]
    fn peak_recovery_uses_the_ramp_start_and_the_drop() {
        let users: Vec<(Duration, u32)> = [10; 6]
            .into_iter()
            .chain([20, 40, 40])
            .chain([10; 9])
            .enumerate()
            .map(|(i, u)| (Duration::from_secs(i as u64 + 1), u))
            .collect();
        let series: Vec<IntervalPoint> = (1..=18)
            .map(|s| match s {
                7..=10 => point(s, 100, 0.9, 200),
                _ => point(s, 100, 1.0, 10),
            })
            .collect();
        let r = peak_recovery(&series, &users).expect("a peak with a drop");
        assert_eq!(r.from, Duration::from_secs(10));
        let baseline = r.baseline.expect("baseline");
        // Seconds 2..=6: the ramp began at 6 s, the load's first second is left out.
        assert_eq!(baseline.intervals, 5);
        match r.outcome {
            proxy_behaviour::RecoveryOutcome::Recovered { after } => {
                assert_eq!(after, Duration::from_secs(1))
            }
            other => panic!("{other:?}"),
        }
        let flat: Vec<(Duration, u32)> = users.iter().map(|(t, _)| (*t, 10)).collect();
        assert!(peak_recovery(&series, &flat).is_none());
    }

    #[test]
    fn inputs_read_back_as_written_without_the_series() {
        use super::super::timeline::{Mark, Planned};
        let mark = |at_s| Mark {
            at_s,
            ledger: LedgerCounts::default(),
            client: WindowCounts {
                requests: 3,
                errors: 1,
            },
        };
        let mut observed = Observed::default();
        observed.reported_keys.insert("k1".into(), 7);
        let mut answers = SpanAnswers {
            sent: 4,
            ..Default::default()
        };
        answers.answered.record(Duration::from_millis(12));
        observed.span_answers.insert(0, answers);
        let inputs = Collected {
            config: MockConfig::default(),
            before: LedgerSnapshot::default(),
            after: LedgerSnapshot::default(),
            observed,
            timeline: TimelineOutcome {
                windows: vec![Window {
                    planned: Planned {
                        index: 0,
                        label: "k2 down".into(),
                        start: Duration::from_secs(1),
                        end: Duration::from_millis(2500),
                    },
                    opened: mark(1.0),
                    closed: mark(2.5),
                }],
                skipped: Vec::new(),
            },
            watched: vec![WatchedSpan {
                window: 0,
                from: Duration::from_secs(1),
                to: Duration::from_millis(2500),
            }],
            series: vec![point(1, 10, 1.0, 5)],
            users: vec![(Duration::from_secs(1), 4)],
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(read_inputs(dir.path()).unwrap().is_none(), "absent");
        write_inputs(dir.path(), &inputs).unwrap();
        let back = read_inputs(dir.path()).unwrap().expect("written");
        assert!(back.series.is_empty(), "the series is rebuilt by the merge");
        assert_eq!(back.observed, inputs.observed);
        assert_eq!(back.watched, inputs.watched);
        assert_eq!(back.users, inputs.users);
        assert_eq!(
            back.timeline.windows[0].planned,
            inputs.timeline.windows[0].planned
        );
        assert_eq!(back.timeline.windows[0].closed.at_s, 2.5);
        std::fs::write(dir.path().join(INPUTS_FILE), "{").unwrap();
        let err = read_inputs(dir.path()).unwrap_err();
        assert!(err.starts_with("behaviour_inputs.json: "), "{err}");
    }

    #[test]
    fn window_masking_compares_the_deltas_of_both_sides() {
        use super::super::timeline::{Mark, Planned};
        use proxy_behaviour::KeyCounts;
        let counts = |pairs: &[(&str, u64, u64)]| -> LedgerCounts {
            pairs
                .iter()
                .map(|(id, requests, failures)| {
                    let c = KeyCounts {
                        requests: *requests,
                        failures: *failures,
                        ..Default::default()
                    };
                    (id.to_string(), c)
                })
                .collect()
        };
        let mark = |at_s, ledger, requests, errors| Mark {
            at_s,
            ledger,
            client: WindowCounts { requests, errors },
        };
        let window = Window {
            planned: Planned {
                index: 0,
                label: "k2 down".into(),
                start: Duration::from_secs(1),
                end: Duration::from_secs(2),
            },
            opened: mark(1.0, counts(&[("k1", 5, 0)]), 10, 1),
            closed: mark(2.0, counts(&[("k1", 50, 10), ("k2", 10, 10)]), 110, 3),
        };
        let m = window_masking(&window);
        assert_eq!(m.window, "k2 down");
        assert_eq!((m.client.requests, m.client.errors), (100, 2));
        assert_eq!((m.upstream.requests, m.upstream.errors), (55, 20));
        let expected = 1.0 - 0.02 / (20.0 / 55.0);
        assert!((m.masking.unwrap() - expected).abs() < 1e-9, "{m:?}");
    }
}
