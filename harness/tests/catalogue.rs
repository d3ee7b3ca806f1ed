//! The failure scenarios of the catalogue, shortened with `-t`, against the default system under test (the
//! in-process mock and the reference proxy): each must pass (exit 0) with no failed behaviour verdict, and the
//! checks each scenario is about must actually have been judged. Two runs at a time, ~20 s each.

use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_harness");

/// Scenario, `-t`, and the behaviour checks that must have passed (not skipped) in the shortened run.
const CASES: [(&str, &str, &[&str]); 6] = [
    (
        "key_rate_limited",
        "22s",
        &["retry_after", "failover_masking", "fairness", "key_report"],
    ),
    ("all_keys_exhausted", "30s", &["retry_after", "recovery"]),
    ("upstream_outage", "25s", &["recovery", "fairness"]),
    (
        "stream_interrupted",
        "18s",
        &["stream_buffering", "ttft_overhead"],
    ),
    (
        "key_revoked",
        "25s",
        &["key_report", "retry_after", "stream_buffering"],
    ),
    ("burst_then_recover", "40s", &["recovery", "fairness"]),
];

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))
}

async fn run(dir: &Path, name: &str, run_time: &str) -> (Option<i32>, serde_json::Value, String) {
    let out = dir.join(name);
    let child = Command::new(BIN)
        .arg("run")
        .arg(scenario(name))
        .args(["-t", run_time, "-q", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .output();
    let o = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("harness finished")
        .expect("spawn harness");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let text = std::fs::read_to_string(out.join("summary.json"))
        .unwrap_or_else(|e| panic!("{name}: summary.json: {e}; {stderr}"));
    (
        o.status.code(),
        serde_json::from_str(&text).expect("JSON"),
        stderr,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortened_failure_scenarios_pass_against_the_reference_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = futures::stream::iter(CASES)
        .map(|(name, t, checks)| {
            let dir = tmp.path().to_path_buf();
            async move { (name, checks, run(&dir, name, t).await) }
        })
        .buffer_unordered(2)
        .collect::<Vec<_>>()
        .await;
    for (name, checks, (code, summary, stderr)) in runs {
        let verdicts = summary["engine"]["behaviour"]["verdicts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let why = format!("{name}: {}\n{stderr}", summary["verdict_reasons"]);
        assert_eq!(code, Some(0), "{why}");
        assert!(verdicts.iter().all(|v| v["outcome"] != "fail"), "{why}");
        for check in checks {
            assert!(
                verdicts
                    .iter()
                    .any(|v| v["check"] == *check && v["outcome"] == "pass"),
                "{name}: {check} not judged: {verdicts:?}"
            );
        }
    }
}
