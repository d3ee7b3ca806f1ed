//! The response body as it goes to the client: upstream's body frame by frame, never buffered, with
//! - the bytes already read for inspection (a 429's body) sent first,
//! - a cut when upstream stays silent longer than `--read-timeout` between two frames (the client then sees a
//!   broken stream, as it would from a failing provider),
//! - the key lease and the upstream connection held inside it, so both count as in use exactly until the last
//!   byte is sent or the client goes away — and nothing about the request outlives that; the connection goes
//!   back for reuse only when upstream's body was relayed to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::state::Lease;
use crate::upstream::LentConnection;

/// Why a relayed body ended early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The upstream connection failed mid-body.
    #[error("upstream body broken: {0}")]
    Upstream(#[from] hyper::Error),
    /// Upstream sent nothing for longer than the read timeout.
    #[error("upstream body stalled for more than {0:?}")]
    Stalled(Duration),
}

/// An upstream response body on its way to the client.
#[derive(Debug)]
pub struct RelayBody {
    prefix: Option<Bytes>,
    inner: Incoming,
    read_timeout: Duration,
    /// Armed only while upstream keeps us waiting; created on the first wait (small bodies never need it).
    idle: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    _lease: Lease,
    connection: LentConnection,
}

impl RelayBody {
    /// Relays `inner` after `prefix` (bytes of it already read), holding `lease` and `connection` until done.
    pub fn new(
        prefix: Bytes,
        inner: Incoming,
        read_timeout: Duration,
        lease: Lease,
        connection: LentConnection,
    ) -> RelayBody {
        RelayBody {
            prefix: (!prefix.is_empty()).then_some(prefix),
            inner,
            read_timeout,
            idle: None,
            waiting: false,
            _lease: lease,
            connection,
        }
    }

    /// Called when upstream has nothing yet: arms the silence timer (once per wait) and polls it.
    fn poll_silence(&mut self, cx: &mut Context<'_>) -> Poll<RelayError> {
        let deadline = Instant::now() + self.read_timeout;
        if !self.waiting {
            self.waiting = true;
            match &mut self.idle {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.idle = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.idle {
            Some(sleep) => {
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(RelayError::Stalled(self.read_timeout))
            }
            None => Poll::Pending,
        }
    }
}

impl Body for RelayBody {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        let this = self.get_mut();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                let ended = match &frame {
                    None => true,
                    Some(Ok(_)) => this.inner.is_end_stream(),
                    Some(Err(_)) => false,
                };
                if ended {
                    this.connection.finish();
                }
                Poll::Ready(frame.map(|f| f.map_err(RelayError::from)))
            }
            Poll::Pending => this.poll_silence(cx).map(|error| Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let Some(prefix) = &self.prefix else {
            return inner;
        };
        let extra = prefix.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}
