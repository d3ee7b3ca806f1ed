//! The accept loop: one HTTP/1 connection task per client connection, `TCP_NODELAY` on every socket, and a
//! graceful shutdown that stops accepting, lets each connection finish its request in flight, then returns.
//!
//! Why not `axum::serve`: it serves through hyper-util's auto (HTTP/1 + HTTP/2 sniffing) connection and a tower
//! adapter per request. LLM clients talk HTTP/1.1 to a plain-HTTP proxy (HTTP/2 needs TLS + ALPN in their SDKs),
//! and on the proxy's hot path every layer is paid twice per request (client side and upstream side), so the
//! connections are served by hyper's HTTP/1 server directly with the service the caller builds per connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long accepting pauses after an error that is not about one connection (e.g. out of file descriptors),
/// so the loop does not spin while the process is at its limit.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves every connection accepted on `listener` with the service `service_for(peer)` builds for it, until
/// `shutdown` completes; then stops accepting and returns once every open connection has finished the request
/// it was serving.
pub async fn serve_connections<S, F>(
    listener: TcpListener,
    mut service_for: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    F: FnMut(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(());
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        let connection = serve_connection(tcp, service_for(peer), stop_rx.clone());
        let open = open_rx.clone();
        tokio::spawn(async move {
            connection.await;
            drop(open);
        });
    }
    drop(listener);
    drop(stop_rx);
    drop(stop_tx);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// One client connection: HTTP/1 with keep-alive until the client closes it or shutdown begins.
async fn serve_connection<S>(tcp: TcpStream, service: S, mut stop: watch::Receiver<()>)
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "client connection ended with an error");
    }
}

async fn accept_failed(error: io::Error) {
    let one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if !one_connection {
        tracing::error!(%error, "accept failed; pausing");
        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
    }
}
