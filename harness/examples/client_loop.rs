//! Bare client loops for choosing the hot-path HTTP client: N workers doing back-to-back GETs for T seconds, no
//! bookkeeping. Used by `bench/harness-vs-oha-wrk.sh` to show the ceiling of each client style:
//!
//! - `conn`: hyper's connection-level HTTP/1.1 client, each worker owning its connection (driven by a spawned
//!   task), on a current-thread runtime — the harness's hot path without its bookkeeping;
//! - `conn-inline`: the same, the connection driven inside the worker's own task (see `Driver` below);
//!   `conn-inline-yield` yields to the scheduler before each request, to batch writes as `conn` does;
//! - `hyper`: hyper-util's pooled client (multi-thread runtime), the harness's previous hot path;
//! - `reqwest`: reqwest's pooled client (multi-thread runtime).
//!
//! `cargo run --release -p harness --example client_loop -- URL CONNECTIONS SECONDS KIND` (a kind above)

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, conns, secs, kind] = args.as_slice() else {
        eprintln!("usage: client_loop URL CONNECTIONS SECONDS conn|conn-inline|conn-inline-yield|hyper|reqwest");
        std::process::exit(2);
    };
    let (Ok(uri), Ok(conns), Ok(secs)) = (
        url.parse::<http::Uri>(),
        conns.parse::<usize>(),
        secs.parse::<u64>(),
    ) else {
        eprintln!("client_loop: bad URL, connection count or seconds");
        std::process::exit(2);
    };
    let mut builder = if kind.starts_with("conn") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    runtime.block_on(async {
        let mut tasks = Vec::new();
        let pooled = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let reqwest_client = reqwest::Client::new();
        for _ in 0..conns {
            let (done, pooled, reqwest_client) =
                (done.clone(), pooled.clone(), reqwest_client.clone());
            let (uri, url, kind) = (uri.clone(), url.clone(), kind.clone());
            tasks.push(tokio::spawn(async move {
                let n = match kind.as_str() {
                    "conn" => conn_loop(&uri, deadline).await,
                    "conn-inline" => inline_loop(&uri, deadline, false).await,
                    "conn-inline-yield" => inline_loop(&uri, deadline, true).await,
                    "hyper" => {
                        count_until(deadline, || async {
                            match pooled.get(uri.clone()).await {
                                Ok(r) => r.into_body().collect().await.is_ok(),
                                Err(_) => false,
                            }
                        })
                        .await
                    }
                    _ => {
                        count_until(deadline, || async {
                            match reqwest_client.get(&url).send().await {
                                Ok(r) => r.bytes().await.is_ok(),
                                Err(_) => false,
                            }
                        })
                        .await
                    }
                };
                done.fetch_add(n, Ordering::Relaxed);
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let n = done.load(Ordering::Relaxed);
    println!(
        "{kind} {:.0} req/s ({n} requests)",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

/// Successful `request()`s until `deadline`.
async fn count_until<F, Fut>(deadline: Instant, request: F) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut n = 0;
    while Instant::now() < deadline {
        n += u64::from(request().await);
    }
    n
}

/// The `host:port` and origin-form path of `uri`.
fn authority_and_path(uri: &http::Uri) -> (String, String) {
    let authority = uri
        .authority()
        .map_or("127.0.0.1:80", |a| a.as_str())
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    (authority, path)
}

/// Opens one HTTP/1.1 connection (TCP_NODELAY); `None` when connect or handshake fails.
async fn connect(
    authority: &str,
) -> Option<(
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Empty<Bytes>>,
)> {
    let stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let _ = stream.set_nodelay(true);
    hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()
}

/// One owned HTTP/1.1 connection doing back-to-back GETs until `deadline` (reconnecting after errors).
async fn conn_loop(uri: &http::Uri, deadline: Instant) -> u64 {
    let (authority, path) = authority_and_path(uri);
    let mut n = 0;
    while Instant::now() < deadline {
        let Some((mut sender, conn)) = connect(&authority).await else {
            return n;
        };
        tokio::spawn(conn);
        while Instant::now() < deadline && sender.ready().await.is_ok() {
            let req = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .body(Empty::<Bytes>::new())
                .expect("valid request");
            let Ok(resp) = sender.send_request(req).await else {
                break;
            };
            if resp.into_body().collect().await.is_err() {
                break;
            }
            n += 1;
        }
    }
    n
}

/// Like [`conn_loop`], the connection driven in the worker's own task instead of a spawned one.
async fn inline_loop(uri: &http::Uri, deadline: Instant, yield_first: bool) -> u64 {
    let (authority, path) = authority_and_path(uri);
    let mut n = 0;
    while Instant::now() < deadline {
        let Some((mut sender, conn)) = connect(&authority).await else {
            return n;
        };
        let mut conn = Driver::new(conn);
        while Instant::now() < deadline && conn.run(sender.ready()).await.is_ok() {
            let req = http::Request::get(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .body(Empty::<Bytes>::new())
                .expect("valid request");
            if yield_first {
                tokio::task::yield_now().await;
            }
            let Ok(resp) = conn.run(sender.send_request(req)).await else {
                break;
            };
            if conn.run(resp.into_body().collect()).await.is_err() {
                break;
            }
            n += 1;
        }
    }
    n
}

// ----- Driving a hyper connection inside the worker's own task (the `conn-inline` loops) -----
//
// Why try it: hyper's connection-level client splits an HTTP/1 connection into a `SendRequest` handle and a
// `Connection` future that does the I/O, and the usual way is to spawn the latter. Then every response costs
// three task polls and two scheduler hops: the connection task reads the response and wakes the worker, the
// worker sends the next request and wakes the connection task, which writes it. Here the worker polls the
// connection itself while it awaits a hyper future (ready, response head, body frame). The connection and the
// worker's futures wake each other through hyper's internal channels while they are polled together; a gate
// waker absorbs those wake-ups and answers them by polling again at once, so only the socket (or a timer)
// wakes the task: one task poll per response.
//
// Measured (valgrind instruction counts, and CPU time on one core against nginx): no cheaper per request than a
// spawned connection task — the extra passes over the connection cost what the saved task hops save — and
// sending each next request straight after its response, instead of after the other ready connections' reads,
// did not lower the kernel time either. The harness keeps the spawned connection task.

/// Passes over (future, connection) per task poll before yielding to the scheduler (a bound, in case they keep
/// waking each other, e.g. when tokio's cooperative budget runs out).
const MAX_PASSES: usize = 8;
/// The driver is polling: a wake-up now means "poll again", not "wake the task".
const POLLING: u8 = 1;
/// Woken since the current pass began.
const WOKEN: u8 = 2;

/// The waker handed to hyper and the socket: it forwards to the worker task's waker, except while the driver
/// itself is polling, when it only notes the wake-up.
#[derive(Default)]
struct Gate {
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Gate {
    /// Remembers `waker` (the task's) as the one to forward to.
    fn track(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if !task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.fetch_or(WOKEN, Ordering::AcqRel) & POLLING == 0 {
            if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                task.wake_by_ref();
            }
        }
    }
}

/// A connection future (hyper's `http1::Connection`) polled by whoever awaits work on it, in the same task.
struct Driver<C> {
    conn: Option<C>,
    gate: Arc<Gate>,
    waker: Waker,
}

impl<C> std::fmt::Debug for Driver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("running", &self.conn.is_some())
            .finish()
    }
}

impl<C: Future + Unpin> Driver<C> {
    /// Drives `conn` (until it ends) whenever [`Driver::run`] awaits something.
    fn new(conn: C) -> Driver<C> {
        let gate = Arc::new(Gate::default());
        Driver {
            conn: Some(conn),
            waker: Waker::from(gate.clone()),
            gate,
        }
    }

    /// Awaits `fut` (e.g. a response or body frame of this connection) while polling the connection. When the
    /// connection ends (closed, failed) it is dropped, which fails whatever was still waiting on it.
    async fn run<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| self.poll_with(fut.as_mut(), cx)).await
    }

    fn poll_with<F: Future>(
        &mut self,
        mut fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        self.gate.track(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..MAX_PASSES {
            self.gate.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut inner) {
                self.gate.state.store(0, Ordering::Release);
                return Poll::Ready(out);
            }
            if let Some(conn) = self.conn.as_mut() {
                if Pin::new(conn).poll(&mut inner).is_ready() {
                    self.conn = None;
                }
            }
            // Leaving the pass: from here on wake-ups go to the task, unless one came during the pass.
            if self.gate.state.swap(0, Ordering::AcqRel) & WOKEN == 0 {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
