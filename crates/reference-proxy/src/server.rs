//! Serving: the router, the serve loop over an already-bound listener with a shutdown future, and [`run`],
//! which does the whole life of the binary (config → bind → announce → serve → graceful shutdown).

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::admin::{admin_routes, health};
use crate::cli::Args;
use crate::config::ProxyConfig;
use crate::connections::serve_connections;
use crate::forward::proxy;
use crate::service::{ProxyService, RouterService};
use crate::state::AppState;

/// The proxy's routes: `/health`, `/metrics`, `/admin/keys...`, and everything else forwarded upstream.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::metrics))
        .nest("/admin", admin_routes(state.clone()))
        .fallback(proxy)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish. Every request
/// goes through the router (with its peer address as `ConnectInfo`, which the admin guard reads).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_connections(
        listener,
        move |peer| RouterService::new(router.clone(), peer),
        shutdown,
    )
    .await
}

/// Serves the proxy for `state` on `listener` until `shutdown` completes, then lets in-flight requests finish:
/// like [`serve`] of [`app`], but proxied routes go straight to the forwarder (see [`ProxyService`]).
pub async fn serve_proxy(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state.clone());
    serve_connections(
        listener,
        move |peer| ProxyService::new(state.clone(), router.clone(), peer),
        shutdown,
    )
    .await
}

/// Runs the proxy: validates `args` (a bad config is a [`crate::ConfigError`] inside the error, see
/// [`crate::EXIT_BAD_CONFIG`]), binds `--listen`, prints `listening on http://ADDR` as the first stdout line,
/// and serves `customize(app)` until SIGINT or SIGTERM, then lets open requests finish for at most
/// `--shutdown-grace`. Every request goes through the customized router; without a customization,
/// [`run_standalone`] serves the same proxy at less CPU per request.
pub async fn run(args: Args, customize: fn(Router) -> Router) -> anyhow::Result<()> {
    run_serving(args, Serving::Customized(customize)).await
}

/// [`run`] without a customization, as the binary runs: proxied routes skip the router ([`serve_proxy`]).
pub async fn run_standalone(args: Args) -> anyhow::Result<()> {
    run_serving(args, Serving::Standalone).await
}

/// Which service [`run_serving`] serves.
enum Serving {
    /// [`serve`] of `customize(app)`.
    Customized(fn(Router) -> Router),
    /// [`serve_proxy`].
    Standalone,
}

async fn run_serving(args: Args, serving: Serving) -> anyhow::Result<()> {
    let config = ProxyConfig::from_args(&args)?;
    if config.keys.is_empty() {
        tracing::warn!("the key pool is empty; add keys with POST /admin/keys");
    }
    let state = AppState::new(config)?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    announce(addr)?;
    tracing::info!(%addr, upstream = %state.config.upstream, keys = state.config.keys.len(), "proxy ready");
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections, finishing open requests");
        let _ = stopping.send(());
    };
    let grace_over = async move {
        if stopped.await.is_ok() {
            tokio::time::sleep(args.shutdown_grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = async move {
        match serving {
            Serving::Customized(customize) => {
                serve(listener, customize(app(state)), shutdown).await
            }
            Serving::Standalone => serve_proxy(listener, state, shutdown).await,
        }
    };
    tokio::select! {
        served = served => served.context("serving")?,
        () = grace_over => tracing::warn!("shutdown grace period over; dropping the requests still open"),
    }
    tracing::info!("shut down");
    Ok(())
}

fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    Ok(())
}

/// The Tokio runtime for the binary: single-threaded when the process may use only one CPU (e.g. pinned
/// with `taskset`), where a work-stealing pool only adds cross-thread wake-ups; multi-threaded otherwise.
pub fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
