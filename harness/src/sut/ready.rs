//! Readiness polling and setup calls against the proxy (cold path: reqwest).

use super::placeholders::Placeholders;
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

/// Runs the setup calls in order against `base_url`; the first failure is returned as a message.
pub async fn run_setup(
    base_url: &str,
    calls: &[SetupCall],
    values: &Placeholders,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    for (i, call) in calls.iter().enumerate() {
        let what = format!("proxy.setup[{i}] {} {}", call.method, call.path);
        let path = values
            .fill(&call.path)
            .map_err(|e| format!("{what}: {e}"))?;
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| format!("{what}: {e}"))?;
        let mut req = client.request(method, format!("{}{path}", base_url.trim_end_matches('/')));
        for (k, v) in &call.headers {
            req = req.header(k, values.fill(v).map_err(|e| format!("{what}: {e}"))?);
        }
        if let Some(body) = &call.body {
            let mut json = serde_json::to_value(body).map_err(|e| format!("{what}: {e}"))?;
            fill_strings(&mut json, values).map_err(|e| format!("{what}: {e}"))?;
            req = req.json(&json);
        }
        let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status().as_u16();
        if !call.expect.contains(&status) {
            let body: String = resp
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(format!(
                "{what}: status {status} (expected {:?}): {body}",
                call.expect
            ));
        }
    }
    Ok(())
}

/// Fills placeholders in every string of a JSON value.
fn fill_strings(value: &mut serde_json::Value, values: &Placeholders) -> Result<(), String> {
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
