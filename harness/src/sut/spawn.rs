//! Spawn mode: fill the `[proxy]` command's placeholders, start it, find its URL, wait for readiness, run the
//! setup calls — and on any failure stop it and quote its log.

use super::{run_setup, wait_ready, Placeholders, ProxyProcess, ReadyError, SetupError, PROXY_LOG};
use crate::error::HarnessError;
use crate::scenario::ProxySpec;
use std::path::Path;
use std::time::Duration;

/// Lines of `proxy.log` quoted when the proxy fails to start.
const LOG_TAIL_LINES: usize = 20;

/// The default proxy command: this binary's hidden `__reference-proxy` subcommand; in front of a TLS mock
/// (`tls`) it also trusts the mock's CA.
fn default_command(tls: bool) -> Vec<String> {
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
    let ca: &[&str] = if tls {
        &["--upstream-ca", "{ca_file}"]
    } else {
        &[]
    };
    std::iter::once(exe)
        .chain(args.iter().chain(&more).chain(ca).map(|s| s.to_string()))
        .collect()
}

/// A free loopback port for `{port}` (bound and released; the proxy binds it right after).
pub(super) fn free_port() -> Result<u16, HarnessError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError::SutStart(format!("no free port: {e}")))
}

/// Spawns the proxy, finds its URL, waits for readiness and runs the setup calls.
pub(super) async fn spawn_proxy(
    spec: &ProxySpec,
    values: &Placeholders,
    port: u16,
    results_dir: &Path,
    base_dir: &Path,
) -> Result<(ProxyProcess, String), HarnessError> {
    let command = if spec.command.is_empty() {
        default_command(values.has_ca_file())
    } else {
        spec.command.clone()
    };
    let fill = |field: &str, t: &str| {
        values
            .fill(t)
            .map_err(|e| HarnessError::BadInput(format!("proxy.{field}: {e}")))
    };
    check_setup_templates(spec, values)?;
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
        None => Err(NotReady::NoListeningUrl),
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

/// Fills the setup calls' templates once before the proxy starts, so a placeholder that cannot be filled (e.g.
/// `{ca_file}` with a plain-HTTP mock) is the scenario's mistake (exit 2) rather than a failed start.
fn check_setup_templates(spec: &ProxySpec, values: &Placeholders) -> Result<(), HarnessError> {
    for (i, call) in spec.setup.iter().enumerate() {
        let bad = |e: super::PlaceholderError| {
            HarnessError::BadInput(format!(
                "proxy.setup[{i}] {} {}: {e}",
                call.method, call.path
            ))
        };
        values.fill(&call.path).map_err(bad)?;
        for value in call.headers.values() {
            values.fill(value).map_err(bad)?;
        }
        if let Some(body) = &call.body {
            let mut json = serde_json::to_value(body)
                .map_err(|e| HarnessError::BadInput(format!("proxy.setup[{i}].body: {e}")))?;
            super::ready::fill_strings(&mut json, values).map_err(bad)?;
        }
    }
    Ok(())
}

/// Why a spawned proxy did not become usable.
#[derive(Debug, thiserror::Error)]
enum NotReady {
    #[error("it never printed `listening on URL` (use {{port}} in proxy.command)")]
    NoListeningUrl,
    #[error(transparent)]
    Ready(#[from] ReadyError),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

async fn ready_and_setup(
    spec: &ProxySpec,
    target: &str,
    values: &Placeholders,
    p: &ProxyProcess,
) -> Result<(), NotReady> {
    let url = format!("{target}{}", spec.ready_path);
    wait_ready(
        &url,
        spec.ready_status,
        spec.ready_timeout,
        Some(p.exit_watch()),
    )
    .await?;
    run_setup(target, &spec.setup, values).await?;
    Ok(())
}

/// A random admin token for `{admin_token}` (the proxy's admin API is then closed to anyone else).
pub(super) fn admin_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}
