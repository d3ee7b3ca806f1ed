//! The system under test: the proxy the load goes through, and the mock upstream behind it.
//!
//! Three ways to get one (checked in this order):
//! - **attach** — `--target URL` (optionally `--proxy-pid` / `--proxy-pid-file` for resource monitoring): the
//!   harness starts nothing;
//! - **spawn** — the scenario's `[proxy]` command, with placeholders filled, in front of the in-process mock;
//! - **default** — the workspace's reference proxy, run as a separate OS process by re-executing this very
//!   binary (`harness __reference-proxy ...`), in front of the in-process mock, so a fresh clone needs nothing
//!   else installed.

mod attach;
mod placeholders;
mod process;
mod ready;
mod spawn;
mod upstream;

pub use placeholders::Placeholders;
pub use process::{log_tail, ExitInfo, ProxyProcess};
pub use ready::{run_setup, wait_ready, ReadyError};

use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::scenario::Scenario;
use mock_upstream::{MockConfig, RunningMock};
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// Name of the proxy's log inside the results directory.
pub const PROXY_LOG: &str = "proxy.log";

/// A started (or attached) system under test.
pub struct Sut {
    /// Base URL the load goes to.
    pub target: String,
    /// PID of the proxy, when known (monitoring, crash detection).
    pub pid: Option<u32>,
    /// Base URL of the in-process mock, when the harness runs one.
    pub upstream_url: Option<String>,
    process: Option<ProxyProcess>,
    mock: Option<RunningMock>,
    mock_config: Option<MockConfig>,
    shutdown_timeout: Duration,
    _keys_file: Option<tempfile::NamedTempFile>,
}

impl Sut {
    /// Starts or attaches to the system under test for `scenario`, writing `proxy.log` into `results_dir`.
    /// The mock's seed defaults to `seed` (the run's).
    pub async fn start(
        scenario: &Scenario,
        args: &RunArgs,
        seed: u64,
        results_dir: &Path,
    ) -> Result<Sut, HarnessError> {
        if let Some(target) = &args.target {
            return attach::attach(target, args);
        }
        let mock_config = upstream::mock_config(scenario, seed);
        let keys = mock_config.keys.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::SutStart(format!("cannot bind the mock upstream: {e}")))?;
        let mock = mock_upstream::spawn(mock_config.clone(), listener)
            .await
            .map_err(|e| HarnessError::SutStart(format!("mock upstream: {e}")))?;
        let upstream_url = mock.base_url();
        let spec = scenario
            .proxy
            .as_ref()
            .map(|p| p.get_ref().clone())
            .unwrap_or_default();
        let base_dir = Path::new(&scenario.origin)
            .parent()
            .unwrap_or(Path::new("."));
        let keys_file = upstream::write_keys_file(&keys)?;
        let port = spawn::free_port()?;
        let token = spawn::admin_token();
        let values = Placeholders::new(
            &upstream_url,
            port,
            &keys_file.path().display().to_string(),
            &token,
        );
        let started = spawn::spawn_proxy(&spec, &values, port, results_dir, base_dir).await;
        match started {
            Ok((process, target)) => Ok(Sut {
                target,
                pid: Some(process.pid()),
                upstream_url: Some(upstream_url),
                process: Some(process),
                mock: Some(mock),
                mock_config: Some(mock_config),
                shutdown_timeout: spec.shutdown_timeout,
                _keys_file: Some(keys_file),
            }),
            Err(e) => {
                mock.shutdown().await;
                Err(e)
            }
        }
    }

    /// Watch channel that turns `Some` when the proxy exits: from the child's exit status when spawned, from
    /// polling `/proc/PID` when attached with a PID (exit status then unknown); None without a PID.
    pub fn exit_watch(&self) -> Option<watch::Receiver<Option<ExitInfo>>> {
        match (&self.process, self.pid) {
            (Some(p), _) => Some(p.exit_watch()),
            (None, Some(pid)) => Some(attach::poll_exit(pid)),
            (None, None) => None,
        }
    }

    /// The in-process mock, when the harness runs one.
    pub fn mock(&self) -> Option<&RunningMock> {
        self.mock.as_ref()
    }

    /// The in-process mock's effective configuration (keys, latency), when the harness runs one.
    pub fn mock_config(&self) -> Option<&MockConfig> {
        self.mock_config.as_ref()
    }

    /// Stops the proxy (SIGTERM → SIGKILL) and the mock; returns how a spawned proxy ended.
    pub async fn shutdown(self) -> Option<ExitInfo> {
        let exit = match &self.process {
            Some(p) => p.shutdown(self.shutdown_timeout).await,
            None => None,
        };
        if let Some(mock) = self.mock {
            mock.shutdown().await;
        }
        exit
    }
}
