//! The mock provider behind the proxy: the in-process mock's configuration, or an external mock-upstream
//! prepared through its admin API (`--upstream URL`), and the keys file handed to the proxy.
//!
//! An external mock gets what can be set at runtime: its ledger, limiters and rule counters are reset, its
//! fault-window epoch set to now, and — when the scenario has an `[upstream]` table — its rules replaced by the
//! scenario's `rules`, and its latency (`latency`, `route_latency`), `retry_after_grace` and `models` replaced
//! by the scenario's where the scenario sets them, so a run judges the same as with the in-process mock. Those
//! three are put back when the run ends ([`MockHandle::shutdown`]), also after a failed start; a run killed
//! outright cannot, and a failed restore is a warning. Keys and seed are the external mock's own (a warning
//! names any the scenario sets); the harness reads its effective config, after the changes, for the behaviour
//! verdicts.

use super::mock_admin::{AdminClient, AdminError};
use super::mock_handle::MockHandle;
use crate::error::HarnessError;
use crate::scenario::Scenario;
use mock_upstream::{KeyConfig, LatencySettings, MockConfig};
use std::time::Duration;

/// The scenario's `[upstream]` (mock config) or the default: three keys, no faults. A mock seed of 0 (unset)
/// takes the scenario's seed, so `--seed` fixes the mock's decisions too.
pub(crate) fn mock_config(scenario: &Scenario, seed: u64) -> MockConfig {
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

/// Starts the in-process mock with `config` on a loopback port.
pub(super) async fn start_in_process(config: &MockConfig) -> Result<MockHandle, HarnessError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| HarnessError::SutStart(format!("cannot bind the mock upstream: {e}")))?;
    let mock = mock_upstream::spawn(config.clone(), listener)
        .await
        .map_err(|e| HarnessError::SutStart(format!("mock upstream: {e}")))?;
    Ok(MockHandle::InProcess(mock))
}

/// Connects to the external mock at `url` (trusting `ca_file` when it is `https://`), resets it for this run and installs the scenario's base rules,
/// latency, grace and models; returns the handle (which restores the mock's own at shutdown) and the
/// mock's effective (redacted) config. With `owner` false (a shard other than 0) the mock is only read: its
/// owner prepares it.
pub(super) async fn connect_external(
    url: &str,
    token: Option<String>,
    ca_file: Option<&std::path::Path>,
    scenario: &Scenario,
    owner: bool,
) -> Result<(MockHandle, MockConfig), HarnessError> {
    let admin = AdminClient::new(url, token, ca_file).map_err(admin_error)?;
    let mut config = admin.config().await.map_err(admin_error)?;
    if !owner {
        return Ok((
            MockHandle::External(admin, RuntimeSettings::default()),
            config,
        ));
    }
    let wanted = scenario.upstream.as_ref().map(|u| u.get_ref());
    let mut restore = RuntimeSettings::default();
    if let Some(wanted) = wanted {
        let ignored = not_settable_at_runtime(wanted);
        if !ignored.is_empty() {
            eprintln!(
                "harness: --upstream {url}: the scenario's [upstream] {} cannot be changed at runtime and are \
                 the external mock's own; only its rules, latency, retry_after_grace and models are installed",
                ignored.join(", ")
            );
        }
        admin.set_rules(&wanted.rules).await.map_err(admin_error)?;
        let change = RuntimeSettings::wanted(wanted);
        restore = change.previous(&config);
        if let Err(e) = change.apply(&admin).await {
            restore.put_back(&admin).await;
            return Err(admin_error(e));
        }
    }
    let handle = MockHandle::External(admin, restore);
    let prepared = match handle.external_admin() {
        Some(admin) => prepare_for_run(admin).await,
        None => Ok(config.clone()),
    };
    match prepared {
        Ok(effective) => config = effective,
        Err(e) => {
            handle.shutdown().await;
            return Err(admin_error(e));
        }
    }
    Ok((handle, config))
}

/// Resets the mock and restarts its fault windows; returns its effective config now.
async fn prepare_for_run(admin: &AdminClient) -> Result<MockConfig, AdminError> {
    admin.reset().await?;
    admin.set_epoch_now().await?;
    admin.config().await
}

