//! A forwarding key-router proxy that is correct except for **one chosen defect** (or none), so the harness's
//! behaviour verdicts (`proxy-behaviour`) can be shown to fail exactly when they should — and to pass for a
//! correct proxy that is not sub-millisecond (see [`pace`]).
//!
//! The correct parts come from the reference proxy's pure modules (which headers cross, how a key is presented
//! per provider, what is retryable, how `retry-after` is read, provider-shaped errors), so each fixture differs
//! from a good proxy only where its [`Defect`] says:
//!
//! | defect | what it does wrong | verdict that must fail |
//! |---|---|---|
//! | `ignores-retry-after` | keeps sending on a key the upstream told to wait | Retry-After compliance |
//! | `first-key-only` | always starts with the first ready key instead of rotating | key fairness |
//! | `buffers-streams` | reads the whole upstream body before answering | stream pass-through |
//! | `no-failover` | one attempt per request; upstream failures reach the client | failover masking |
//! | `holds-when-exhausted` | while every key rests, holds the request until one is back instead of answering 429 | exhausted answer |
//! | `new-connection-per-request` | keeps no idle upstream connection: every attempt opens a new one | connection reuse |
//! | `none` | nothing: a correct proxy (the reference for the slow modes) | — |
//!
//! The correct answer while every key rests is an immediate 429 with `retry-after` (and `retry-after-ms`): the time
//! until the first key is back, or `--default-cooldown` when unknown.
//!
//! Independently of the defect, `--service-time`, `--max-concurrency` and `--pause-every`/`--pause-for` make the
//! fixture slow and unsteady ([`pace`]). Keys come from `--key ID=SECRET` and/or the reference proxy's
//! `--keys-file` (the harness's `{keys_file}`); a key's `provider` restriction is ignored. An `https://` upstream
//! needs `--upstream-ca FILE` (the harness's `{ca_file}`, the only CA trusted) and is spoken to in HTTP/2 or
//! HTTP/1.1, as its ALPN answer says — so `new-connection-per-request` also pays a TLS handshake per request.
//!
//! # Layout
//! - this file: the CLI ([`Args`], [`Defect`]) and [`run`].
//! - [`pool`]: key rotation and rest periods, bent by the defect.
//! - [`forward`]: attempts, failover and delivery (streamed or buffered), `X-Key-Used`.
//! - [`pace`]: service time, bounded concurrency and stop-the-world pauses.
//! - [`process`]: launching a proxy binary and reading its `listening on` line (used by the tests).

pub mod forward;
pub mod pace;
pub mod pool;
pub mod process;

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::{Json, Router};
use reference_proxy::Secret;

use crate::misbehaving::forward::ProxyState;
use crate::misbehaving::pace::{Pace, PaceError, PauseSchedule};
use crate::misbehaving::pool::KeyPool;

/// The one thing the fixture does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Defect {
    /// Never rests a key after a 429, whatever its `retry-after` says.
    IgnoresRetryAfter,
    /// Starts every request at the first key; other keys only serve while it rests.
    FirstKeyOnly,
    /// Holds every response body until it is complete, then sends it at once.
    BuffersStreams,
    /// Makes a single upstream attempt per request and passes its failure on.
    NoFailover,
    /// While every key rests, waits until one is back (and tries it) instead of answering 429 at once.
    HoldsWhenExhausted,
    /// Keeps no idle upstream connection, so every upstream attempt opens (and, over TLS, handshakes) a new one.
    NewConnectionPerRequest,
    /// No defect: a correct proxy.
    None,
}

/// One pool key: public id and secret.
#[derive(Debug, Clone)]
pub struct PoolKey {
    /// Shown in `X-Key-Used`.
    pub id: String,
    /// Sent upstream; never shown.
    pub secret: Secret,
}

/// A `--key` or `--upstream` flag the fixture cannot use.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// `--key` is not `ID=SECRET`.
    #[error("expected ID=SECRET with a non-empty id and secret")]
    NotIdEqualsSecret,
    /// The secret cannot go in a header.
    #[error("the secret of key `{0}` contains characters not allowed in an HTTP header")]
    SecretNotAHeaderValue(String),
    /// `--upstream` is not an `http://` or `https://` URL.
    #[error("`{0}` is not an http:// or https:// URL")]
    NotHttpUrl(String),
}

