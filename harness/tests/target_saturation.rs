//! Blaming the right side on the real binary: a target slower than the open model's rate allows with its
//! `max_in_flight` (1 s per request, 2 in flight, 20 arrivals/s) keeps every slot busy while the harness idles.
//! That is the target's saturation, not an overloaded generator: the run is not INCONCLUSIVE, it says
//! "target saturated: ...", and the arrivals it never sent are failed requests the thresholds judge.

mod common;

use std::time::Duration;

const SLOW_TARGET: &str = r#"
name = "saturated"
seed = 5
[load]
model = "open"
rate = 20
max_in_flight = 2
run_time = "3s"
timeout = "10s"

[[request]]
name = "chat"
method = "POST"
path = "/v1/chat/completions"
body = { model = "gpt-4", messages = [{ role = "user", content = "hi" }], max_tokens = 5 }

[upstream.latency]
base = { fixed = "1s" }

[thresholds]
max_error_percent = 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_target_is_named_and_not_inconclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::scenario_file(tmp.path(), "saturated.toml", SLOW_TARGET);
    let run =
        common::run_scenario(&file, &[], &tmp.path().join("out"), Duration::from_secs(60)).await;
    let (summary, generator) = (&run.summary, &run.summary["engine"]["generator"]);
    let reasons: Vec<&str> = summary["verdict_reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    let context = format!("{reasons:?} {generator} {}", run.stderr);
    assert_eq!(summary["verdict"], "PASS", "{context}");
    assert_eq!(run.code, Some(0), "{context}");
    assert_eq!(generator["overloaded"], false, "{context}");
    assert!(
        !reasons
            .iter()
            .any(|r| r.starts_with("generator overloaded")),
        "{context}"
    );
    let saturated = generator["target_saturated"].as_str().expect(&context);
    assert!(
        saturated.starts_with("target saturated: ")
            && saturated.contains("sends waited for a free slot")
            && saturated.ends_with("never sent (max_in_flight 2 reached)"),
        "{context}"
    );
    assert!(reasons.contains(&saturated), "{context}");
    // 60 arrivals; at most ~2 per second complete, so most are never sent — and still counted as requests.
    let never_sent = summary["engine"]["slot_dropped_sends"]
        .as_u64()
        .expect(&context);
    assert!(never_sent >= 40, "never sent {never_sent}: {context}");
    let aggregate = &summary["aggregate"];
    let (requests, failures) = (
        aggregate["requests"].as_u64().unwrap(),
        aggregate["failures"].as_u64().unwrap(),
    );
    assert!(failures >= never_sent, "{aggregate}");
    assert!(requests >= never_sent + 2, "{aggregate}");
    let errors = summary["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("never sent: "))),
        "{errors:?}"
    );
}
