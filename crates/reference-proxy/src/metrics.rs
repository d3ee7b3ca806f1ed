//! `GET /metrics`: the proxy's own process metrics in the Prometheus text format.
//!
//! Why: a proxy deployed as containers or replicas has no PID the harness can watch, but a `/metrics` page is
//! what Prometheus (and the harness's `metrics` source) reads. The `prometheus` crate's process collector
//! exports the standard names every client library uses (`process_resident_memory_bytes`, `process_open_fds`,
//! `process_cpu_seconds_total`, `process_start_time_seconds`, `process_virtual_memory_bytes`,
//! `process_threads`, `process_max_fds`), read from `/proc` at each scrape; elsewhere the page is empty.

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, Registry, TextEncoder};

/// The registry holding the process collector (created on first use).
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        if let Err(e) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!("process metrics not available: {e}");
        }
        registry
    })
}

/// The current metrics page.
pub fn exposition() -> Result<String, prometheus::Error> {
    let mut page = Vec::new();
    TextEncoder::new().encode(&registry().gather(), &mut page)?;
    Ok(String::from_utf8_lossy(&page).into_owned())
}

/// `GET /metrics`.
pub async fn metrics() -> Response {
    match exposition() {
        Ok(page) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], page).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_the_standard_process_metrics_with_live_values() {
        let page = exposition().expect("encodes");
        let value = |name: &str| {
            page.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} missing from\n{page}"))
        };
        let own_start = value("process_start_time_seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        assert!(own_start > 0.0 && own_start <= now + 1.0, "{own_start}");
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_virtual_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
