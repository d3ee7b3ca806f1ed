//! Serving with our own accept loop instead of `axum::serve`: each connection keeps its `TcpStream` reachable
//! so a fault can reset it (RST via `SO_LINGER 0`) or close it without sending a byte — things a
//! request handler cannot do through HTTP. Handlers reach their connection through a [`ConnControl`]
//! request extension, which also moves a streaming connection to the stream runtime (see `placement`).
//!
//! With TLS the handshake runs in the connection's task and ALPN picks the protocol. An HTTP/1.1 connection
//! behaves as over plain TCP (the TLS stream is unwrapped to reach the socket). An HTTP/2 connection carries
//! many requests at once, so a connection-dropping fault resets only its own stream (RST_STREAM, through a
//! service error) and the connection never moves between runtimes.
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::body::ResponseBody;
use super::pipeline::Response;
use super::placement::{Place, Places, StreamRuntime};
use super::state::MockState;
use crate::keys::{KeyRegistry, KeyRuntime};

/// How long open connections get to finish after shutdown starts before they are dropped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// HTTP/2: many exchanges share the connection, so faults reset streams and it never relocates.
    multiplexed: bool,
    /// The connection began with a TLS handshake.
    tls: bool,
    /// The key the connection is attributed to in the ledger (see `crate::ledger`).
    owner: parking_lot::Mutex<Option<ConnectionOwner>>,
}

/// The key a connection is attributed to, in the key registry that was current then (a ledger reset
/// replaces the registry, and the connection is then attributed afresh).
struct ConnectionOwner {
    registry: Weak<KeyRegistry>,
    key: Arc<KeyRuntime>,
}

impl ConnControl {
    /// The control of a connection that began with a TLS handshake; `multiplexed` for HTTP/2.
    fn over_tls(multiplexed: bool) -> Self {
        ConnControl(Arc::new(ControlInner {
            multiplexed,
            tls: true,
            ..Default::default()
        }))
    }

    /// Count a provider request carrying `key` in the ledger of the connection's key, attributing the
    /// connection to `key` first when this is its first request under `registry`.
    pub(crate) fn count_request(&self, registry: &Arc<KeyRegistry>, key: &Arc<KeyRuntime>) {
        let mut owner = self.0.owner.lock();
        let attributed = owner
            .as_ref()
            .filter(|owner| std::ptr::eq(owner.registry.as_ptr(), Arc::as_ptr(registry)));
        let owner_key = match attributed {
            Some(owner) => &owner.key,
            None => {
                key.ledger().connection_opened(self.0.tls);
                let fresh = ConnectionOwner {
                    registry: Arc::downgrade(registry),
                    key: Arc::clone(key),
                };
                &owner.insert(fresh).key
            }
        };
        owner_key.ledger().connection_request();
    }

    /// Whether the connection carries concurrent exchanges (HTTP/2).
    pub(crate) fn is_multiplexed(&self) -> bool {
        self.0.multiplexed
    }

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
        if self.is_multiplexed() {
            return;
        }
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
/// With `tls`, every connection starts with a TLS handshake and ALPN picks HTTP/2 or HTTP/1.1.
/// Streams run on a second runtime started here and stopped on return (see `placement`).
pub(crate) async fn serve(
    listener: TcpListener,
    state: MockState,
    tls: Option<TlsAcceptor>,
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
                    let drain = drain_rx.clone();
                    match &tls {
                        None => {
                            let control = service.control.clone();
                            let http = Http::plain(stream, service);
                            let connection = Connection::new(http, control, drain, open);
                            tracker.spawn(connection.run(Place::Front, places.clone()));
                        }
                        Some(acceptor) => {
                            let (acceptor, places) = (acceptor.clone(), places.clone());
                            tracker.spawn(async move {
                                let Some((http, control)) = Http::tls(stream, acceptor, service).await
                                else {
                                    return;
                                };
                                Connection::new(http, control, drain, open)
                                    .run(Place::Front, places)
                                    .await
                            });
                        }
                    }
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

/// The service error that makes hyper reset an HTTP/2 stream (RST_STREAM `INTERNAL_ERROR`) without a response.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stream reset by fault")]
pub(crate) struct ResetStream;

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response, ResetStream>> + Send>>;

/// One connection's request handler: hot provider routes go straight to the pipeline, the rest through the
/// router (with the connection's [`ConnControl`] and peer address as request extensions). A response marked
/// with [`ResetStream`] (an HTTP/2 connection-dropping fault) becomes the service error that resets its stream.
#[derive(Clone)]
struct MockService {
    state: MockState,
    router: Router,
    control: ConnControl,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for MockService {
    type Response = Response;
    type Error = ResetStream;
    type Future = BoxedResponse;

    fn call(&self, mut request: hyper::Request<Incoming>) -> BoxedResponse {
        if let Some(route) = super::hot_route(request.method(), request.uri().path()) {
            let (parts, body) = request.into_parts();
            let (state, conn) = (self.state.clone(), Some(self.control.clone()));
            return Box::pin(async move {
                reset_if_marked(
                    super::provider(state, route, parts.headers, body, None, conn).await,
                )
            });
        }
        request.extensions_mut().insert(self.control.clone());
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            reset_if_marked(response.map(ResponseBody::Streamed))
        })
    }
}

fn reset_if_marked(response: Response) -> Result<Response, ResetStream> {
    match response.extensions().get::<ResetStream>() {
        Some(_) => Err(ResetStream),
        None => Ok(response),
    }
}

enum Ended {
    Done,
    Killed(Kill),
    Draining,
    Relocate(Place),
}

type TlsIo = TokioIo<TlsStream<TcpStream>>;

/// A connection's HTTP state machine: HTTP/1.1 over TCP or TLS, or HTTP/2 over TLS (chosen by ALPN).
/// Plain HTTP/1.1, the hot path of load tests, stays inline (its size is what the connection task had before
/// TLS); the TLS variants are boxed so they do not make every plain connection's task larger.
#[allow(clippy::large_enum_variant)]
enum Http {
    Plain(http1::Connection<TokioIo<TcpStream>, MockService>),
    Tls1(Box<http1::Connection<TlsIo, MockService>>),
    Tls2(Pin<Box<http2::Connection<TlsIo, MockService, TokioExecutor>>>),
}

impl Http {
    fn plain(stream: TcpStream, service: MockService) -> Http {
        let _ = stream.set_nodelay(true);
        Http::Plain(http1_builder().serve_connection(TokioIo::new(stream), service))
    }

