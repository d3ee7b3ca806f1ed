//! The mock's configuration: keys, models, latency, fault rules, admin settings. Parsed from TOML with unknown
//! fields rejected, then validated as a whole, so a typo fails at startup with the file, line and field
//! instead of silently doing nothing during a load test.

use crate::faults::FaultRule;
use crate::latency::{LatencyProfile, LatencySettings};
use crate::route::{Provider, Route};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Id under which requests with unconfigured keys are pooled when any key is accepted.
pub const ANY_KEY_ID: &str = "_any";
/// Id under which rejected unknown keys are counted in the ledger.
pub const UNKNOWN_KEY_ID: &str = "_unknown";

/// Whole mock configuration. `Default`: accept any key and any model, no faults, no latency, seed 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Seed of every random draw (faults, latency, text).
    pub seed: u64,
    /// Accept requests with any key (pooled under `_any`). Unset: true exactly when `keys` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_any_key: Option<bool>,
    /// Configured API keys.
    pub keys: Vec<KeyConfig>,
    /// Model names served; anything else gets the provider's 404. Empty (the default): any model, echoed back.
    pub models: Vec<String>,
    /// Output tokens generated when a request does not set `max_tokens`.
    pub default_output_tokens: u32,
    /// Upper bound on generated tokens per response, whatever `max_tokens` says (bounds work and memory).
    pub max_output_tokens: u32,
    /// Latency for every route and key unless overridden.
    pub latency: LatencyProfile,
    /// Per-route latency overrides (a key's own `latency` wins over these).
    pub route_latency: BTreeMap<Route, LatencyProfile>,
    /// Fault rules installed at start.
    pub rules: Vec<FaultRule>,
    /// Admin API settings.
    pub admin: AdminConfig,
    /// Honour `x-mock-status`, `x-mock-latency` and `x-mock-fault` request headers.
    pub override_headers: bool,
    /// Longest a `hang` fault holds a request before closing the connection.
    #[serde(with = "human_duration::serde::required")]
    pub hang_max: Duration,
    /// How many `(route, index, fault)` decisions the ledger keeps per key.
    pub fault_sequence_cap: usize,
    /// An arrival inside a key's retry window less than this after the window opened is a race (the request
    /// was on the wire when the 429 was written), later ones are Retry-After violations.
    #[serde(with = "human_duration::serde::required")]
    pub retry_after_grace: Duration,
    /// HTTPS with HTTP/2 and HTTP/1.1 by ALPN (see `tls`); off by default.
    pub tls: crate::tls::TlsConfig,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            seed: 0,
            accept_any_key: None,
            keys: Vec::new(),
            models: Vec::new(),
            default_output_tokens: 16,
            max_output_tokens: 4096,
            latency: LatencyProfile::default(),
            route_latency: BTreeMap::new(),
            rules: Vec::new(),
            admin: AdminConfig::default(),
            override_headers: false,
            hang_max: Duration::from_secs(300),
            fault_sequence_cap: 10_000,
            retry_after_grace: crate::ledger::DEFAULT_RETRY_AFTER_GRACE,
            tls: crate::tls::TlsConfig::default(),
        }
    }
}

/// One API key the mock knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name used in rules, the ledger and metrics (never the secret).
    pub id: String,
    /// The secret clients send (`Authorization: Bearer` or `x-api-key`).
    pub secret: String,
    /// Restrict the key to one provider's routes (others get 401); unset = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Requests per minute; unset = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (input + max output) per minute; unset = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Account state.
    #[serde(default)]
    pub state: KeyState,
    /// Latency override for this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyProfile>,
}

/// Account state of a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Works normally.
    #[default]
    Active,
    /// 401 `invalid_api_key` / `authentication_error`.
    Revoked,
    /// 429 `insufficient_quota` with no retry-after (OpenAI); Anthropic's 400 credit-balance error.
    OutOfCredit,
}

/// Admin API settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token required on `/__admin/*`; unset = no token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Accept admin calls from non-loopback peers (default: loopback only).
    pub allow_remote: bool,
}

