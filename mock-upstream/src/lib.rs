//! # mock-upstream
//!
//! An OpenAI/Anthropic-faithful mock LLM provider for load-testing API-key-router proxies: provider-shaped
//! bodies, SSE streams, errors and rate-limit headers; per-key RPM/TPM limits; seeded, reproducible fault
//! injection; and a ledger of what the client did to each key (including Retry-After violations).
//!
//! # Layout
//! - [`config`]: `MockConfig` from TOML (unknown fields rejected, errors name file:line:field).
//! - [`route`]: providers and endpoints.
//! - [`faults`]: the `FaultRule` format, pure match/trigger decisions, the live rule book.
//! - [`seed`]: per-request RNGs derived from (seed, key, route, index).
//! - [`latency`]: delay distributions and latency profiles.
//! - [`limiter`]: pure RPM/TPM buckets.
//! - [`models`]: which model names are served (any by default, or a configured list) and what is listed.
//! - [`ledger`]: per-key accounting and the `LedgerSnapshot` served by the admin API.
//! - `keys`: secret → key runtime; unknown keys pooled.
//! - `providers`: OpenAI and Anthropic wire formats (kept apart from fault logic).
//! - `server`: router, request pipeline, bodies, admin API, metrics, accept loop.
//! - [`tls`]: the `[tls]` table, the generated CA and leaf, the rustls server config (ALPN h2, http/1.1).
//! - [`running`]: in-process [`spawn`] / [`RunningMock`]; [`cli`]: the binary.

pub mod cli;
pub mod config;
pub mod faults;
mod keys;
pub mod latency;
pub mod ledger;
pub mod limiter;
pub mod models;
mod providers;
pub mod route;
pub mod running;
pub mod seed;
mod server;
mod text;
pub mod tls;

pub use config::{AdminConfig, ConfigError, KeyConfig, KeyState, MockConfig};
pub use faults::{FaultKind, FaultRule, LimitKind, RuleError};
pub use latency::{Distribution, LatencyProfile, LatencySettings};
pub use ledger::{
    FaultRecord, KeyLedgerSnapshot, LedgerSnapshot, RetryDepthHistogram, DEFAULT_RETRY_AFTER_GRACE,
};
pub use models::{validate_models, ModelListError, LISTED_WHEN_UNRESTRICTED};
pub use providers::anthropic::rfc3339;
pub use providers::openai::go_duration;
pub use route::{Provider, Route};
pub use running::{spawn, RunningMock};
pub use tls::{AlpnProtocol, TlsConfig, TlsError, TlsSetup};