    /// Handshake (bounded by [`HANDSHAKE_TIMEOUT`]), then the protocol ALPN chose and the connection's
    /// control; None when the handshake fails or times out.
    async fn tls(
        stream: TcpStream,
        acceptor: TlsAcceptor,
        mut service: MockService,
    ) -> Option<(Http, ConnControl)> {
        let _ = stream.set_nodelay(true);
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(err)) => {
                tracing::debug!(%err, "TLS handshake failed");
                return None;
            }
            Err(_) => return None,
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        service.control = ConnControl::over_tls(h2);
        let control = service.control.clone();
        let http = match h2 {
            true => Http::Tls2(Box::pin(
                http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .serve_connection(io, service),
            )),
            false => Http::Tls1(Box::new(http1_builder().serve_connection(io, service))),
        };
        Some((http, control))
    }

    /// Serve until the connection ends (HTTP/1.1 keeps the transport so a fault can still kill it).
    fn poll_serve(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let result = match self {
            Http::Plain(http) => http.poll_without_shutdown(cx),
            Http::Tls1(http) => http.poll_without_shutdown(cx),
            Http::Tls2(http) => http.as_mut().poll(cx),
        };
        result.map(|_| ())
    }

    fn graceful_shutdown(&mut self) {
        match self {
            Http::Plain(http) => Pin::new(http).graceful_shutdown(),
            Http::Tls1(http) => Pin::new(&mut **http).graceful_shutdown(),
            Http::Tls2(http) => http.as_mut().graceful_shutdown(),
        }
    }

    /// The TCP socket under an HTTP/1.1 connection (an HTTP/2 one is never killed whole).
    fn into_socket(self) -> Option<TcpStream> {
        match self {
            Http::Plain(http) => Some(http.into_parts().io.into_inner()),
            Http::Tls1(http) => Some(http.into_parts().io.into_inner().into_inner().0),
            Http::Tls2(_) => None,
        }
    }
}

/// No header-read timeout: it would arm a timer per request, and a mock has no slowloris to fear.
fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    builder
}

/// One client connection and what its task listens to besides HTTP: kills, relocation, the drain.
struct Connection {
    http: Http,
    control: ConnControl,
    drain: watch::Receiver<bool>,
    _open: OpenConnection,
}

impl Connection {
    fn new(
        http: Http,
        control: ConnControl,
        drain: watch::Receiver<bool>,
        open: OpenConnection,
    ) -> Self {
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
                _ = poll_fn(|cx| self.http.poll_serve(cx)) => Ended::Done,
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
        if let Some(stream) = self.http.into_socket() {
            if mode == Kill::Reset {
                let _ = stream.set_zero_linger();
            }
            drop(stream);
        }
    }

    async fn drain(mut self) {
        self.http.graceful_shutdown();
        let _ = tokio::time::timeout(DRAIN_GRACE, poll_fn(|cx| self.http.poll_serve(cx))).await;
    }
}