/// Parses `ID=SECRET`; the secret must be sendable in a header.
pub fn parse_key(text: &str) -> Result<PoolKey, FlagError> {
    let Some((id, secret)) = text
        .split_once('=')
        .filter(|(id, secret)| !id.trim().is_empty() && !secret.is_empty())
    else {
        return Err(FlagError::NotIdEqualsSecret);
    };
    if http::HeaderValue::from_str(secret).is_err() {
        return Err(FlagError::SecretNotAHeaderValue(id.trim().to_string()));
    }
    Ok(PoolKey {
        id: id.trim().to_string(),
        secret: Secret::new(secret),
    })
}

/// The fixture's command line (shaped like the reference proxy's where they overlap).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "misbehaving-proxy",
    about = "A key-router proxy that is correct except for one chosen defect (test fixture)"
)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is the first stdout line).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Upstream base URL, e.g. http://127.0.0.1:9000, or https://… with --upstream-ca.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: String,
    /// PEM CA certificate an `https://` upstream's certificate is signed by (the harness's `{ca_file}`); the
    /// only CA trusted. HTTP/2 or HTTP/1.1 by ALPN.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// A pool key as ID=SECRET (repeatable; at least one key in all, from here or `--keys-file`).
    #[arg(long = "key", value_name = "ID=SECRET", value_parser = parse_key, required_unless_present = "keys_file")]
    pub keys: Vec<PoolKey>,
    /// The reference proxy's TOML keys file (`[[keys]]` with `id`, `secret`); its keys come before `--key`'s.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
    /// The defect to exhibit (`none`: a correct proxy).
    #[arg(long, value_enum)]
    pub defect: Defect,
    /// Time every request waits before it is forwarded (an async sleep), e.g. 5ms.
    #[arg(long, default_value = "0s", value_parser = human_duration::parse)]
    pub service_time: Duration,
    /// Requests served at once; the others queue (a worker is held until the response body ends).
    #[arg(long)]
    pub max_concurrency: Option<NonZeroUsize>,
    /// Period of stop-the-world pauses since the process start, e.g. 3s (needs --pause-for).
    #[arg(long, requires = "pause_for", value_parser = human_duration::parse)]
    pub pause_every: Option<Duration>,
    /// Length of each pause, shorter than --pause-every, e.g. 150ms.
    #[arg(long, requires = "pause_every", value_parser = human_duration::parse)]
    pub pause_for: Option<Duration>,
    /// Rest after a 429 that carries no usable retry hint.
    #[arg(long, default_value = "1s", value_parser = human_duration::parse)]
    pub default_cooldown: Duration,
    /// Longest wait for an upstream's response headers.
    #[arg(long, default_value = "30s", value_parser = human_duration::parse)]
    pub request_timeout: Duration,
}

/// Accepts `http[s]://host:port[/]` and drops a trailing slash (request paths are appended).
fn parse_upstream(text: &str) -> Result<String, FlagError> {
    let host = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    if host.is_some_and(|host| !host.is_empty()) {
        Ok(text.trim_end_matches('/').to_string())
    } else {
        Err(FlagError::NotHttpUrl(text.to_string()))
    }
}

/// The keys of `--keys-file` (if any) followed by those of `--key`.
fn pool_keys(args: &Args) -> anyhow::Result<Vec<PoolKey>> {
    let mut keys = match &args.keys_file {
        Some(path) => reference_proxy::config::load_keys_file(path)?
            .into_iter()
            .map(|spec| PoolKey {
                id: spec.id,
                secret: spec.secret,
            })
            .collect(),
        None => Vec::new(),
    };
    keys.extend(args.keys.iter().cloned());
    anyhow::ensure!(
        !keys.is_empty(),
        "no keys: give --key ID=SECRET or a --keys-file with [[keys]]"
    );
    Ok(keys)
}

impl Args {
    /// The pause schedule of `--pause-every`/`--pause-for` (clap makes them come together), checked.
    pub fn pauses(&self) -> Result<Option<PauseSchedule>, PaceError> {
        match (self.pause_every, self.pause_for) {
            (Some(every), Some(length)) => PauseSchedule::new(every, length).map(Some),
            _ => Ok(None),
        }
    }
}

/// The pace of `args`' slow-mode flags.
fn pace(args: &Args) -> Result<Pace, PaceError> {
    Ok(Pace::new(
        args.service_time,
        args.max_concurrency,
        args.pauses()?,
    ))
}

