//! Serving with our own accept loop instead of `axum::serve`: each connection keeps its `TcpStream` reachable
//! so a fault can reset it (RST via `SO_LINGER 0`) or close it without sending a byte — things a
//! request handler cannot do through HTTP. Handlers reach their connection through a [`ConnControl`]
//! request extension, which also moves a streaming connection to the stream runtime (see `placement`).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::body::ResponseBody;
use super::pipeline::Response;
use super::placement::{Place, Places, StreamRuntime};
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

/// Lets a request handler end its own connection, or move it to the stream runtime and back.
#[derive(Clone, Default)]
pub(crate) struct ConnControl(Arc<ControlInner>);

#[derive(Default)]
struct ControlInner {
    notify: Notify,
    mode: AtomicU8,
    /// Wakes the connection task when `wants_streams` changed.
    relocate: Notify,
    wants_streams: AtomicBool,
}

impl ConnControl {
    /// Ask the connection task to drop the connection in `mode`.
    pub(crate) fn kill(&self, mode: Kill) {
        self.0.mode.store(mode as u8, Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    /// Move this connection to the stream runtime before its SSE body is first polled (so the body's
    /// timer lives there too). Returns once the connection task has had the chance to move: the yield lets
    /// the task see the request and hand the connection over; the rest of the handler runs where it landed.
    pub(crate) async fn move_to_streams(&self) {
        self.want(Place::Streams);
        tokio::task::yield_now().await;
    }

    /// The stream is over: move back to the front runtime for the connection's next requests.
    fn stream_ended(&self) {
        self.want(Place::Front);
    }

    fn want(&self, place: Place) {
        self.0
            .wants_streams
            .store(place == Place::Streams, Ordering::SeqCst);
        self.0.relocate.notify_one();
    }

    async fn relocation(&self) -> Place {
        self.0.relocate.notified().await;
        match self.0.wants_streams.load(Ordering::SeqCst) {
            true => Place::Streams,
            false => Place::Front,
        }
    }

    async fn killed(&self) -> Kill {
        self.0.notify.notified().await;
        match self.0.mode.load(Ordering::SeqCst) {
            2 => Kill::Reset,
            _ => Kill::Close,
        }
    }
}

/// Held by a stream's body: when the body is dropped (the stream ended, however it ended) the connection
/// moves back to the front runtime.
pub(crate) struct StreamPlacement(ConnControl);

impl StreamPlacement {
    /// A guard for `conn`'s stream (nothing moves yet).
    pub(crate) fn new(conn: ConnControl) -> Self {
        StreamPlacement(conn)
    }
}

impl Drop for StreamPlacement {
    fn drop(&mut self) {
        self.0.stream_ended();
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
/// Streams run on a second runtime started here and stopped on return (see `placement`).
pub(crate) async fn serve(
    listener: TcpListener,
    state: MockState,
    shutdown: impl Future<Output = ()>,
) {
    let router = super::app(state.clone());
    let connections = Arc::clone(&state.connections);
    let tracker = TaskTracker::new();
    let stream_runtime = StreamRuntime::start()
        .inspect_err(|err| tracing::warn!(%err, "no stream runtime: streams share the front one"))
        .ok();
    let places = Places::new(stream_runtime.as_ref(), tracker.clone());
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
                    let connection = Connection::new(stream, service, drain_rx.clone(), open);
                    tracker.spawn(connection.run(Place::Front, places.clone()));
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
    drop(stream_runtime);
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
    Relocate(Place),
}

type Http = http1::Connection<TokioIo<TcpStream>, MockService>;

/// One client connection and what its task listens to besides HTTP: kills, relocation, the drain.
struct Connection {
    http: Http,
    control: ConnControl,
    drain: watch::Receiver<bool>,
    _open: OpenConnection,
}

impl Connection {
    fn new(
        stream: TcpStream,
        service: MockService,
        drain: watch::Receiver<bool>,
        open: OpenConnection,
    ) -> Self {
        let _ = stream.set_nodelay(true);
        let control = service.control.clone();
        // No header-read timeout: it would arm a timer per request, and a mock has no slowloris to fear.
        let http = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(stream), service);
        Connection {
            http,
            control,
            drain,
            _open: open,
        }
    }

    /// Serve the connection at `here` until it ends or asks to run elsewhere (then it continues there).
    async fn run(mut self, here: Place, places: Places) {
        loop {
            // Biased: the connection is polled first on every wake-up (no random branch order to draw).
            let ended = tokio::select! {
                biased;
                _ = poll_fn(|cx| self.http.poll_without_shutdown(cx)) => Ended::Done,
                mode = self.control.killed() => Ended::Killed(mode),
                place = self.control.relocation() => Ended::Relocate(place),
                _ = self.drain.wait_for(|draining| *draining) => Ended::Draining,
            };
            match ended {
                Ended::Relocate(place) if place != here && places.has(place) => {
                    return self.move_to(place, places)
                }
                Ended::Relocate(_) => {}
                Ended::Done => return,
                Ended::Killed(mode) => return self.kill(mode),
                Ended::Draining => return self.drain().await,
            }
        }
    }

    /// Continue on the runtime at `place` (a plain function: the task is built outside `run`'s own body).
    fn move_to(self, place: Place, places: Places) {
        let task = self.run(place, places.clone());
        places.spawn(place, task);
    }

    fn kill(self, mode: Kill) {
        let stream = self.http.into_parts().io.into_inner();
        if mode == Kill::Reset {
            let _ = stream.set_zero_linger();
        }
        drop(stream);
    }

    async fn drain(mut self) {
        Pin::new(&mut self.http).graceful_shutdown();
        let _ = tokio::time::timeout(
            DRAIN_GRACE,
            poll_fn(|cx| self.http.poll_without_shutdown(cx)),
        )
        .await;
    }
}
