//! In-process mock: [`spawn`] serves on a listener the caller bound (port 0 in tests) and returns a
//! [`RunningMock`] handle with the same operations as the admin API, for harnesses and tests that embed it.
//! With `[tls] enabled` it serves HTTPS and tells where the generated CA is ([`RunningMock::ca_file`]).

use crate::config::MockConfig;
use crate::faults::{FaultRule, RuleError};
use crate::ledger::LedgerSnapshot;
use crate::models::{validate_models, ModelListError};
use crate::server::{serve, state::MockState};
use crate::tls::TlsSetup;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A mock serving in the background of the current Tokio runtime.
pub struct RunningMock {
    addr: SocketAddr,
    state: MockState,
    /// Kept for the CA's path and PEM (and so a temporary CA file lives as long as the mock).
    tls: Option<TlsSetup>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Validate `config` and serve it on `listener` until [`RunningMock::shutdown`] (or drop).
/// Invalid configs and rules, and unusable TLS files, fail with `io::ErrorKind::InvalidInput` naming the
/// problem.
pub async fn spawn(config: MockConfig, listener: TcpListener) -> io::Result<RunningMock> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    config
        .validate()
        .map_err(|(field, problem)| invalid(format!("field `{field}`: {problem}")))?;
    let tls = match config.tls.enabled {
        true => Some(TlsSetup::prepare(&config.tls).map_err(|err| invalid(err.to_string()))?),
        false => None,
    };
    let state = MockState::new(config).map_err(|err| invalid(err.to_string()))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let acceptor = tls.as_ref().map(TlsSetup::acceptor);
    let task = tokio::spawn(serve::serve(listener, state.clone(), acceptor, async {
        let _ = stopped.await;
    }));
    Ok(RunningMock {
        addr,
        state,
        tls,
        stop: Some(stop),
        task,
    })
}

/// Serve until `shutdown` completes (used by the binary with SIGINT/SIGTERM); the listener is already bound,
/// and `tls` (HTTPS) already prepared so its CA file could be announced.
pub async fn serve_until(
    config: MockConfig,
    listener: TcpListener,
    tls: Option<&TlsSetup>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RuleError> {
    let state = MockState::new(config)?;
    serve::serve(listener, state, tls.map(TlsSetup::acceptor), shutdown).await;
    Ok(())
}

impl RunningMock {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, or `https://IP:PORT` with TLS: the base URL clients and proxies point at.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Whether the mock serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The generated CA certificate's PEM file clients should trust (None without TLS or with given files).
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().and_then(TlsSetup::ca_file)
    }

    /// The generated CA certificate as PEM (None without TLS or with given files).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().and_then(TlsSetup::ca_pem)
    }

    /// Replace every fault rule atomically (all-or-nothing); returns their ids.
    pub fn set_rules(&self, rules: Vec<FaultRule>) -> Result<Vec<String>, RuleError> {
        self.state.rules.replace(rules, self.state.now())
    }

    /// Append one rule (its `ttl`, if any, starts now); returns its id.
    pub fn add_rule(&self, rule: FaultRule) -> Result<String, RuleError> {
        self.state.rules.add(rule, self.state.now())
    }

    /// Remove a rule; false when no rule has that id.
    pub fn remove_rule(&self, id: &str) -> bool {
        self.state.rules.remove(id, self.state.now())
    }

    /// Remove every rule.
    pub fn clear_rules(&self) {
        self.state.rules.clear();
    }

    /// The live rules with their ids.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.state.list_rules()
    }

    /// Serve only these models from now on (others get the provider's 404); empty = any model.
    pub fn set_models(&self, models: Vec<String>) -> Result<(), ModelListError> {
        validate_models(&models)?;
        self.state.set_models(&models);
        Ok(())
    }

    /// The served models (empty = any model).
    pub fn models(&self) -> Vec<String> {
        self.state.served_models().configured().to_vec()
    }

    /// Set the fault-window epoch to now.
    pub fn set_epoch_now(&self) {
        self.state.set_epoch_now();
    }

    /// What `GET /__admin/ledger` returns.
    pub fn ledger(&self) -> LedgerSnapshot {
        self.state.ledger()
    }

    /// Reset counters, limiters, rule match counts and the ledger (rules, latency and models stay).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stop accepting, let open connections finish (bounded grace period), and wait.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningMock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
