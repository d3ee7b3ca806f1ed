//! Bare client loops for choosing the hot-path HTTP client: N workers doing back-to-back GETs for T seconds, no
//! bookkeeping. Used by `bench/harness-vs-oha-wrk.sh` to show the ceiling of each client style:
//!
//! - `conn`: hyper's connection-level HTTP/1.1 client, each worker owning its connection (driven by a spawned
//!   task), on a current-thread runtime — the harness's hot path without its bookkeeping;
//! - `hyper`: hyper-util's pooled client (multi-thread runtime), the pooled alternative;
//! - `reqwest`: reqwest's pooled client (multi-thread runtime).
//!
//! `cargo run --release -p bench-tools --bin client_loop -- URL CONNECTIONS SECONDS KIND` (a kind above)

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, conns, secs, kind] = args.as_slice() else {
        eprintln!("usage: client_loop URL CONNECTIONS SECONDS conn|hyper|reqwest");
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
