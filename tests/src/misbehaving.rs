//! A forwarding key-router proxy that is correct except for **one chosen defect**, so the harness's behaviour
//! verdicts (`proxy-behaviour`) can be shown to fail exactly when they should.
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
//!
//! # Layout
//! - this file: the CLI ([`Args`], [`Defect`]) and [`run`].
//! - [`pool`]: key rotation and rest periods, bent by the defect.
//! - [`forward`]: attempts, failover and delivery (streamed or buffered), `X-Key-Used`.
//! - [`process`]: launching a proxy binary and reading its `listening on` line (used by the tests).

pub mod forward;
pub mod pool;
pub mod process;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::{Json, Router};
use reference_proxy::Secret;

use crate::misbehaving::forward::ProxyState;
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
    /// `--upstream` is not an `http://` URL.
    #[error("`{0}` is not an http:// URL (the fixture has no TLS)")]
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
    /// Upstream base URL, e.g. http://127.0.0.1:9000.
    #[arg(long, value_parser = parse_upstream)]
    pub upstream: String,
    /// A pool key as ID=SECRET (repeatable, at least one).
    #[arg(long = "key", value_name = "ID=SECRET", value_parser = parse_key, required = true)]
    pub keys: Vec<PoolKey>,
    /// The defect to exhibit.
    #[arg(long, value_enum)]
    pub defect: Defect,
    /// Rest after a 429 that carries no usable retry hint.
    #[arg(long, default_value = "1s", value_parser = human_duration::parse)]
    pub default_cooldown: Duration,
    /// Longest wait for an upstream's response headers.
    #[arg(long, default_value = "30s", value_parser = human_duration::parse)]
    pub request_timeout: Duration,
}

/// Accepts `http://host:port[/]` and drops a trailing slash (request paths are appended).
fn parse_upstream(text: &str) -> Result<String, FlagError> {
    if text.starts_with("http://") && text.len() > "http://".len() {
        Ok(text.trim_end_matches('/').to_string())
    } else {
        Err(FlagError::NotHttpUrl(text.to_string()))
    }
}

/// The fixture's routes: `/health` and everything else forwarded.
pub fn app(state: Arc<ProxyState>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .fallback(forward::proxy)
        .with_state(state)
}

/// Binds `--listen`, prints `listening on http://ADDR` (first stdout line), serves until SIGINT/SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")?;
    let pool = KeyPool::new(args.keys, args.defect);
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
    reference_proxy::serve(listener, app(state), reference_proxy::shutdown_signal())
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
            ("https://x", None),
            ("http://", None),
        ];
        for (text, url) in upstreams {
            assert_eq!(parse_upstream(text).ok().as_deref(), url, "{text}");
        }
    }
}
