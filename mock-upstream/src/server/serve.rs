//! Serving with our own accept loop instead of `axum::serve`: each connection keeps its `TcpStream` reachable
//! so a fault can reset it (RST via `SO_LINGER 0`) or close it without sending a byte — things a
//! request handler cannot do through HTTP. Handlers reach their connection through a [`ConnControl`]
//! request extension.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::body::ResponseBody;
use super::pipeline::Response;
use super::state::MockState;

/// How long open connections get to finish after shutdown starts before they are dropped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How a handler wants its connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kill {
    /// FIN without a response.
    Close = 1,
    /// RST without a response.
    Reset = 2,
}

/// Lets a request handler end its own connection.
#[derive(Clone, Default)]
pub(crate) struct ConnControl(Arc<ControlInner>);

#[derive(Default)]
struct ControlInner {
    notify: Notify,
    mode: AtomicU8,
}

impl ConnControl {
    /// Ask the connection task to drop the connection in `mode`.
    pub(crate) fn kill(&self, mode: Kill) {
        self.0.mode.store(mode as u8, Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    async fn killed(&self) -> Kill {
        self.0.notify.notified().await;
        match self.0.mode.load(Ordering::SeqCst) {
            2 => Kill::Reset,
            _ => Kill::Close,
        }
    }
}

/// Number of open client connections (exported as `mock_open_connections`).
#[derive(Debug, Default)]
pub(crate) struct ConnectionGauge(AtomicU64);

impl ConnectionGauge {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn open(self: &Arc<Self>) -> OpenConnection {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }
}

/// Decrements the gauge when the connection task ends, however it ends.
struct OpenConnection(Arc<ConnectionGauge>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `state` on `listener` until `shutdown` completes, then drain connections (bounded by a grace period).
pub(crate) async fn serve(
    listener: TcpListener,
    state: MockState,
    shutdown: impl Future<Output = ()>,
) {
    let router = super::app(state.clone());
    let connections = Arc::clone(&state.connections);
    let tracker = TaskTracker::new();
    let (drain_tx, drain_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let open = connections.open();
                    let service = MockService {
                        state: state.clone(),
                        router: router.clone(),
                        control: ConnControl::default(),
                        peer,
                    };
                    tracker.spawn(serve_connection(stream, service, drain_rx.clone(), open));
                }
                Err(err) => {
                    // Typically EMFILE under extreme load: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = drain_tx.send(true);
    tracker.close();
    tracker.wait().await;
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// One connection's request handler: hot provider routes go straight to the pipeline, the rest through the
/// router (with the connection's [`ConnControl`] and peer address as request extensions).
#[derive(Clone)]
struct MockService {
    state: MockState,
    router: Router,
    control: ConnControl,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for MockService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn call(&self, mut request: hyper::Request<Incoming>) -> BoxedResponse {
        if let Some(route) = super::hot_route(request.method(), request.uri().path()) {
            let (parts, body) = request.into_parts();
            let (state, conn) = (self.state.clone(), Some(self.control.clone()));
            return Box::pin(async move {
                Ok(super::provider(state, route, parts.headers, body, None, conn).await)
            });
        }
        request.extensions_mut().insert(self.control.clone());
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(ResponseBody::Streamed))
        })
    }
}

enum Ended {
    Done,
    Killed(Kill),
    Draining,
}

async fn serve_connection(
    stream: TcpStream,
    service: MockService,
    mut drain: watch::Receiver<bool>,
    _open: OpenConnection,
) {
    let _ = stream.set_nodelay(true);
    let control = service.control.clone();
    // No header-read timeout: it would arm a timer per request, and a mock has no slowloris to fear.
    let mut connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    // Biased: the connection is polled first on every wake-up (no random branch order to draw).
    let ended = tokio::select! {
        biased;
        _ = poll_fn(|cx| connection.poll_without_shutdown(cx)) => Ended::Done,
        mode = control.killed() => Ended::Killed(mode),
        _ = drain.wait_for(|draining| *draining) => Ended::Draining,
    };
    match ended {
        Ended::Done => {}
        Ended::Killed(mode) => {
            let stream = connection.into_parts().io.into_inner();
            if mode == Kill::Reset {
                let _ = stream.set_zero_linger();
            }
            drop(stream);
        }
        Ended::Draining => {
            Pin::new(&mut connection).graceful_shutdown();
            let _ = tokio::time::timeout(
                DRAIN_GRACE,
                poll_fn(|cx| connection.poll_without_shutdown(cx)),
            )
            .await;
        }
    }
}
