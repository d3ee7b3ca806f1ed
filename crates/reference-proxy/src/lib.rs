//! # reference-proxy
//!
//! A lean, correct API-key-router proxy for OpenAI- and Anthropic-shaped APIs: the default system under test
//! of the load harness and the baseline that users compare their own proxy against.
//!
//! # Layout
//! - [`cli`]: the `Args` of the binary; [`config`]: `Args` + keys file + env → checked [`ProxyConfig`].
//! - Pure core, unit-tested without I/O:
//!   [`pool`] (key selection strategies, cooldowns, "all keys resting"), [`retry_hint`] (parsing `retry-after`
//!   and provider reset headers), [`retry_policy`] (what is retryable, budgets, key penalties),
//!   [`headers`] (what crosses the proxy), [`provider`] (per-provider credentials and error shapes),
//!   [`auth`] (client token and admin access decisions).
//! - I/O: [`state`] (shared pool), [`upstream`] (our own upstream connections, connection bound), [`tls`]
//!   (HTTPS upstreams: the trusted CA, ALPN `h2`/`http/1.1`), [`forward`]
//!   (attempts, failover), [`relay`] (the streamed response body),
//!   [`admin`] (`/admin/keys`, `/health`), [`metrics`] (`/metrics`: the process metrics for Prometheus), [`connections`] (accept loop, HTTP/1 connections, graceful
//!   shutdown), [`service`] (what serves a connection: the router, or proxied routes straight to the
//!   forwarder), [`server`] (router, serve, [`run`]), [`error`] (error responses).

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod error;
pub mod forward;
pub mod headers;
pub mod key;
pub mod metrics;
pub mod pool;
pub mod provider;
pub mod relay;
pub mod retry_hint;
pub mod retry_policy;
pub mod server;
pub mod service;
pub mod state;
pub mod tls;
pub mod upstream;

pub use cli::Args;
pub use config::{ConfigError, ProxyConfig, EXIT_BAD_CONFIG};
pub use error::{ProxyError, KEY_USED_HEADER};
pub use key::{KeySpec, KeyStatus, Secret};
pub use pool::Strategy;
pub use provider::Provider;
pub use server::{app, build_runtime, run, run_standalone, serve, serve_proxy, shutdown_signal};
pub use state::AppState;
