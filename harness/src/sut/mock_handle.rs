//! The mock upstream a run controls, whichever way it runs: in this process ([`RunningMock`]) or elsewhere,
//! driven through its admin API (`--upstream URL`, [`AdminClient`]). The run code (timeline, ledger snapshots)
//! talks to [`MockHandle`] only, so it does not care which.

use super::mock_admin::{AdminClient, AdminError};
use super::upstream::RuntimeSettings;
use mock_upstream::{FaultRule, LedgerSnapshot, RuleError, RunningMock};

/// Why an operation on the mock failed.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The in-process mock refused a rule.
    #[error("{0}")]
    Rule(#[from] RuleError),
    /// The external mock's admin API failed or refused.
    #[error("{0}")]
    Admin(#[from] AdminError),
}

/// The mock behind the proxy under test.
pub enum MockHandle {
    /// Served by this process (the default).
    InProcess(RunningMock),
    /// An external mock-upstream (`--upstream URL`), driven through `/__admin`, and its own latency / grace
    /// to put back at shutdown.
    External(AdminClient, RuntimeSettings),
}

impl MockHandle {
    /// The mock's base URL (what the proxy is pointed at).
    pub fn base_url(&self) -> String {
        match self {
            MockHandle::InProcess(m) => m.base_url(),
            MockHandle::External(a, _) => a.base_url().to_string(),
        }
    }

    /// The CA certificate file a client of this mock trusts: the in-process mock's generated CA when it serves
    /// HTTPS, the `--upstream-ca` given for an external one; `None` for plain HTTP.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        match self {
            MockHandle::InProcess(m) => m.ca_file(),
            MockHandle::External(a, _) => a.ca_file(),
        }
    }

    /// `"in-process"` or `"external"` (for `summary.json`).
    pub fn mode(&self) -> &'static str {
        match self {
            MockHandle::InProcess(_) => "in-process",
            MockHandle::External(..) => "external",
        }
    }

    /// The ledger now.
    pub async fn ledger(&self) -> Result<LedgerSnapshot, MockError> {
        match self {
            MockHandle::InProcess(m) => Ok(m.ledger()),
            MockHandle::External(a, _) => Ok(a.ledger().await?),
        }
    }

    /// Installs one rule (its id is assigned by the mock); returns the id.
    pub async fn add_rule(&self, rule: FaultRule) -> Result<String, MockError> {
        match self {
            MockHandle::InProcess(m) => Ok(m.add_rule(rule)?),
            MockHandle::External(a, _) => Ok(a.add_rule(&rule).await?),
        }
    }

    /// Removes a rule (one already gone is not an error).
    pub async fn remove_rule(&self, id: &str) -> Result<(), MockError> {
        match self {
            MockHandle::InProcess(m) => {
                m.remove_rule(id);
                Ok(())
            }
            MockHandle::External(a, _) => Ok(a.remove_rule(id).await?),
        }
    }

    /// The admin client of an external mock.
    pub(super) fn external_admin(&self) -> Option<&AdminClient> {
        match self {
            MockHandle::InProcess(_) => None,
            MockHandle::External(a, _) => Some(a),
        }
    }

    /// Stops an in-process mock; an external one is left running (it is not ours), with the latency and grace
    /// it had before the run put back.
    pub async fn shutdown(self) {
        match self {
            MockHandle::InProcess(m) => m.shutdown().await,
            MockHandle::External(a, restore) => restore.put_back(&a).await,
        }
    }
}
