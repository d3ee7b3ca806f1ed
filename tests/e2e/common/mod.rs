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
