//! Splitting a run across recorders (workers, or machines via serialized deltas) gives the same totals as
//! recording it in one place.

use std::time::{Duration, SystemTime};

use load_stats::summary::Summary;
use load_stats::{
    ErrorClass, Outcome, OutcomeResult, Recorder, RunStats, StatsDelta, StreamTiming,
};

fn outcome(i: u64, message: &str) -> Outcome<'_> {
    let names = ["chat", "models", "stream"];
    let name = names[(i % 3) as usize];
    let result = match i % 7 {
        0 => OutcomeResult::Status(429),
        1 => OutcomeResult::Error(ErrorClass::Reset, message),
        _ => OutcomeResult::Status(200),
    };
    let success = matches!(result, OutcomeResult::Status(200));
    Outcome {
        name,
        method: "POST",
        result,
        success,
        latency: Duration::from_micros(200 + (i * 7_919) % 900_000),
        bytes: i % 1_000,
        stream: (name == "stream").then(|| StreamTiming {
            ttfb: Duration::from_micros(100 + i % 50),
            ttft: (!i.is_multiple_of(5)).then(|| Duration::from_micros(300 + i % 900)),
            chunks: (i % 40) as u32,
            max_gap: Duration::from_micros(i % 10_000),
        }),
    }
}

fn summary_json(run: &RunStats) -> serde_json::Value {
    let mut summary =
        serde_json::to_value(Summary::from_run(run, serde_json::Value::Null, Vec::new())).unwrap();
    // Error timestamps depend on the wall clock of each recording.
    for row in summary["errors"].as_array_mut().unwrap() {
        row["first_seen"] = 0.into();
        row["last_seen"] = 0.into();
    }
    summary
}

#[test]
fn split_and_serialized_recording_equals_single_recording() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let messages: Vec<String> = (0..300)
        .map(|i| format!("connection reset by peer #{i}"))
        .collect();

    let mut single = Recorder::new();
    let mut workers = [Recorder::new(), Recorder::new(), Recorder::new()];
    for i in 0..30_000u64 {
        let message = &messages[(i % 300) as usize];
        single.record(&outcome(i, message));
        workers[(i * 31 % 3) as usize].record(&outcome(i, message));
    }

    let mut whole = RunStats::new(t0);
    whole.merge(&single.take());
    whole.close_interval(t0 + Duration::from_secs(10), 3);

    let mut split = RunStats::new(t0);
    for worker in &mut workers {
        let wire = serde_json::to_vec(&worker.take()).unwrap();
        split.merge(&serde_json::from_slice::<StatsDelta>(&wire).unwrap());
    }
    split.close_interval(t0 + Duration::from_secs(10), 3);

    assert_eq!(split.aggregate_report(), whole.aggregate_report());
    assert_eq!(split.request_reports(), whole.request_reports());
    // The bounded error table keeps the same number of rows; which messages are first seen differs by split,
    // but every failure is counted.
    assert_eq!(split.totals().errors.total(), whole.totals().errors.total());
    assert_eq!(
        split.totals().errors.rows().len(),
        whole.totals().errors.rows().len()
    );
    let (mut a, mut b) = (summary_json(&split), summary_json(&whole));
    a["errors"] = serde_json::Value::Null;
    b["errors"] = serde_json::Value::Null;
    assert_eq!(a, b);
}
