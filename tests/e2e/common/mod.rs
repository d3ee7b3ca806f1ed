//! Shared by the end-to-end tests: run the real `harness` binary on a scenario written to a temp dir.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Output;

/// The harness program built in this package.
pub fn harness_bin() -> &'static str {
    env!("CARGO_BIN_EXE_harness-e2e")
}

/// The reference proxy with an optional real leak (no `LEAK_*` variables: exactly the reference proxy).
pub fn leaky_proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_leaky-proxy")
}

/// The proxy that is correct except for one `--defect` (or none), optionally slow (`tests::misbehaving`).
pub fn misbehaving_proxy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_misbehaving-proxy")
}

/// A scenario's `[proxy] command` (a TOML array) that spawns the misbehaving fixture with `defect` and the
/// scenario's keys, plus `extra` flags (e.g. a slow mode).
pub fn misbehaving_command(defect: &str, extra: &[&str]) -> String {
    let fixed = [
        misbehaving_proxy_bin(),
        "--listen",
        "127.0.0.1:{port}",
        "--upstream",
        "{upstream_url}",
        "--keys-file",
        "{keys_file}",
        "--defect",
        defect,
    ];
    let words: Vec<String> = fixed
        .iter()
        .chain(extra)
        .map(|word| format!("{word:?}"))
        .collect();
    format!("[{}]", words.join(", "))
}

/// The outcomes (`pass`, `fail`, `skipped`, ...) of `check`'s behaviour verdicts in `summary.json`, one per
/// window for per-window checks; empty when the check was not judged.
pub fn behaviour_outcomes(summary: &serde_json::Value, check: &str) -> Vec<String> {
    summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|verdict| verdict["check"] == check)
        .map(|verdict| verdict["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A fresh directory kept after the test (its results are the evidence when a test fails).
pub fn temp_dir() -> PathBuf {
    tempfile::tempdir().expect("temp dir").keep()
}

/// Writes `text` as `dir/scenario.toml`, runs `harness run` on it with results in `dir/results` plus `extra`
/// arguments, and returns the process output with the parsed `summary.json`.
pub async fn run_scenario(dir: &Path, text: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, text).expect("write scenario");
    let out = dir.join("results");
    let output = tokio::process::Command::new(harness_bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run harness");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap_or_else(|e| {
        panic!(
            "no summary.json ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output,
        serde_json::from_str(&summary).expect("summary.json parses"),
    )
}

/// Exit code, verdict, reasons and stderr of a run, for assertion messages.
pub fn describe(output: &Output, summary: &serde_json::Value) -> String {
    format!(
        "exit {:?}, verdict {}, reasons {}\nleak report: {}\nstderr:\n{}",
        output.status.code(),
        summary["verdict"],
        summary["verdict_reasons"],
        serde_json::to_string_pretty(&summary["leak_report"]).unwrap_or_default(),
        String::from_utf8_lossy(&output.stderr)
    )
}
