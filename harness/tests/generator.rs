//! Generator overload on the real binary: an absurd open-model rate the harness cannot send (200 000 req/s with
//! 5000 requests in flight at most: its load threads, not the slots, are the limit) is INCONCLUSIVE with exit 5 and a "generator overloaded" reason, never a
//! PASS; a small rate it can keep passes with `engine.generator.overloaded = false`.

mod common;

use std::time::Duration;

fn scenario(rate: u32, max_in_flight: u32) -> String {
    format!(
        r#"
name = "generator"
seed = 3
[load]
model = "open"
rate = {rate}
max_in_flight = {max_in_flight}
run_time = "3s"
timeout = "5s"

[[request]]
name = "health"
method = "GET"
path = "/health"

[thresholds]
max_error_percent = 50
"#
    )
}

async fn run(dir: &std::path::Path, name: &str, text: &str) -> (Option<i32>, serde_json::Value) {
    let file = common::scenario_file(dir, &format!("{name}.toml"), text);
    let run = common::run_scenario(&file, &[], &dir.join(name), Duration::from_secs(60)).await;
    (run.code, run.summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_rate_is_inconclusive_and_a_small_one_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, summary) = run(tmp.path(), "absurd", &scenario(200_000, 5_000)).await;
    let generator = &summary["engine"]["generator"];
    assert_eq!(code, Some(5), "{} {generator}", summary["verdict_reasons"]);
    assert_eq!(summary["verdict"], "INCONCLUSIVE");
    assert_eq!(generator["overloaded"], true, "{generator}");
    let reasons = summary["verdict_reasons"].as_array().expect("reasons");
    assert!(
        reasons.iter().any(|r| r
            .as_str()
            .is_some_and(|r| r.starts_with("generator overloaded: "))),
        "{reasons:?}"
    );
    assert!(
        generator["late_percent"].as_f64().unwrap_or(0.0) > 1.0
            || generator["dropped_percent"].as_f64().unwrap_or(0.0) > 0.1,
        "{generator}"
    );

    let (code, summary) = run(tmp.path(), "small", &scenario(50, 100)).await;
    let generator = &summary["engine"]["generator"];
    assert_eq!(code, Some(0), "{} {generator}", summary["verdict_reasons"]);
    assert_eq!(generator["overloaded"], false, "{generator}");
    assert!(
        generator["late_percent"].as_f64().is_some_and(|p| p < 5.0),
        "{generator}"
    );
}
