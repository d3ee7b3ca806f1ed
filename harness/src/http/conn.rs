//! One HTTP/1.1 connection owned by one load worker (a closed-model user, an open-model in-flight slot).
//!
//! Why not a pool: a pooled client looks a connection up (and locks the pool) on every request; a worker that
//! owns its connection, as oha and wrk do, sends straight on it. The connection is opened lazily (TCP_NODELAY)
//! and reopened after an error, a close by the server, or an abandoned exchange (timeout): hyper closes an
//! HTTP/1 connection whose response future was dropped, so the sender is only kept after a complete response.
//!
//! The connection also owns the worker's timeout timer (see `Connection::exchange`): one timer re-armed when it
//! fires early, rather than a timer registered and cancelled for every request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// Why a request could not be sent or got no response head.
#[derive(Debug)]
pub enum SendError {
    /// TCP connect failed.
    Connect(std::io::Error),
    /// HTTP handshake, send or response head failed.
    Http(hyper::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "tcp connect error: {e}"),
            SendError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl StdError for SendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            SendError::Connect(e) => Some(e),
            SendError::Http(e) => Some(e),
        }
    }
}

/// A worker's own lazily opened HTTP/1.1 connection, and its timeout timer.
pub struct Connection {
    pub(super) link: Link,
    /// Armed at or before the current exchange's deadline; created on first use (inside the runtime).
    pub(super) watchdog: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("open", &self.link.idle.is_some())
            .field("keep_alive", &self.link.keep_alive)
            .finish()
    }
}

impl Connection {
    /// An unopened connection; `keep_alive = false` opens a fresh one for every request.
    pub fn new(keep_alive: bool) -> Connection {
        Connection {
            link: Link {
                idle: None,
                lent: None,
                keep_alive,
            },
            watchdog: None,
        }
    }
}

/// The HTTP/1.1 connection itself.
pub(super) struct Link {
    /// Ready for the next request.
    idle: Option<SendRequest<Full<Bytes>>>,
    /// Carrying the current exchange (dropped unless it ends cleanly).
    lent: Option<SendRequest<Full<Bytes>>>,
    keep_alive: bool,
}

impl Link {
    /// Sends `req` to `connect_to` (`host:port`), opening the connection when needed. A request refused by a
    /// kept connection that the server closed meanwhile is retried once on a fresh connection. The connection
    /// is lent out until [`Link::finished`] is called after the response body has been read.
    pub(super) async fn send(
        &mut self,
        connect_to: &str,
        req: http::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, SendError> {
        self.lent = None;
        let mut reused = self.idle.take();
        if let Some(sender) = reused.as_mut() {
            if sender.ready().await.is_err() {
                reused = None;
            }
        }
        let was_reused = reused.is_some();
        let mut sender = match reused {
            Some(s) => s,
            None => open(connect_to).await?,
        };
        let resp = match sender.try_send_request(req).await {
            Ok(resp) => resp,
            Err(mut e) => match e.take_message() {
                Some(req) if was_reused => {
                    sender = open(connect_to).await?;
                    sender.send_request(req).await.map_err(SendError::Http)?
                }
                _ => return Err(SendError::Http(e.into_error())),
            },
        };
        self.lent = Some(sender);
        Ok(resp)
    }

    /// The response of the last [`Link::send`] was read to its end: keep the connection for the next request
    /// (with keep-alive).
    pub(super) fn finished(&mut self) {
        if self.keep_alive {
            self.idle = self.lent.take();
        } else {
            self.lent = None;
        }
    }
}

/// Opens a TCP connection with TCP_NODELAY, does the HTTP/1.1 handshake and spawns the connection task.
async fn open(connect_to: &str) -> Result<SendRequest<Full<Bytes>>, SendError> {
    let stream = TcpStream::connect(connect_to)
        .await
        .map_err(SendError::Connect)?;
    stream.set_nodelay(true).map_err(SendError::Connect)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::trace!("load connection ended: {e}");
        }
    });
    Ok(sender)
}
