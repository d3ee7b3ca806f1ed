//! `[behaviour] required_checks` and `key_names` on the real `harness` binary (in-process mock, reference proxy,
//! loopback only, 3 s per run): a required check that cannot be judged never lets a run pass, and `X-Key-Used`
//! names are translated before they are compared.

mod common;

use std::time::Duration;

/// The shared chat + streaming scenario (seed 5, 3 s) against a mock without latency, so streams last a few
/// milliseconds; `behaviour` is the `[behaviour]` table's body.
fn scenario(name: &str, behaviour: &str) -> String {
    common::chat_and_stream_scenario(name, 5, "3s", &format!("\n[behaviour]\n{behaviour}"))
}

async fn run(name: &str, behaviour: &str) -> common::HarnessRun {
    let dir = tempfile::tempdir().unwrap();
    let file = common::scenario_file(
        dir.path(),
        &format!("{name}.toml"),
        &scenario(name, behaviour),
    );
    common::run_scenario(&file, &[], &dir.path().join(name), Duration::from_secs(60)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_check_that_cannot_be_judged_makes_the_run_inconclusive() {
    let run = run(
        "required_buffering",
        "min_fairness = 0.5\nrequired_checks = [\"stream_buffering\"]",
    )
    .await;
    let verdicts = run.summary["engine"]["behaviour"]["verdicts"].to_string();
    assert_eq!(run.code, Some(5), "{verdicts}\n{}", run.stderr);
    assert_eq!(run.summary["verdict"], "INCONCLUSIVE");
    let reasons = run.summary["verdict_reasons"].to_string();
    assert!(
        reasons.contains("required behaviour check stream_buffering was skipped: streams lasted ~"),
        "{reasons}"
    );
    assert!(reasons.contains("too short to tell buffering"), "{reasons}");
    assert_eq!(
        run.summary["engine"]["behaviour"]["unmet_required_checks"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_names_translate_x_key_used_before_comparing() {
    // The reference proxy names keys as the mock does; mapping its `key1` onto `key2` must show up as key2
    // reported twice as often as the mock served it, and the agreement dropping to about 2/3.
    let run = run(
        "key_names",
        "min_key_report_agreement = 0.95\nallow_buffered_streams = true\nkey_names = { \"key1\" = \"key2\" }",
    )
    .await;
    let report = &run.summary["engine"]["behaviour"]["measurements"]["key_report"];
    let keys = report["keys"].as_array().expect("key report").clone();
    let reported = |id: &str| {
        keys.iter()
            .find(|k| k["key"] == id)
            .map_or(0, |k| k["reported"].as_u64().unwrap_or(0))
    };
    assert_eq!(reported("key1"), 0, "{report}");
    assert!(reported("key2") > reported("key3"), "{report}");
    let agreement = report["agreement"].as_f64().expect("agreement");
    assert!((0.5..0.85).contains(&agreement), "{report}");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}
