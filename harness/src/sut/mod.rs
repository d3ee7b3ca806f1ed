//! The system under test: the proxy the load goes through, and the mock upstream behind it.
//!
//! Three ways to get one (checked in this order):
//! - **attach** — `--target URL` (optionally `--proxy-pid` / `--proxy-pid-file` for resource monitoring): the
//!   harness starts nothing;
//! - **spawn** — the scenario's `[proxy]` command, with placeholders filled, in front of the in-process mock;
//! - **default** — the workspace's reference proxy, run as a separate OS process by re-executing this very
//!   binary (`harness __reference-proxy ...`), in front of the in-process mock, so a fresh clone needs nothing
//!   else installed.

mod placeholders;
mod process;
mod ready;

pub use placeholders::Placeholders;
pub use process::{log_tail, ExitInfo, ProxyProcess};
pub use ready::{run_setup, wait_ready, ReadyError};

use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::scenario::{ProxySpec, Scenario};
use mock_upstream::{KeyConfig, MockConfig, RunningMock};
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// Lines of `proxy.log` quoted when the proxy fails to start.
const LOG_TAIL_LINES: usize = 20;
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
            return attach(target, args);
        }
        let mock_config = mock_config(scenario, seed);
        let keys = mock_config.keys.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::SutStart(format!("cannot bind the mock upstream: {e}")))?;
        let mock = mock_upstream::spawn(mock_config, listener)
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
        let keys_file = write_keys_file(&keys)?;
        let port = free_port()?;
        let token = admin_token();
        let values = Placeholders::new(
            &upstream_url,
            port,
            &keys_file.path().display().to_string(),
            &token,
        );
        let started = spawn_proxy(&spec, &values, port, results_dir, base_dir).await;
        match started {
            Ok((process, target)) => Ok(Sut {
                target,
                pid: Some(process.pid()),
                upstream_url: Some(upstream_url),
                process: Some(process),
                mock: Some(mock),
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
            (None, Some(pid)) => Some(poll_exit(pid)),
            (None, None) => None,
        }
    }

    /// The in-process mock, when the harness runs one.
    pub fn mock(&self) -> Option<&RunningMock> {
        self.mock.as_ref()
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

/// How often an attached proxy's PID is checked.
const ATTACH_POLL: Duration = Duration::from_millis(200);

/// Polls `/proc/PID` until the process is gone (or nobody listens any more).
fn poll_exit(pid: u32) -> watch::Receiver<Option<ExitInfo>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        while !tx.is_closed() {
            if !process_alive(pid) {
                let _ = tx.send(Some(ExitInfo {
                    code: None,
                    signal: None,
                }));
                break;
            }
            tokio::time::sleep(ATTACH_POLL).await;
        }
    });
    rx
}

/// Whether `pid` exists and is not a zombie (a dead child its parent has not reaped yet).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Attach mode: use `target` as is; the PID (if any) comes from `--proxy-pid` or `--proxy-pid-file`.
fn attach(target: &str, args: &RunArgs) -> Result<Sut, HarnessError> {
    let pid = match (&args.proxy_pid, &args.proxy_pid_file) {
        (Some(pid), _) => Some(*pid),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                HarnessError::BadInput(format!("--proxy-pid-file {}: {e}", file.display()))
            })?;
            let pid = text.trim().parse::<u32>().map_err(|_| {
                HarnessError::BadInput(format!(
                    "--proxy-pid-file {}: {:?} is not a PID",
                    file.display(),
                    text.trim()
                ))
            })?;
            Some(pid)
        }
        (None, None) => None,
    };
    if let Some(pid) = pid {
        if !process_alive(pid) {
            return Err(HarnessError::BadInput(format!(
                "--proxy-pid {pid}: no such process"
            )));
        }
    }
    Ok(Sut {
        target: target.trim_end_matches('/').to_string(),
        pid,
        upstream_url: None,
        process: None,
        mock: None,
        shutdown_timeout: Duration::ZERO,
        _keys_file: None,
    })
}

/// The scenario's `[upstream]` (mock config) or the default: three keys, no faults. A mock seed of 0 (unset)
/// takes the scenario's seed, so `--seed` fixes the mock's decisions too.
fn mock_config(scenario: &Scenario, seed: u64) -> MockConfig {
    let mut config = scenario
        .upstream
        .as_ref()
        .map(|u| u.get_ref().clone())
        .unwrap_or_default();
    if config.keys.is_empty() && config.accept_any_key != Some(true) {
        config.keys = (1..=3)
            .map(|i| KeyConfig {
                id: format!("key{i}"),
                secret: format!("sk-harness-mock-{i}"),
                ..KeyConfig::default()
            })
            .collect();
    }
    if config.seed == 0 {
        config.seed = seed;
    }
    config
}

