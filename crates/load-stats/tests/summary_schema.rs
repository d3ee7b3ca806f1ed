//! `summary.json` produced by the crate validates against the committed `summary.schema.json`.

use std::time::{Duration, SystemTime};

use load_stats::summary::Summary;
use load_stats::thresholds::{evaluate_run, Limits, Thresholds};
use load_stats::{ErrorClass, Outcome, OutcomeResult, Recorder, RunStats, StreamTiming};
use serde_json::Value;

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(document: &Value) {
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "summary does not match the schema:\n{}",
        errors.join("\n")
    );
}

fn as_json(summary: &Summary) -> Value {
    let mut bytes = Vec::new();
    summary.write_json(&mut bytes).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every kind of data the summary can carry: statuses, transport errors, streams (complete, cut, tokenless).
fn rich_run() -> RunStats {
    let t0 = SystemTime::now();
    let mut run = RunStats::new(t0);
    let mut recorder = Recorder::new();
    let stream = |ttft: Option<u64>| {
        Some(StreamTiming {
            ttfb: Duration::from_millis(3),
            ttft: ttft.map(Duration::from_millis),
            chunks: 5,
            max_gap: Duration::from_millis(20),
        })
    };
    let outcomes: [(&str, OutcomeResult<'static>, bool, Option<StreamTiming>); 6] = [
        ("chat", OutcomeResult::Status(200), true, stream(Some(30))),
        (
            "chat",
            OutcomeResult::Error(ErrorClass::StreamCut, "no [DONE]"),
            false,
            stream(Some(30)),
        ),
        (
            "chat",
            OutcomeResult::Error(ErrorClass::Reset, "connection reset"),
            false,
            stream(None),
        ),
        ("models", OutcomeResult::Status(429), false, None),
        ("models", OutcomeResult::Status(200), true, None),
        (
            "health",
            OutcomeResult::Error(ErrorClass::Timeout, "timed out after 5s"),
            false,
            None,
        ),
    ];
    for (name, result, success, stream) in outcomes {
        recorder.record(&Outcome {
            name,
            method: "POST",
            result,
            success,
            latency: Duration::from_millis(120),
            bytes: 64,
            stream,
        });
    }
    recorder.record_chunk_gap("chat", Duration::from_millis(11));
    run.merge(&recorder.take());
    run.close_interval(t0 + Duration::from_secs(1), 3);
    run
}

#[test]
fn rich_summary_matches_schema() {
    let run = rich_run();
    let mut thresholds = Thresholds::users_targets();
    thresholds.requests.insert(
        "never ran".into(),
        Limits {
            min_rps: Some(1.0),
            ..Limits::default()
        },
    );
    let mut summary = Summary::from_run(
        &run,
        serde_json::json!({"scenario": "rich"}),
        evaluate_run(&thresholds, &run),
    );
    summary.verdict = "FAIL".into();
    summary.exit_code = 1;
    summary.verdict_reasons = vec!["p95 above limit".into()];
    summary.leak_report = serde_json::json!({"verdict": "Pass"});
    assert_valid(&as_json(&summary));
}

#[test]
fn empty_run_summary_matches_schema() {
    let run = RunStats::new(SystemTime::UNIX_EPOCH);
    let summary = Summary::from_run(
        &run,
        Value::Null,
        evaluate_run(&Thresholds::users_targets(), &run),
    );
    assert_valid(&as_json(&summary));
}

#[test]
fn schema_rejects_a_renamed_or_missing_field() {
    let run = rich_run();
    let good = as_json(&Summary::from_run(&run, Value::Null, Vec::new()));
    let validator = jsonschema::validator_for(&schema()).unwrap();
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: [Mutation; 3] = [
        ("renamed top-level field", |v| {
            let requests = v["requests"].take();
            v.as_object_mut().unwrap().remove("requests");
            v["request_list"] = requests;
        }),
        ("missing percentile", |v| {
            v["aggregate"]["latency"]["percentiles"]
                .as_object_mut()
                .unwrap()
                .remove("p99");
        }),
        ("unknown status class", |v| {
            v["failures_by_class"] = serde_json::json!({"6xx": 1});
        }),
    ];
    for (what, mutate) in mutations {
        let mut bad = good.clone();
        mutate(&mut bad);
        assert!(!validator.is_valid(&bad), "{what} should be rejected");
    }
}
