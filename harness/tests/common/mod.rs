//! A tiny in-test HTTP target with exact, controllable timing (loopback, port 0).

#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::routing::any;
use axum::Router;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the target saw.
#[derive(Default)]
pub struct Seen {
    /// Requests per path segment.
    pub hits: Mutex<BTreeMap<String, u64>>,
    /// Requests currently being served.
    pub in_flight: AtomicU32,
    /// Highest concurrency seen.
    pub max_in_flight: AtomicU32,
    /// Requests served by `/stall` that actually stalled.
    pub stalled: AtomicU64,
    /// Start of the target (for `/stall`'s window).
    pub started: Mutex<Option<Instant>>,
    /// Every `name: value` header line seen, per path.
    pub headers: Mutex<BTreeMap<String, std::collections::BTreeSet<String>>>,
}

impl Seen {
    /// Hits of one path.
    pub fn hits(&self, path: &str) -> u64 {
        self.hits.lock().get(path).copied().unwrap_or(0)
    }

    /// The `name: value` header lines seen on one path (names lower-case).
    pub fn headers(&self, path: &str) -> std::collections::BTreeSet<String> {
        self.headers.lock().get(path).cloned().unwrap_or_default()
    }
}

/// Routes: `/ok/{name}` → 200; `/sleep/{ms}` → 200 after ms; `/stall/{after_ms}/{for_ms}` → the first request
/// arriving `after_ms` after the first request at all is held for `for_ms`; `/status/{code}` → that status;
/// `/keyed/{name}` → 200 naming the key in `x-model-id: key1` (a proxy that does not say `X-Key-Used`).
pub async fn start() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/{kind}/{*rest}", any(handle))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn handle(
    State(seen): State<Arc<Seen>>,
    Path((kind, rest)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> (
    axum::http::StatusCode,
    [(&'static str, &'static str); 1],
    &'static str,
) {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    *seen
        .hits
        .lock()
        .entry(format!("/{kind}/{rest}"))
        .or_default() += 1;
    seen.headers
        .lock()
        .entry(format!("/{kind}/{rest}"))
        .or_default()
        .extend(
            headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))),
        );
    let first = *seen.started.lock().get_or_insert_with(Instant::now);
    let nums: Vec<u64> = rest.split('/').filter_map(|s| s.parse().ok()).collect();
    let mut status = 200;
    match (kind.as_str(), nums.as_slice()) {
        ("sleep", [ms, ..]) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        ("stall", [after, hold, ..])
            if first.elapsed() >= Duration::from_millis(*after)
                && seen.stalled.fetch_add(1, Ordering::SeqCst) == 0 =>
        {
            tokio::time::sleep(Duration::from_millis(*hold)).await
        }
        ("status", [code, ..]) => status = *code as u16,
        _ => {}
    }
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    let header = if kind == "keyed" {
        ("x-model-id", "key1")
    } else {
        ("x-served-by", "test-target")
    };
    (
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
        [header],
        "ok",
    )
}

/// Writes a scenario file into `dir` and returns its path.
pub fn scenario_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// What one `harness run` of a scenario ended with.
pub struct HarnessRun {
    /// The process exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// `summary.json` of the run.
    pub summary: serde_json::Value,
    /// What the harness printed on stderr (for assertion messages).
    pub stderr: String,
}

/// Runs `harness run SCENARIO ARGS -q --out OUT` with stdin closed (and no admin token from the environment),
/// waits at most `limit` — panicking when it hangs — and returns what it ended with.
pub async fn harness_output(
    scenario: &std::path::Path,
    args: &[&str],
    out: &std::path::Path,
    limit: Duration,
) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg(scenario)
        .args(args)
        .arg("-q")
        .arg("--out")
        .arg(out)
        .env_remove("HARNESS_UPSTREAM_ADMIN_TOKEN")
        .stdin(std::process::Stdio::null())
        .output();
    tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{}: harness still running after {limit:?}",
                scenario.display()
            )
        })
        .expect("spawn harness")
}

/// [`harness_output`], then the `summary.json` it wrote — panicking with the harness's stderr when it wrote
/// none.
pub async fn run_scenario(
    scenario: &std::path::Path,
    args: &[&str],
    out: &std::path::Path,
    limit: Duration,
) -> HarnessRun {
    let output = harness_output(scenario, args, out, limit).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let text = std::fs::read_to_string(out.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: summary.json: {e}; {stderr}", scenario.display()));
    HarnessRun {
        code: output.status.code(),
        summary: serde_json::from_str(&text).expect("summary.json is JSON"),
        stderr,
    }
}

/// A closed-model scenario the behaviour tests share: 4 users, chat (with `X-Key-Used` required) + streaming chat
/// against the in-process mock and the reference proxy; `extra` appends tables (`[behaviour]`, `[[timeline]]`, ...).
pub fn chat_and_stream_scenario(name: &str, seed: u64, run_time: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = {seed}
[load]
model = "closed"
users = 4
spawn_rate = 100
think_time = "20ms"
run_time = "{run_time}"
timeout = "5s"

[[request]]
name = "chat"
weight = 3
method = "POST"
path = "/v1/chat/completions"
expect_header = "X-Key-Used"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "hi" }}], max_tokens = 8 }}

[[request]]
name = "stream"
method = "POST"
path = "/v1/chat/completions"
stream = true
body = {{ model = "gpt-4", stream = true, messages = [{{ role = "user", content = "hi" }}], max_tokens = 8 }}
{extra}
"#
    )
}
