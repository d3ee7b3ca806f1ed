//! The in-process mock provider's configuration and the keys file handed to the proxy.

use crate::error::HarnessError;
use crate::scenario::Scenario;
use mock_upstream::{KeyConfig, MockConfig};

/// The scenario's `[upstream]` (mock config) or the default: three keys, no faults. A mock seed of 0 (unset)
/// takes the scenario's seed, so `--seed` fixes the mock's decisions too.
pub(super) fn mock_config(scenario: &Scenario, seed: u64) -> MockConfig {
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

/// Writes the mock's keys as a reference-proxy keys file (`[[keys]] id, secret, provider`), readable only by
/// this user; it lives in the temp dir, not the results dir, so result artifacts never carry key secrets.
pub(super) fn write_keys_file(keys: &[KeyConfig]) -> Result<tempfile::NamedTempFile, HarnessError> {
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
