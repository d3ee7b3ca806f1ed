//! Readiness polling and setup calls against the proxy (cold path: reqwest).

use super::placeholders::{PlaceholderError, Placeholders};
use super::process::ExitInfo;
use crate::scenario::SetupCall;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why the proxy never became ready.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The process ended first.
    #[error("the proxy exited ({0}) before becoming ready")]
    Exited(ExitInfo),
    /// The deadline passed.
    #[error("no {expected} from {url} within {timeout:?} (last: {last})")]
    Timeout {
        /// Readiness URL.
        url: String,
        /// Expected status.
        expected: u16,
        /// Timeout.
        timeout: Duration,
        /// Last observation.
        last: String,
    },
}

/// Polls `url` until it answers `expected`, the process exits (`exited`) or `timeout` passes.
pub async fn wait_ready(
    url: &str,
    expected: u16,
    timeout: Duration,
    mut exited: Option<watch::Receiver<Option<ExitInfo>>>,
) -> Result<(), ReadyError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(info) = exited.as_mut().and_then(|rx| *rx.borrow_and_update()) {
            return Err(ReadyError::Exited(info));
        }
        let last = match client.get(url).send().await {
            Ok(r) if r.status().as_u16() == expected => return Ok(()),
            Ok(r) => format!("status {}", r.status().as_u16()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(ReadyError::Timeout {
                url: url.to_string(),
                expected,
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `[proxy] setup` call that failed; names the call (`proxy.setup[0] POST /admin/keys`).
#[derive(Debug, thiserror::Error)]
#[error("{call}: {problem}")]
pub struct SetupError {
    /// Which call, as `proxy.setup[i] METHOD PATH`.
    pub call: String,
    /// What went wrong.
    pub problem: SetupProblem,
}

/// What went wrong in a setup call.
#[derive(Debug, thiserror::Error)]
pub enum SetupProblem {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A placeholder in the path, a header or the body.
    #[error(transparent)]
    Placeholder(#[from] PlaceholderError),
    /// The method is not a valid HTTP method.
    #[error("invalid method: {0}")]
    Method(#[from] http::method::InvalidMethod),
    /// The body could not be turned into JSON.
    #[error("body: {0}")]
    Body(#[from] serde_json::Error),
    /// The request failed (connect, timeout, ...).
    #[error(transparent)]
    Send(reqwest::Error),
    /// The proxy answered with a status the call does not expect.
    #[error("status {status} (expected {expected:?}): {body}")]
    Status {
        /// Status received.
        status: u16,
        /// Statuses expected.
        expected: Vec<u16>,
        /// The first 300 characters of the response body.
        body: String,
    },
}

/// Runs the setup calls in order against `base_url`; stops at the first failure.
pub async fn run_setup(
    base_url: &str,
    calls: &[SetupCall],
    values: &Placeholders,
) -> Result<(), SetupError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SetupError {
            call: "proxy.setup".to_string(),
            problem: SetupProblem::Client(e),
        })?;
    for (i, call) in calls.iter().enumerate() {
        run_setup_call(&client, base_url, call, values)
            .await
            .map_err(|problem| SetupError {
                call: format!("proxy.setup[{i}] {} {}", call.method, call.path),
                problem,
            })?;
    }
    Ok(())
}

async fn run_setup_call(
    client: &reqwest::Client,
    base_url: &str,
    call: &SetupCall,
    values: &Placeholders,
) -> Result<(), SetupProblem> {
    let path = values.fill(&call.path)?;
    let method = reqwest::Method::from_bytes(call.method.as_bytes())?;
    let mut req = client.request(method, format!("{}{path}", base_url.trim_end_matches('/')));
    for (k, v) in &call.headers {
        req = req.header(k, values.fill(v)?);
    }
    if let Some(body) = &call.body {
        let mut json = serde_json::to_value(body)?;
        fill_strings(&mut json, values)?;
        req = req.json(&json);
    }
    let resp = req.send().await.map_err(SetupProblem::Send)?;
    let status = resp.status().as_u16();
    if !call.expect.contains(&status) {
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        return Err(SetupProblem::Status {
            status,
            expected: call.expect.clone(),
            body,
        });
    }
    Ok(())
}

/// Fills placeholders in every string of a JSON value.
pub(super) fn fill_strings(
    value: &mut serde_json::Value,
    values: &Placeholders,
) -> Result<(), PlaceholderError> {
    match value {
        serde_json::Value::String(s) => *s = values.fill(s)?,
        serde_json::Value::Array(items) => {
            items.iter_mut().try_for_each(|v| fill_strings(v, values))?
        }
        serde_json::Value::Object(map) => {
            map.values_mut().try_for_each(|v| fill_strings(v, values))?
        }
        _ => {}
    }
    Ok(())
}
