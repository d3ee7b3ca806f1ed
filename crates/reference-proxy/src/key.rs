//! A pool key as configured: its public id, its secret and optionally the one provider it belongs to.
//! The secret lives in a type whose `Debug` never shows it, so it cannot leak through logs by accident.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// An API-key secret. `Debug` prints `***`; it is deliberately not `Serialize` and not `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<Arc<str>>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself; call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// One key of the pool, as given by the keys file, the environment, the CLI or the admin API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Public identifier: shown in `X-Key-Used`, logs and the admin API.
    pub id: String,
    /// The provider API key; never shown.
    pub secret: Secret,
    /// Restricts the key to one provider's routes; `None` serves both.
    #[serde(default)]
    pub provider: Option<Provider>,
}

/// What the admin API shows about a key (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    /// Public identifier.
    pub id: String,
    /// Provider restriction, if any.
    pub provider: Option<Provider>,
    /// `ready`, `cooling`, `parked` (quota exhausted) or `disabled` (upstream said 401).
    pub state: String,
    /// Milliseconds until a cooling or parked key may be used again; 0 otherwise.
    pub cooldown_remaining_ms: u64,
    /// Requests currently using the key.
    pub in_flight: u32,
    /// Upstream attempts sent with the key since it was added.
    pub attempts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_shows_in_debug() {
        let spec = KeySpec {
            id: "k1".into(),
            secret: Secret::new("sk-very-secret"),
            provider: None,
        };
        let printed = format!("{spec:?}");
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(printed.contains("k1"));
    }
}
