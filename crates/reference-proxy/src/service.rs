//! What one client connection's requests are served by (see [`crate::connections`]):
//! - [`RouterService`]: every request through an axum [`Router`] — for a router someone customized (wrapped in
//!   middleware), which must see every request;
//! - [`ProxyService`]: the proxy's own service — proxied routes go straight to the forwarder, and only `/health`,
//!   `/metrics` and `/admin/...` go through the router. Routing, extractors and body boxing through axum cost more per
//!   request than a path comparison, and the proxied routes are the hot path.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use http::Request;
use hyper::body::Incoming;
use hyper::service::Service;

use crate::forward::proxy_request;
use crate::state::AppState;

/// A router as one connection's service: every request gets the peer address ([`ConnectInfo`], which the admin
/// guard reads), then goes through the router.
#[derive(Debug, Clone)]
pub struct RouterService {
    router: Router,
    peer: SocketAddr,
}

impl RouterService {
    /// Serves `router` to the client at `peer`.
    pub fn new(router: Router, peer: SocketAddr) -> RouterService {
        RouterService { router, peer }
    }
}

impl Service<Request<Incoming>> for RouterService {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        tower::Service::call(&mut self.router.clone(), request)
    }
}

/// Whether the proxy's router (rather than the forwarder) answers `path`.
pub fn served_by_router(path: &str) -> bool {
    path == "/health"
        || path == "/metrics"
        || path
            .strip_prefix("/admin")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The proxy's service for one connection: proxied routes straight to the forwarder, the rest via
/// [`crate::app`].
#[derive(Debug, Clone)]
pub struct ProxyService {
    state: AppState,
    router: RouterService,
}

impl ProxyService {
    /// Serves the proxy (`state`, with `router` = [`crate::app`] of it) to the client at `peer`.
    pub fn new(state: AppState, router: Router, peer: SocketAddr) -> ProxyService {
        ProxyService {
            state,
            router: RouterService::new(router, peer),
        }
    }
}

/// The future of one request served by [`ProxyService`].
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request<Incoming>> for ProxyService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        if served_by_router(request.uri().path()) {
            return Box::pin(self.router.call(request));
        }
        let state = self.state.clone();
        Box::pin(async move { Ok(proxy_request(&state, request).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_admin_paths_go_to_the_router_and_the_rest_is_proxied() {
        let cases = [
            ("/health", true),
            ("/metrics", true),
            ("/admin", true),
            ("/admin/keys", true),
            ("/admin/keys/k1", true),
            ("/v1/chat/completions", false),
            ("/v1/messages", false),
            ("/v1/models", false),
            ("/healthz", false),
            ("/administrator", false),
            ("/", false),
        ];
        for (path, routed) in cases {
            assert_eq!(served_by_router(path), routed, "{path}");
        }
    }
}