/// The default proxy command: this binary's hidden `__reference-proxy` subcommand.
fn default_command() -> Vec<String> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "harness".into());
    let args = [
        "__reference-proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "{upstream_url}",
    ];
    let more = [
        "--keys-file",
        "{keys_file}",
        "--admin-token",
        "{admin_token}",
    ];
    std::iter::once(exe)
        .chain(args.iter().chain(&more).map(|s| s.to_string()))
        .collect()
}

/// Writes the mock's keys as a reference-proxy keys file (`[[keys]] id, secret, provider`), readable only by
/// this user; it lives in the temp dir, not the results dir, so result artifacts never carry key secrets.
fn write_keys_file(keys: &[KeyConfig]) -> Result<tempfile::NamedTempFile, HarnessError> {
    #[derive(serde::Serialize)]
    struct KeysFile<'a> {
        keys: Vec<Entry<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        id: &'a str,
        secret: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<toml::Value>,
    }
    let file = KeysFile {
        keys: keys
            .iter()
            .map(|k| Entry {
                id: &k.id,
                secret: &k.secret,
                provider: k
                    .provider
                    .as_ref()
                    .and_then(|p| toml::Value::try_from(p).ok()),
            })
            .collect(),
    };
    let env_err = |e: String| HarnessError::Environment(format!("proxy keys file: {e}"));
    let text = toml::to_string(&file).map_err(|e| env_err(e.to_string()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix("harness-keys-")
        .suffix(".toml")
        .tempfile()
        .map_err(|e| env_err(e.to_string()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| env_err(e.to_string()))?;
    Ok(tmp)
}

/// A free loopback port for `{port}` (bound and released; the proxy binds it right after).
fn free_port() -> Result<u16, HarnessError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::SutStart(format!("no free port: {e}")))
}

/// Spawns the proxy, finds its URL, waits for readiness and runs the setup calls.
async fn spawn_proxy(
    spec: &ProxySpec,
    values: &Placeholders,
    port: u16,
    results_dir: &Path,
    base_dir: &Path,
) -> Result<(ProxyProcess, String), HarnessError> {
    let command = if spec.command.is_empty() {
        default_command()
    } else {
        spec.command.clone()
    };
    let fill = |field: &str, t: &str| {
        values
            .fill(t)
            .map_err(|e| HarnessError::BadInput(format!("proxy.{field}: {e}")))
    };
    let argv = command
        .iter()
        .map(|a| fill("command", a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| Ok::<_, HarnessError>((k.clone(), fill("env", v)?)))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = spec.cwd.as_ref().map(|c| base_dir.join(c));
    let log = results_dir.join(PROXY_LOG);
    let mut process = ProxyProcess::spawn(&argv, &env, cwd.as_deref(), &log)
        .map_err(|e| HarnessError::SutStart(format!("cannot start {:?}: {e}", argv[0])))?;
    let target = if command.iter().any(|a| Placeholders::uses(a, "port")) {
        Some(format!("http://127.0.0.1:{port}"))
    } else {
        process.listening_url(spec.ready_timeout).await
    };
    let result = match target {
        None => {
            Err("it never printed `listening on URL` (use {port} in proxy.command)".to_string())
        }
        Some(target) => ready_and_setup(spec, &target, values, &process)
            .await
            .map(|()| target),
    };
    match result {
        Ok(target) => Ok((process, target)),
        Err(why) => {
            let exit = process.shutdown(Duration::from_secs(2)).await;
            let tail = process.log_tail(LOG_TAIL_LINES);
            let exit = exit.map(|e| format!(" (then {e})")).unwrap_or_default();
            Err(HarnessError::SutStart(format!(
                "{why}{exit}\n--- last lines of {} ---\n{tail}",
                log.display()
            )))
        }
    }
}

async fn ready_and_setup(
    spec: &ProxySpec,
    target: &str,
    values: &Placeholders,
    p: &ProxyProcess,
) -> Result<(), String> {
    let url = format!("{target}{}", spec.ready_path);
    wait_ready(
        &url,
        spec.ready_status,
        spec.ready_timeout,
        Some(p.exit_watch()),
    )
    .await
    .map_err(|e| e.to_string())?;
    run_setup(target, &spec.setup, values).await
}

/// A random admin token for `{admin_token}` (the proxy's admin API is then closed to anyone else).
fn admin_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}
