//! The system under test: the proxy the load goes through, and the mock upstream behind it.
//!
//! Three ways to get one (checked in this order):
//! - **attach** — `--target URL` (optionally `--proxy-pid` / `--proxy-pid-file` for resource monitoring): the
//!   harness starts nothing;
//! - **spawn** — the scenario's `[proxy]` command, with placeholders filled, in front of the in-process mock;
//! - **external mock** — `--upstream URL` replaces the in-process mock by a mock-upstream running elsewhere,
//!   driven through its admin API (with attach or spawn);
//! - **default** — the workspace's reference proxy, run as a separate OS process by re-executing this very
//!   binary (`harness __reference-proxy ...`), in front of the in-process mock, so a fresh clone needs nothing
//!   else installed.

mod attach;
mod mock_admin;
mod mock_handle;
mod placeholders;
mod process;
mod ready;
mod spawn;
mod upstream;

pub use mock_admin::{AdminClient, AdminError};
pub use mock_handle::{MockError, MockHandle};
pub use placeholders::{PlaceholderError, Placeholders};
pub use process::{log_tail, ExitInfo, ProxyProcess};
pub use ready::{run_setup, wait_ready, ReadyError, SetupError, SetupProblem};
pub(crate) use upstream::mock_config;

use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::scenario::Scenario;
use mock_upstream::{KeyConfig, MockConfig};
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
    /// Base URL of the mock behind the proxy, when the harness controls one.
    pub upstream_url: Option<String>,
    process: Option<ProxyProcess>,
    mock: Option<MockHandle>,
    mock_config: Option<MockConfig>,
    shutdown_timeout: Duration,
    _keys_file: Option<tempfile::NamedTempFile>,
}

impl Sut {
    /// Starts or attaches to the system under test for `scenario`, writing `proxy.log` into `results_dir`.
    /// The mock's seed defaults to `seed` (the run's). With `--upstream` the mock is the external one, prepared
    /// through its admin API, also when attaching to a proxy with `--target`.
    pub async fn start(
        scenario: &Scenario,
        args: &RunArgs,
        seed: u64,
        results_dir: &Path,
    ) -> Result<Sut, HarnessError> {
        let external = match &args.upstream {
            Some(url) => Some(
                upstream::connect_external(
                    url,
                    args.upstream_admin_token.clone(),
                    args.upstream_ca.as_deref(),
                    scenario,
                    args.shard.is_none_or(|s| s.owns_the_mock()),
                )
                .await?,
            ),
            None => None,
        };
        if let Some(target) = &args.target {
            let mut sut = match attach::attach(target, args) {
                Ok(sut) => sut,
                Err(e) => {
                    if let Some((mock, _)) = external {
                        mock.shutdown().await;
                    }
                    return Err(e);
                }
            };
            if let Some((mock, config)) = external {
                sut.upstream_url = Some(mock.base_url());
                (sut.mock, sut.mock_config) = (Some(mock), Some(config));
            }
            return Ok(sut);
        }
        let scenario_mock = upstream::mock_config(scenario, seed);
        let keys = scenario_mock.keys.clone();
        let (mock, mock_config) = match external {
            Some((mock, config)) => {
                if let Err(e) = upstream::check_keys(&mock.base_url(), &config, &keys) {
                    mock.shutdown().await;
                    return Err(e);
                }
                (mock, config)
            }
            None => (
                upstream::start_in_process(&scenario_mock).await?,
                scenario_mock,
            ),
        };
        match start_proxy(scenario, &mock, &keys, results_dir).await {
            Ok((process, target, keys_file, shutdown_timeout)) => Ok(Sut {
                target,
                pid: Some(process.pid()),
                upstream_url: Some(mock.base_url()),
                process: Some(process),
                mock: Some(mock),
                mock_config: Some(mock_config),
                shutdown_timeout,
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

    /// The mock the harness controls (in-process, or external with `--upstream`).
    pub fn mock(&self) -> Option<&MockHandle> {
        self.mock.as_ref()
    }

    /// The controlled mock's effective configuration (keys, latency; secrets redacted when external).
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

/// Spawns the scenario's proxy (or the reference proxy) in front of `mock`, with a keys file of `keys`; returns
/// the process, its URL, the keys file (kept alive for the run) and the stop timeout.
async fn start_proxy(
    scenario: &Scenario,
    mock: &MockHandle,
    keys: &[KeyConfig],
    results_dir: &Path,
) -> Result<(ProxyProcess, String, tempfile::NamedTempFile, Duration), HarnessError> {
    let spec = scenario
        .proxy
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_default();
    let base_dir = Path::new(&scenario.origin)
        .parent()
        .unwrap_or(Path::new("."));
    let keys_file = upstream::write_keys_file(keys)?;
    let port = spawn::free_port()?;
    let token = spawn::admin_token();
    let values = Placeholders::new(
        &mock.base_url(),
        port,
        &keys_file.path().display().to_string(),
        &token,
    )
    .with_keys(keys.iter().map(|k| (k.id.as_str(), k.secret.as_str())))
    .with_ca_file(mock.ca_file());
    let (process, target) = spawn::spawn_proxy(&spec, &values, port, results_dir, base_dir).await?;
    Ok((process, target, keys_file, spec.shutdown_timeout))
}
