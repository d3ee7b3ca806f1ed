//! Command line of the `mock-upstream` binary: load the config, apply flag overrides, bind, print the
//! `listening on http://ADDR` line (first stdout line; `https://` and a second line `ca file: PATH` with a
//! generated TLS certificate; flushed), serve until SIGINT/SIGTERM.

use crate::config::{ConfigError, KeyConfig, MockConfig};
use crate::tls::{TlsError, TlsSetup};
use clap::Parser;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Exit code for an unusable config file or flag.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// OpenAI/Anthropic-faithful mock LLM upstream with seeded fault injection.
#[derive(Debug, Parser)]
#[command(name = "mock-upstream", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed first).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// TOML config file (keys, models, latency, rules, admin).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed for every random draw (overrides the config's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keys as `id=secret`, comma-separated or repeated (added to the config's keys; disables accept-any
    /// unless the config sets `accept_any_key`).
    #[arg(long, value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Admin bearer token (overrides the config's `admin.token`).
    #[arg(long, env = "MOCK_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// An arrival inside a key's retry window less than this after it opened counts as a race, later ones as
    /// Retry-After violations (overrides the config's `retry_after_grace`; default 250ms).
    #[arg(long, value_parser = human_duration::parse)]
    pub retry_after_grace: Option<std::time::Duration>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with a certificate generated at start, or the config's
    /// `[tls]` files (sets `tls.enabled`).
    #[arg(long)]
    pub tls: bool,
    /// Write the generated CA certificate (PEM) here instead of a temporary file (sets `tls.ca_out`; needs TLS).
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
}

/// An error the binary turns into exit code [`EXIT_BAD_CONFIG`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag is unusable.
    #[error("--{flag}: {problem}")]
    Flag {
        /// Flag name.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// TLS files are unusable or the CA cannot be written.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Build the effective config from the file and the flags.
pub fn load_config(args: &Args) -> Result<MockConfig, CliError> {
    let mut config = match &args.config {
        Some(path) => MockConfig::from_toml_file(path)?,
        None => MockConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    for pair in &args.keys {
        let (id, secret) = pair.split_once('=').ok_or_else(|| CliError::Flag {
            flag: "keys",
            problem: format!("`{pair}` is not id=secret"),
        })?;
        config.keys.push(KeyConfig {
            id: id.trim().into(),
            secret: secret.trim().into(),
            ..Default::default()
        });
    }
    if args.admin_token.is_some() {
        config.admin.token.clone_from(&args.admin_token);
    }
    if let Some(grace) = args.retry_after_grace {
        config.retry_after_grace = grace;
    }
    config.tls.enabled |= args.tls;
    if args.ca_out.is_some() {
        config.tls.ca_out.clone_from(&args.ca_out);
    }
    config
        .validate()
        .and_then(|()| config.admin.validate())
        .map_err(|(field, problem)| {
            let flag = match field.as_str() {
                "tls.ca_out" if args.ca_out.is_some() => "ca-out",
                _ if field.starts_with("tls.") => "tls",
                _ if field.starts_with("admin.") => "admin-token",
                _ => "keys",
            };
            CliError::Flag {
                flag,
                problem: format!("{field}: {problem}"),
            }
        })?;
    Ok(config)
}

/// Run the binary: bind, announce, serve until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let shutdown = shutdown_signal()?;
    let tls = match config.tls.enabled {
        true => Some(TlsSetup::prepare(&config.tls).map_err(CliError::from)?),
        false => None,
    };
    let listener = bind(args.listen)?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    let scheme = if tls.is_some() { "https" } else { "http" };
    writeln!(stdout, "listening on {scheme}://{addr}")?;
    if let Some(ca_file) = tls.as_ref().and_then(TlsSetup::ca_file) {
        writeln!(stdout, "ca file: {}", ca_file.display())?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, keys = config.keys.len(), rules = config.rules.len(), "mock upstream serving");
    crate::running::serve_until(config, listener, tls.as_ref(), shutdown).await?;
    Ok(())
}

/// Bind with a deep accept queue: a proxy under load may open thousands of connections at once, and the
/// default backlog (1024) would turn that burst into SYN drops and one-second client stalls.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

/// The Tokio runtime for the binary: single-threaded when the process may only use one CPU (e.g. pinned with
/// `taskset`), where cross-thread wake-ups would only cost; multi-threaded otherwise.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    Ok(builder.enable_all().build()?)
}

/// A future completing on SIGINT or SIGTERM. The handlers are installed *now* (before the listening line is
/// printed), so a signal sent right after startup is never lost to the default action.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

/// Exit code for an error returned by [`run`].
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error.downcast_ref::<CliError>().is_some() {
        EXIT_BAD_CONFIG
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_grace_flag_overrides_the_config() {
        let cases = [
            (vec![], Duration::from_millis(250)),
            (vec!["--retry-after-grace", "1s"], Duration::from_secs(1)),
            (vec!["--retry-after-grace", "0ms"], Duration::ZERO),
        ];
        for (flags, expected) in cases {
            let args = Args::try_parse_from(["mock-upstream"].into_iter().chain(flags.clone()))
                .expect("flags parse");
            assert_eq!(
                load_config(&args).unwrap().retry_after_grace,
                expected,
                "{flags:?}"
            );
        }
        let bad = Args::try_parse_from(["mock-upstream", "--retry-after-grace", "soon"])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("--retry-after-grace"), "{bad}");
    }

    #[test]
    fn a_remotely_reachable_admin_api_needs_a_token_from_the_file_or_the_flag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write config");
            path.display().to_string()
        };
        let remote = write("remote.toml", "[admin]\nallow_remote = true\n");
        let remote_with_token = write(
            "remote-token.toml",
            "[admin]\nallow_remote = true\ntoken = \"t\"\n",
        );
        let empty_token = write("empty.toml", "[admin]\ntoken = \"\"\n");
        let cases: [(&[&str], Option<&str>); 5] = [
            (
                &["--config", &remote],
                Some("admin.allow_remote: needs admin.token"),
            ),
            (&["--config", &remote, "--admin-token", "t"], None),
            (&["--config", &remote_with_token], None),
            (&["--config", &empty_token], Some("admin.token: is empty")),
            (&[], None),
        ];
        for (flags, expected_error) in cases {
            let args =
                Args::try_parse_from(["mock-upstream"].iter().chain(flags)).expect("flags parse");
            let outcome = load_config(&args).map(|_| ()).map_err(|e| e.to_string());
            match expected_error {
                None => assert!(outcome.is_ok(), "{flags:?}: {outcome:?}"),
                Some(text) => assert!(
                    outcome
                        .as_ref()
                        .is_err_and(|e| e.contains(text) && e.starts_with("--admin-token")),
                    "{flags:?}: {outcome:?}"
                ),
            }
        }
    }
}