/// The runtime-settable parts of a mock's config the harness changes for a run (`None` = left alone): the
/// scenario's values going in, the mock's previous ones going back out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeSettings {
    latency: Option<LatencySettings>,
    retry_after_grace: Option<Duration>,
    /// Served models (empty = any model).
    models: Option<Vec<String>>,
}

impl RuntimeSettings {
    /// What the scenario's `[upstream]` sets, differing from the defaults.
    fn wanted(scenario: &MockConfig) -> RuntimeSettings {
        let default = MockConfig::default();
        let latency = scenario.latency_settings();
        RuntimeSettings {
            latency: (latency != default.latency_settings()).then_some(latency),
            retry_after_grace: (scenario.retry_after_grace != default.retry_after_grace)
                .then_some(scenario.retry_after_grace),
            models: (scenario.models != default.models).then(|| scenario.models.clone()),
        }
    }

    /// The mock's current values of what `self` changes.
    fn previous(&self, mock: &MockConfig) -> RuntimeSettings {
        RuntimeSettings {
            latency: self.latency.as_ref().map(|_| mock.latency_settings()),
            retry_after_grace: self.retry_after_grace.map(|_| mock.retry_after_grace),
            models: self.models.as_ref().map(|_| mock.models.clone()),
        }
    }

    /// Installs what is set.
    async fn apply(&self, admin: &AdminClient) -> Result<(), AdminError> {
        if let Some(latency) = &self.latency {
            admin.set_latency(latency).await?;
        }
        if let Some(grace) = self.retry_after_grace {
            admin.set_retry_after_grace(grace).await?;
        }
        if let Some(models) = &self.models {
            admin.set_models(models).await?;
        }
        Ok(())
    }

    /// Installs what is set, best effort: a failure is a warning (the run's results stand either way).
    pub(super) async fn put_back(&self, admin: &AdminClient) {
        if let Err(e) = self.apply(admin).await {
            eprintln!(
                "harness: warning: could not restore the external mock's latency / retry_after_grace / models: {e}"
            );
        }
    }
}

/// A failed admin call as a harness error: a refused token or rule is the user's input (exit 2), a mock that
/// does not answer (or is not a mock) is a system under test that is not up (exit 3).
fn admin_error(e: AdminError) -> HarnessError {
    match e {
        AdminError::Unauthorized { .. }
        | AdminError::Refused { status: 400, .. }
        | AdminError::Tls(_) => HarnessError::BadInput(format!("--upstream: {e}")),
        _ => HarnessError::SutStart(format!("--upstream: {e}")),
    }
}

