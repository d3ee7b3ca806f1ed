//! Bare client loops for choosing the hot-path HTTP client: N connections doing back-to-back GETs for T seconds
//! with hyper-util's pooled client or reqwest, no bookkeeping. Used by `bench/harness-vs-oha-wrk.sh`.
//!
//! `cargo run --release -p harness --example client_loop -- URL CONNECTIONS SECONDS hyper|reqwest`

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, conns, secs, kind] = args.as_slice() else {
        eprintln!("usage: client_loop URL CONNECTIONS SECONDS hyper|reqwest");
        std::process::exit(2);
    };
    let conns: usize = conns.parse().expect("connections");
    let deadline = Instant::now() + Duration::from_secs(secs.parse().expect("seconds"));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    let hyper_client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let reqwest_client = reqwest::Client::new();
    let uri: http::Uri = url.parse().expect("url");
    for _ in 0..conns {
        let (done, hyper_client, reqwest_client, uri, url, kind) = (
            done.clone(),
            hyper_client.clone(),
            reqwest_client.clone(),
            uri.clone(),
            url.clone(),
            kind.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let ok = if kind == "hyper" {
                    match hyper_client.get(uri.clone()).await {
                        Ok(r) => r.into_body().collect().await.is_ok(),
                        Err(_) => false,
                    }
                } else {
                    match reqwest_client.get(&url).send().await {
                        Ok(r) => r.bytes().await.is_ok(),
                        Err(_) => false,
                    }
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "{kind} {:.0} req/s ({n} requests)",
        n as f64 / start.elapsed().as_secs_f64()
    );
}
