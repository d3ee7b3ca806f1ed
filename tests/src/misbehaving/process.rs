//! Launching a proxy binary for a test: start it with `--listen 127.0.0.1:0`, read the bound address from its
//! first stdout line (`listening on http://ADDR`, the workspace contract), and kill it when done. The child is
//! killed on drop too, so a failing test never leaves a proxy running.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a proxy may take to print its `listening on` line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running proxy process.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    base_url: String,
}

impl ProxyProcess {
    /// Runs `program` with `args` (which must include `--listen 127.0.0.1:0` or another address) and waits for
    /// its `listening on http://ADDR` line. Stderr is inherited so failures show in the test output.
    pub async fn start(program: &Path, args: &[String]) -> anyhow::Result<ProxyProcess> {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stdout = child.stdout.take().context("child stdout not captured")?;
        let mut first_line = String::new();
        tokio::time::timeout(
            STARTUP_TIMEOUT,
            BufReader::new(stdout).read_line(&mut first_line),
        )
        .await
        .with_context(|| {
            format!(
                "{} printed no `listening on` line in {STARTUP_TIMEOUT:?}",
                program.display()
            )
        })??;
        let Some(url) = first_line.trim().strip_prefix("listening on ") else {
            bail!(
                "{}: first stdout line is `{}`, not `listening on http://ADDR`",
                program.display(),
                first_line.trim()
            );
        };
        Ok(ProxyProcess {
            child,
            base_url: url.to_string(),
        })
    }

    /// `http://IP:PORT` of the proxy.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Kills the proxy and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
