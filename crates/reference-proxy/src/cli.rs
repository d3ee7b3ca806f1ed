//! The command line (every flag also documented in `--help`); turned into a checked [`crate::ProxyConfig`]
//! by `config` before anything listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::pool::Strategy;

/// A lean, correct API-key-router proxy for OpenAI- and Anthropic-shaped APIs.
#[derive(Debug, Clone, Parser)]
#[command(name = "reference-proxy", version, about)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is the first stdout line).
    #[arg(long, default_value = "127.0.0.1:8000", env = "PROXY_LISTEN")]
    pub listen: SocketAddr,

    /// Upstream base URL, e.g. http://127.0.0.1:9000 or https://127.0.0.1:9443 (request paths are appended).
    #[arg(long, env = "PROXY_UPSTREAM")]
    pub upstream: String,

    /// PEM CA certificate(s) to trust for an https:// upstream (required with https://; only these are
    /// trusted). HTTP/2 or HTTP/1.1 is chosen by ALPN.
    #[arg(long, env = "PROXY_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// TOML keys file: `[[keys]]` tables with `id`, `secret` and optional `provider` ("openai"|"anthropic").
    #[arg(long, env = "PROXY_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,

    /// A pool key as ID=SECRET (repeatable).
    #[arg(long = "key", value_name = "ID=SECRET")]
    pub keys: Vec<String>,

    /// Pool keys from the environment: "id=secret,id=secret" (added to --keys-file and --key).
    #[arg(
        long = "env-keys",
        env = "PROXY_KEYS",
        hide_env_values = true,
        value_delimiter = ',',
        hide = true
    )]
    pub env_keys: Vec<String>,

    /// How the next key is chosen.
    #[arg(
        long,
        value_enum,
        default_value = "round-robin",
        env = "PROXY_STRATEGY"
    )]
    pub strategy: Strategy,

    /// Token clients must present (as `Authorization: Bearer T` or `x-api-key: T`); off when unset.
    #[arg(long, env = "PROXY_CLIENT_TOKEN", hide_env_values = true)]
    pub client_token: Option<String>,

    /// Bearer token required by the admin API (`/admin/keys`); when unset only loopback peers may use it.
    #[arg(long, env = "PROXY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Let non-loopback peers use the admin API (requires --admin-token).
    #[arg(long)]
    pub admin_allow_remote: bool,

    /// Time allowed to open a TCP connection to the upstream (for https://, the TLS handshake gets as long
    /// again).
    #[arg(long, default_value = "2s", value_parser = human_duration::parse)]
    pub connect_timeout: Duration,

    /// Per-attempt time allowed until upstream response headers arrive.
    #[arg(long, default_value = "60s", value_parser = human_duration::parse)]
    pub request_timeout: Duration,

    /// Longest silence allowed between two upstream body chunks (a stalled stream is cut after this).
    #[arg(long, default_value = "60s", value_parser = human_duration::parse)]
    pub read_timeout: Duration,

    /// Upstream attempts per client request, the first included.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,

    /// Total time for all attempts of one request until response headers are chosen.
    #[arg(long, default_value = "90s", value_parser = human_duration::parse)]
    pub deadline: Duration,

    /// Cooldown after a 429 that carries no retry hint.
    #[arg(long, default_value = "2s", value_parser = human_duration::parse)]
    pub default_cooldown: Duration,

    /// How long a key rests after a 429 saying its quota is exhausted (`insufficient_quota`).
    #[arg(long, default_value = "10m", value_parser = human_duration::parse)]
    pub quota_park: Duration,

    /// Upper bound on any cooldown taken from upstream retry hints.
    #[arg(long, default_value = "1h", value_parser = human_duration::parse)]
    pub max_cooldown: Duration,

    /// After SIGINT/SIGTERM, how long open requests (e.g. long streams) may finish before the proxy exits.
    #[arg(long, default_value = "10s", value_parser = human_duration::parse)]
    pub shutdown_grace: Duration,

    /// Upstream requests (= HTTP/1 connections) in flight at most; more wait for a free one within their
    /// attempt timeout, so a latency stall cannot open an unbounded number of upstream connections.
    #[arg(long, default_value_t = 512)]
    pub max_upstream_connections: usize,

    /// Largest client request body accepted, in bytes (bigger → 413). Bodies are held so they can be re-sent.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
}