/// Fields of a scenario's `[upstream]` that differ from the defaults but only the mock's own config sets.
pub(super) fn not_settable_at_runtime(wanted: &MockConfig) -> Vec<&'static str> {
    let d = MockConfig::default();
    [
        ("seed", wanted.seed != d.seed),
        ("keys", !wanted.keys.is_empty()),
        ("accept_any_key", wanted.accept_any_key != d.accept_any_key),
        (
            "default_output_tokens",
            wanted.default_output_tokens != d.default_output_tokens,
        ),
        (
            "max_output_tokens",
            wanted.max_output_tokens != d.max_output_tokens,
        ),
        (
            "override_headers",
            wanted.override_headers != d.override_headers,
        ),
        ("hang_max", wanted.hang_max != d.hang_max),
        (
            "fault_sequence_cap",
            wanted.fault_sequence_cap != d.fault_sequence_cap,
        ),
        ("admin", wanted.admin != d.admin),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// A proxy the harness starts gets `keys`: the external mock must know every one of them (unless it accepts
/// any key), or every request would be a 401 and the run would measure nothing.
pub(super) fn check_keys(
    url: &str,
    mock: &MockConfig,
    keys: &[KeyConfig],
) -> Result<(), HarnessError> {
    if mock.accepts_any_key() {
        return Ok(());
    }
    let missing: Vec<&str> = keys
        .iter()
        .filter(|k| !mock.keys.iter().any(|m| m.id == k.id))
        .map(|k| k.id.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = mock.keys.iter().map(|k| k.id.as_str()).collect();
    Err(HarnessError::BadInput(format!(
        "--upstream {url}: the proxy would be given keys the external mock does not have: {} (it has: {}); \
         configure the mock with the scenario's keys ([[upstream.keys]], default key1..key3 with secrets \
         sk-harness-mock-1..3) or attach to a proxy set up for it with --target",
        missing.join(", "),
        known.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            secret: "s".into(),
            ..KeyConfig::default()
        }
    }

    #[test]
    fn only_fields_the_scenario_sets_are_reported() {
        let mut c = MockConfig::default();
        assert!(not_settable_at_runtime(&c).is_empty());
        c.rules = vec![mock_upstream::FaultRule::new(
            mock_upstream::FaultKind::RateLimit,
        )];
        assert!(not_settable_at_runtime(&c).is_empty(), "rules are settable");
        c.models = vec!["gpt-4.1".into()];
        assert!(
            not_settable_at_runtime(&c).is_empty(),
            "models are settable"
        );
        c.seed = 9;
        c.keys = vec![key("k1")];
        assert_eq!(not_settable_at_runtime(&c), vec!["seed", "keys"]);
    }

    #[test]
    fn runtime_settings_change_only_what_the_scenario_sets_and_remember_the_mock_s() {
        let mock = MockConfig {
            retry_after_grace: Duration::from_millis(400),
            latency: mock_upstream::LatencyProfile {
                per_output_token: Some(Duration::from_millis(2)),
                ..Default::default()
            },
            ..MockConfig::default()
        };
        let plain = RuntimeSettings::wanted(&MockConfig::default());
        assert_eq!(plain, RuntimeSettings::default());
        assert_eq!(plain.previous(&mock), RuntimeSettings::default());
        let slow = MockConfig {
            latency: mock_upstream::LatencyProfile {
                per_output_token: Some(Duration::from_millis(9)),
                ..Default::default()
            },
            ..MockConfig::default()
        };
        let change = RuntimeSettings::wanted(&slow);
        assert_eq!(change.latency, Some(slow.latency_settings()));
        assert_eq!(change.retry_after_grace, None);
        assert_eq!(
            change.previous(&mock),
            RuntimeSettings {
                latency: Some(mock.latency_settings()),
                retry_after_grace: None,
                models: None,
            }
        );
        let graced = MockConfig {
            retry_after_grace: Duration::from_secs(1),
            ..MockConfig::default()
        };
        assert_eq!(
            RuntimeSettings::wanted(&graced)
                .previous(&mock)
                .retry_after_grace,
            Some(Duration::from_millis(400))
        );
        let restricted = MockConfig {
            models: vec!["gpt-4.1".into()],
            ..MockConfig::default()
        };
        let change = RuntimeSettings::wanted(&restricted);
        assert_eq!(change.models, Some(vec!["gpt-4.1".to_string()]));
        assert_eq!(
            change.previous(&mock).models,
            Some(vec![]),
            "a mock serving any model gets any model back"
        );
    }

    #[test]
    fn keys_table() {
        let mock = |ids: &[&str], any: Option<bool>| MockConfig {
            keys: ids.iter().map(|i| key(i)).collect(),
            accept_any_key: any,
            ..MockConfig::default()
        };
        let wanted = [key("key1"), key("key2")];
        let cases = [
            (mock(&["key1", "key2", "key3"], None), true),
            (mock(&["key1"], None), false),
            (mock(&[], None), true),
            (mock(&["other"], Some(true)), true),
        ];
        for (m, ok) in cases {
            let got = check_keys("http://x", &m, &wanted);
            assert_eq!(got.is_ok(), ok, "{:?}: {got:?}", m.keys);
        }
        let err = check_keys("http://x", &mock(&["key1"], None), &wanted).unwrap_err();
        assert!(err.to_string().contains("key2"), "{err}");
        assert_eq!(err.exit(), crate::exit::Exit::BadInput);
    }
}