/// The fixture's routes: `/health`, `/metrics` (the reference proxy's process metrics, so remote monitor
/// sources can read it) and everything else forwarded, all at `pace`.
pub fn app(state: Arc<ProxyState>, pace: Arc<Pace>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(reference_proxy::metrics::metrics))
        .fallback(forward::proxy)
        .layer(axum::middleware::from_fn_with_state(pace, pace::paced))
        .with_state(state)
}

/// The fixture's upstream client: HTTP/1.1 to an `http://` upstream; HTTP/2 or HTTP/1.1 by ALPN to an `https://` one.
pub type UpstreamClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<axum::body::Bytes>,
>;

/// The HTTP client to the upstream: pooled like any proxy's, except with `new-connection-per-request`, whose
/// pool keeps no idle connection (each request's connection is closed once its response is read, and over TLS
/// every request pays a handshake, HTTP/2 or not).
fn upstream_client(args: &Args) -> anyhow::Result<UpstreamClient> {
    let idle_per_host = match args.defect {
        Defect::NewConnectionPerRequest => 0,
        _ => usize::MAX,
    };
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_connect_timeout(Some(Duration::from_secs(5)));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(upstream_tls_config(args)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(idle_per_host)
            .build(connector),
    )
}

/// Trusts only `--upstream-ca` (nothing without it); an `https://` upstream needs one.
fn upstream_tls_config(args: &Args) -> anyhow::Result<rustls::ClientConfig> {
    let mut config = match &args.upstream_ca {
        Some(ca_file) => (*reference_proxy::tls::client_config(ca_file)?).clone(),
        None => {
            anyhow::ensure!(
                !args.upstream.starts_with("https://"),
                "--upstream {} is HTTPS: give --upstream-ca FILE, the CA its certificate is signed by",
                args.upstream
            );
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    };
    // The connector offers ALPN itself (and refuses a config that already does).
    config.alpn_protocols.clear();
    Ok(config)
}

/// Binds `--listen`, prints `listening on http://ADDR` (first stdout line), serves until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let pace = Arc::new(pace(&args)?);
    let client = upstream_client(&args)?;
    let pool = KeyPool::new(pool_keys(&args)?, args.defect);
    let state = Arc::new(ProxyState {
        upstream: args.upstream,
        pool,
        client,
        defect: args.defect,
        default_cooldown: args.default_cooldown,
        request_timeout: args.request_timeout,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, defect = ?args.defect, "misbehaving proxy ready");
    reference_proxy::serve(
        listener,
        app(state, pace),
        reference_proxy::shutdown_signal(),
    )
    .await
    .context("serving")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_upstream_parsing_table() {
        let keys = [
            ("k1=sk-1", Some("k1")),
            ("k1=a=b", Some("k1")),
            ("=sk", None),
            ("k1=", None),
            ("k1", None),
            ("k1=a\nb", None),
        ];
        for (text, id) in keys {
            assert_eq!(
                parse_key(text).ok().map(|k| k.id),
                id.map(String::from),
                "{text}"
            );
        }
        let upstreams = [
            ("http://127.0.0.1:9/", Some("http://127.0.0.1:9")),
            ("https://x/", Some("https://x")),
            ("https://", None),
            ("ftp://x", None),
            ("http://", None),
        ];
        for (text, url) in upstreams {
            assert_eq!(parse_upstream(text).ok().as_deref(), url, "{text}");
        }
    }

    #[test]
    fn slow_mode_flags_table() {
        use clap::Parser;
        let base = "misbehaving-proxy --upstream http://127.0.0.1:9 --defect none";
        // (extra flags, parses, builds a pace)
        let cases = [
            ("--key k1=s", true, true),
            ("--keys-file keys.toml", true, true),
            ("", false, false),
            (
                "--key k1=s --service-time 5ms --max-concurrency 8",
                true,
                true,
            ),
            ("--key k1=s --max-concurrency 0", false, false),
            ("--key k1=s --pause-every 3s --pause-for 150ms", true, true),
            ("--key k1=s --pause-every 3s", false, false),
            ("--key k1=s --pause-for 150ms", false, false),
            ("--key k1=s --pause-every 1s --pause-for 1s", true, false),
            ("--key k1=s --service-time 5", true, true),
        ];
        for (extra, parses, paced) in cases {
            let line = format!("{base} {extra}");
            let args = Args::try_parse_from(line.split_whitespace());
            assert_eq!(args.is_ok(), parses, "{line}: {args:?}");
            if let Ok(args) = args {
                assert_eq!(pace(&args).is_ok(), paced, "{line}");
            }
        }
    }
}
