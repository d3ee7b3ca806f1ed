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

/// A server started for a test as a separate process, found by the first stdout line `listening on URL` (the
/// workspace contract, kept by the mock, the proxies and the example FastAPI proxy). Its stderr goes to a log
/// file, so a chatty server does not flood the test output; the process is killed on drop.
pub struct ListeningProcess {
    child: tokio::process::Child,
    url: String,
    // Kept open: a server that writes to stdout later must not get EPIPE.
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ListeningProcess {
    /// Starts `program args`, stderr into `log`, and waits up to 30 s for its `listening on URL` line.
    pub async fn start(program: &str, args: &[String], log: &Path) -> Result<Self, String> {
        use tokio::io::AsyncBufReadExt;
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first =
            tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            _ => {
                return Err(format!(
                    "{program} printed no `listening on URL` line; its log {}:\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                ))
            }
        };
        let url = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("{program}: first stdout line is {line:?}"))?
            .trim()
            .to_string();
        Ok(ListeningProcess {
            child,
            url,
            _stdout: lines,
        })
    }

    /// `http://IP:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id (for `--proxy-pid`).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process still running")
    }

    /// Polls `GET {url}{path}` until it answers 200, for at most `timeout`.
    pub async fn wait_ready(&self, path: &str, timeout: std::time::Duration) -> Result<(), String> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match client.get(format!("{}{path}", self.url)).send().await {
                Ok(response) if response.status() == 200 => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("{}{path} not ready within {timeout:?}", self.url))
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }
}

/// Runs `harness run SCENARIO --out OUT --quiet --no-report ARGS` (killed after `timeout`); returns the process
/// output and the parsed `summary.json`.
pub async fn run_scenario_file(
    scenario: &Path,
    out: &Path,
    args: &[String],
    timeout: std::time::Duration,
) -> (Output, serde_json::Value) {
    let run = tokio::process::Command::new(harness_bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--no-report"])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| panic!("harness run {} took over {timeout:?}", scenario.display()))
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

/// Whether the FastAPI example (`examples/fastapi-proxy`) can run here. Without `python3` or the example's
/// requirements a test skips it with a message on stderr; with `CI` set it fails instead, naming what is missing.
pub fn fastapi_example_can_run() -> bool {
    let Some(missing) = missing_python_requirements() else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and the FastAPI example cannot run: missing {missing}"
    );
    eprintln!("skipped: the FastAPI example cannot run: missing {missing}");
    false
}

/// What is missing to run the FastAPI example: `python3` itself, or its requirements.
fn missing_python_requirements() -> Option<String> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import fastapi, uvicorn, httpx"])
        .output();
    match probe {
        Err(e) => Some(format!("python3 ({e})")),
        Ok(out) if !out.status.success() => Some(format!(
            "the example's Python requirements (python3 -m pip install -r \
             examples/fastapi-proxy/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => None,
    }
}