impl AdminConfig {
    /// An admin API reachable from other hosts must ask for a token: without one, anyone who can reach the
    /// mock could rewrite its faults mid-run. Checked on the effective config (the token often comes from
    /// `MOCK_ADMIN_TOKEN`, not the file).
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.token.as_deref() {
            Some("") => Err((
                "admin.token".into(),
                "is empty; omit it for no token (loopback only) or set a non-empty one".into(),
            )),
            None if self.allow_remote => Err((
                "admin.allow_remote".into(),
                "needs admin.token (or --admin-token / MOCK_ADMIN_TOKEN): a remotely reachable admin API \
                 without a token would let anyone change the mock's faults"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A configuration that cannot be used; `Display` names the origin (file), line and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{origin}: cannot read: {source}")]
    Read {
        /// File path.
        origin: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// TOML syntax error or a field with the wrong name/type.
    #[error("{origin}:{line}:{column}: {field}{message}")]
    Parse {
        /// File path or other origin label.
        origin: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// `field `a.b`: ` prefix, or empty.
        field: String,
        /// Parser message.
        message: String,
    },
    /// Well-formed but inconsistent.
    #[error("{origin}: field `{field}`: {problem}")]
    Invalid {
        /// File path or other origin label.
        origin: String,
        /// Dotted field path.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl MockConfig {
    /// Read and validate a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<MockConfig, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            origin: origin.clone(),
            source,
        })?;
        MockConfig::from_toml_str(&text, &origin)
    }

    /// Parse and validate TOML text; `origin` labels errors (usually the file path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<MockConfig, ConfigError> {
        let parse_error = |field: String, message: String, span: Option<std::ops::Range<usize>>| {
            let (line, column) = span.map(|s| line_column(text, s.start)).unwrap_or((0, 0));
            ConfigError::Parse {
                origin: origin.to_string(),
                line,
                column,
                field,
                message,
            }
        };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|err| parse_error(String::new(), err.message().to_string(), err.span()))?;
        let config: MockConfig = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let field = if path == "." {
                String::new()
            } else {
                format!("field `{path}`: ")
            };
            let inner = err.into_inner();
            parse_error(field, inner.message().to_string(), inner.span())
        })?;
        config
            .validate()
            .map_err(|(field, problem)| ConfigError::Invalid {
                origin: origin.to_string(),
                field,
                problem,
            })?;
        Ok(config)
    }

    /// The mock-wide latency part of the config (default profile and route overrides).
    pub fn latency_settings(&self) -> LatencySettings {
        LatencySettings {
            latency: self.latency.clone(),
            route_latency: self.route_latency.clone(),
        }
    }

    /// Whether unconfigured keys are accepted.
    pub fn accepts_any_key(&self) -> bool {
        self.accept_any_key.unwrap_or(self.keys.is_empty())
    }

    /// Check cross-field consistency; returns (field path, problem).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut ids = HashSet::new();
        let mut secrets = HashSet::new();
        for (index, key) in self.keys.iter().enumerate() {
            let field = |name: &str| format!("keys[{index}].{name}");
            if key.id.is_empty() || key.id.starts_with('_') {
                return Err((
                    field("id"),
                    "must be non-empty and not start with `_` (reserved)".into(),
                ));
            }
            if key.secret.is_empty() {
                return Err((field("secret"), "must be non-empty".into()));
            }
            if !ids.insert(&key.id) {
                return Err((field("id"), format!("`{}` is used twice", key.id)));
            }
            if !secrets.insert(&key.secret) {
                return Err((
                    field("secret"),
                    format!("same secret as an earlier key (id `{}`)", key.id),
                ));
            }
            if let Some(latency) = &key.latency {
                latency
                    .validate()
                    .map_err(|problem| (field("latency"), problem.to_string()))?;
            }
        }
        self.latency_settings()
            .validate()
            .map_err(|(field, problem)| (field, problem.to_string()))?;
        crate::models::validate_models(&self.models)
            .map_err(|err| (format!("models[{}]", err.index), err.problem))?;
        if self.max_output_tokens == 0 {
            return Err(("max_output_tokens".into(), "must be >= 1".into()));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let label = rule.id.clone().unwrap_or_else(|| format!("#{}", index + 1));
            rule.validate(&label)
                .map_err(|err| (format!("rules[{index}]"), err.to_string()))?;
        }
        self.tls.validate()
    }

    /// A copy safe to show: secrets and the admin token replaced by `"***"`.
    pub fn redacted(&self) -> MockConfig {
        let mut copy = self.clone();
        copy.keys
            .iter_mut()
            .for_each(|key| key.secret = "***".into());
        copy.admin.token = copy.admin.token.map(|_| "***".into());
        copy
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let text = r#"
seed = 42
accept_any_key = false
retry_after_grace = "400ms"
models = ["gpt-4", "claude-3-5-sonnet-20241022"]

[latency]
base = { lognormal = { median = "40ms", p99 = "200ms" } }
per_output_token = "1ms"

[route_latency.messages]
ttft = { fixed = "100ms" }
inter_token = { uniform = { min = "10ms", max = "30ms" } }

[[keys]]
id = "k1"
secret = "sk-test-1"
rpm = 60
tpm = 10000

[[keys]]
id = "k2"
secret = "sk-test-2"
provider = "anthropic"
state = "revoked"

[[rules]]
keys = ["k1"]
action = "rate_limit"
retry_after = "5s"
probability = 0.5


[admin]
token = "secret-admin"
"#;
        let config = MockConfig::from_toml_str(text, "mock.toml").unwrap();
        assert_eq!(config.keys.len(), 2);
        assert_eq!(config.keys[1].state, KeyState::Revoked);
        assert!(!config.accepts_any_key());
        assert!(config.route_latency.contains_key(&Route::Messages));
        assert_eq!(config.models, ["gpt-4", "claude-3-5-sonnet-20241022"]);
        assert!(
            MockConfig::default().models.is_empty(),
            "any model by default"
        );
        assert_eq!(config.retry_after_grace, Duration::from_millis(400));
        assert_eq!(
            MockConfig::default().retry_after_grace,
            Duration::from_millis(250)
        );
        let redacted = config.redacted();
        assert_eq!(redacted.keys[0].secret, "***");
        assert_eq!(redacted.admin.token.as_deref(), Some("***"));
        assert!(MockConfig::default().accepts_any_key());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            ("seed = 1\nbogus = 2\n", "mock.toml:2:1: field `bogus`"),
            (
                "seed = 1\n[[keys]]\nid = \"a\"\nsecret = \"s\"\nrpm = \"many\"\n",
                "mock.toml:5:7: field `keys[0].rpm`",
            ),
            (
                "[[rules]]\naction = \"explode\"\n",
                "mock.toml:2:10: field `rules[0].action`",
            ),
            ("seed = \n", "mock.toml:1:"),
            (
                "[latency]\nbase = { fixed = \"soon\" }\n",
                "field `latency.base.fixed`",
            ),
            (
                "[[keys]]\nid = \"a\"\nsecret = \"s\"\n[[keys]]\nid = \"a\"\nsecret = \"t\"\n",
                "field `keys[1].id`",
            ),
            (
                "[[rules]]\naction = \"error\"\nprobability = 3.0\n",
                "field `rules[0]`",
            ),
            (
                "retry_after_grace = \"later\"\n",
                "field `retry_after_grace`",
            ),
            (
                "models = [\"gpt-5\", \"\"]\n",
                "mock.toml: field `models[1]`: must be a non-empty model name",
            ),
            ("models = \"gpt-5\"\n", "mock.toml:1:10: field `models`"),
            (
                "[tls]\nenable = true\n",
                "mock.toml:2:1: field `tls.enable`",
            ),
            (
                "[tls]\nca_out = \"ca.pem\"\n",
                "mock.toml: field `tls.ca_out`: is set but TLS is off",
            ),
            (
                "[tls]\nenabled = true\nalpn = [\"h3\"]\n",
                "mock.toml:3:9: field `tls.alpn[0]`: unknown variant `h3`",
            ),
        ];
        for (text, expected) in cases {
            let message = MockConfig::from_toml_str(text, "mock.toml")
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with(expected) || message.contains(expected),
                "{text:?} -> {message}"
            );
        }
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = MockConfig::from_toml_file(Path::new("/nonexistent/mock.toml")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("/nonexistent/mock.toml: cannot read"));
    }
}
