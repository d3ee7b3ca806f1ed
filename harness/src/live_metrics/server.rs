//! The endpoint: `GET /metrics` on the `--metrics-listen` address, served with axum on the run's runtime
//! (not on the load threads) from before the proxy starts until the run's results are written.

use super::metrics::LiveMetrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The OpenMetrics text content type.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long [`MetricsServer::stop`] lets scrapes in progress finish.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another process (or a run still going) holds the port.
    #[error("--metrics-listen {addr}: the address is already in use (another harness run, or another process on port {port}); pick another port or stop it", port = addr.port())]
    InUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other bind failure (an address not on this machine, a privileged port).
    #[error("--metrics-listen {addr}: cannot listen there: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// Parses `--metrics-listen`: `IP:PORT` (`127.0.0.1:9464`, `[::1]:9464`) or `localhost:PORT` (loopback IPv4).
/// Names other than `localhost` are refused rather than resolved, so the endpoint never opens on an address the
/// user did not write.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text
        .strip_prefix("localhost:")
        .and_then(|port| port.parse::<u16>().ok());
    port.map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .ok_or_else(|| {
            format!("expected IP:PORT or localhost:PORT (e.g. 127.0.0.1:9464), got `{text}`")
        })
}

/// A running endpoint.
pub struct MetricsServer {
    metrics: Arc<LiveMetrics>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The router: `GET /metrics` only.
pub fn app(metrics: Arc<LiveMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<LiveMetrics>>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded",
        )
            .into_response(),
    }
}

impl MetricsServer {
    /// Binds `addr` and serves `metrics` there until [`MetricsServer::stop`]. Must be called within a tokio
    /// runtime.
    pub fn start(
        addr: SocketAddr,
        metrics: Arc<LiveMetrics>,
    ) -> Result<MetricsServer, ListenError> {
        let listener = bind(addr)?;
        let addr = listener.local_addr().unwrap_or(addr);
        let shutdown = CancellationToken::new();
        let stopped = shutdown.clone();
        let router = app(metrics.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::warn!("live metrics endpoint stopped: {e}");
            }
        });
        Ok(MetricsServer {
            metrics,
            addr,
            shutdown,
            task,
        })
    }

    /// The metrics served.
    pub fn metrics(&self) -> &Arc<LiveMetrics> {
        &self.metrics
    }

    /// The bound address (the real port when `addr` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and releases the port (a suite's next run binds it again); a scrape still unfinished
    /// after [`STOP_GRACE`] is cut off.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(STOP_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    let std_listener = std::net::TcpListener::bind(addr).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => ListenError::InUse { addr },
        _ => ListenError::Bind { addr, source },
    })?;
    std_listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(std_listener))
        .map_err(|source| ListenError::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_ip_port_or_localhost() {
        let cases = [
            ("127.0.0.1:9464", Some("127.0.0.1:9464")),
            ("[::1]:9464", Some("[::1]:9464")),
            ("0.0.0.0:9464", Some("0.0.0.0:9464")),
            ("localhost:9464", Some("127.0.0.1:9464")),
            ("localhost", None),
            ("localhost:metrics", None),
            ("example.com:9464", None),
            (":9464", None),
            ("127.0.0.1:99999", None),
        ];
        for (text, expected) in cases {
            let parsed = parse_listen_addr(text).ok().map(|a| a.to_string());
            assert_eq!(parsed.as_deref(), expected, "{text}");
        }
        assert!(parse_listen_addr("nowhere")
            .unwrap_err()
            .contains("`nowhere`"));
    }
}
