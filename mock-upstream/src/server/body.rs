//! Response bodies as byte streams: whole JSON bodies, paced SSE streams (TTFT, inter-token delay) and the
//! body-level faults — truncation, malformed JSON, cut streams, in-stream error events, malformed frames,
//! disconnect deadlines and slow dribbling. An `Err` item makes hyper abort the connection mid-body, which
//! is exactly what a client sees when a real upstream dies half-way.

use super::serve::StreamPlacement;
use crate::latency::LatencyProfile;
use crate::providers::{self, Completion};
use crate::route::Provider;
use axum::body::Body;
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use hyper::body::{Frame, SizeHint};
use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The body of every response the mock sends: a whole in-memory body needs no boxing and no stream
/// machinery (the common case at load-test rates); everything else is an axum body.
pub(crate) enum ResponseBody {
    /// One chunk, sent whole (`None` once sent).
    Whole(Option<Bytes>),
    /// A plain SSE stream, polled directly.
    Sse(Box<SsePlayer>),
    /// A faulted body (dribble, truncation, deadline), or a response from the axum router.
    Streamed(Body),
}

impl ResponseBody {
    /// A whole body.
    pub(crate) fn whole(bytes: Bytes) -> Self {
        ResponseBody::Whole(Some(bytes))
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.get_mut() {
            ResponseBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Sse(player) => Pin::new(player.as_mut())
                .poll_next(cx)
                .map(|item| item.map(|chunk| chunk.map(Frame::data).map_err(axum::Error::new))),
            ResponseBody::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Whole(bytes) => bytes.is_none(),
            ResponseBody::Sse(_) => false,
            ResponseBody::Streamed(body) => hyper::body::Body::is_end_stream(body),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Sse(_) => SizeHint::default(),
            ResponseBody::Streamed(body) => hyper::body::Body::size_hint(body),
        }
    }
}

/// A fault applied to how the body is delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum BodyFault {
    /// Deliver normally.
    #[default]
    None,
    /// Announce the full `content-length`, send half, then drop the connection.
    Truncated,
    /// 200 with the body cut in the middle of a JSON value (complete HTTP message, invalid JSON).
    Malformed,
    /// Drop the connection at this instant (mid-stream for streams).
    DisconnectAt(Instant),
    /// Streams: drop the connection after this many frames.
    CutAfter(u32),
    /// Streams: after this many frames send the provider's error event and end.
    ErrorAfter(u32, Option<String>),
    /// Streams: after this many frames send one malformed frame, then continue.
    MalformedAfter(u32),
}

/// Everything needed to play an SSE stream.
pub(crate) struct SseScript {
    pub(crate) provider: Provider,
    pub(crate) completion: Completion,
    pub(crate) profile: LatencyProfile,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) request_id: String,
    /// Moves the connection back to the front runtime when the stream is dropped.
    pub(crate) _placement: Option<StreamPlacement>,
}

type Chunk = Result<Bytes, io::Error>;

fn aborted(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, why.to_string())
}

/// Fail the body, but only after giving hyper one turn to flush what was already written (it flushes when
/// the body is pending; an immediate error would drop the buffered bytes along with the connection).
async fn abort_after_flush(why: &'static str) -> Chunk {
    tokio::task::yield_now().await;
    Err(aborted(why))
}

/// A whole JSON body with a body fault applied; returns the body and the `content-length` to announce.
pub(crate) fn json_body(
    bytes: Bytes,
    fault: &BodyFault,
    bytes_per_sec: Option<u32>,
) -> (ResponseBody, u64) {
    let length = bytes.len() as u64;
    let base = match fault {
        BodyFault::Truncated => {
            let half = stream::iter([Ok(bytes.slice(..bytes.len() / 2))]);
            half.chain(stream::once(abort_after_flush("truncated body")))
                .boxed()
        }
        BodyFault::Malformed => {
            let cut = bytes.slice(..bytes.len() / 2);
            let length = cut.len() as u64;
            return (ResponseBody::whole(cut), length);
        }
        // The common case: one in-memory body, no stream machinery.
        BodyFault::None if bytes_per_sec.is_none() => return (ResponseBody::whole(bytes), length),
        _ => stream::iter([Ok(bytes)]).boxed(),
    };
    let body = match (fault, bytes_per_sec) {
        (BodyFault::DisconnectAt(at), _) => with_deadline(base, *at).boxed(),
        (_, Some(rate)) => dribble(base, rate).boxed(),
        _ => base.boxed(),
    };
    (ResponseBody::Streamed(Body::from_stream(body)), length)
}

/// An SSE body played frame by frame with the profile's delays and the fault applied. A plain stream is
/// polled by hyper directly (no boxed stream, no per-frame future); deadlines and dribbling wrap it.
pub(crate) fn sse_body(
    script: SseScript,
    fault: BodyFault,
    bytes_per_sec: Option<u32>,
) -> ResponseBody {
    let deadline = match fault {
        BodyFault::DisconnectAt(at) => Some(at),
        _ => None,
    };
    let frames = SsePlayer {
        script,
        fault,
        frame: 0,
        finished: false,
        due: None,
        schedule: None,
        timer: None,
        armed: false,
    };
    match (deadline, bytes_per_sec) {
        (Some(at), _) => ResponseBody::Streamed(Body::from_stream(with_deadline(frames, at))),
        (None, Some(rate)) => ResponseBody::Streamed(Body::from_stream(dribble(frames, rate))),
        (None, None) => ResponseBody::Sse(Box::new(frames)),
    }
}

/// Plays an SSE script as a stream of frames. One timer per stream, re-armed for each frame.
///
/// Frames follow a schedule: each delayed frame is due its delay after the previous one was *due*, not
/// after it was sent. On time this is the same pacing; when the mock is overloaded and a stream falls
/// behind, the frames already due are handed to hyper back to back — one `writev` for all of them — so
/// the stream keeps its total duration and each late frame costs less, instead of every later gap growing.
pub(crate) struct SsePlayer {
    script: SseScript,
    fault: BodyFault,
    frame: usize,
    finished: bool,
    /// The next item, held back until the timer fires (or for one turn before an abort, so hyper can
    /// flush what it already has: an immediate error would drop the buffered bytes with the connection).
    due: Option<Due>,
    /// When the last delayed frame was due (the schedule's clock; starts at the first delayed frame).
    schedule: Option<Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer holds back the due item.
    armed: bool,
}

enum Due {
    AfterTimer(Chunk),
    AfterFlush(Chunk),
}

impl Stream for SsePlayer {
    type Item = Chunk;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let this = self.get_mut();
        if this.due.is_none() {
            match this.next_item() {
                Some(due) => this.due = Some(due),
                None => return Poll::Ready(None),
            }
        }
        match this.due.take() {
            Some(Due::AfterTimer(item)) => {
                if let (true, Some(timer)) = (this.armed, &mut this.timer) {
                    if timer.as_mut().poll(cx).is_pending() {
                        this.due = Some(Due::AfterTimer(item));
                        return Poll::Pending;
                    }
                }
                this.armed = false;
                Poll::Ready(Some(item))
            }
            Some(Due::AfterFlush(item)) => {
                this.due = Some(Due::AfterTimer(item));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }
}

impl SsePlayer {
    /// The next item: an injected one, or the next frame of the script (with its delay armed).
    fn next_item(&mut self) -> Option<Due> {
        if self.finished {
            return None;
        }
        if let Some(item) = self.injected() {
            return Some(match item {
                Err(_) => Due::AfterFlush(item),
                Ok(_) => Due::AfterTimer(item),
            });
        }
        let bytes =
            providers::stream_frame(self.script.provider, &self.script.completion, self.frame)?;
        let delay = self.delay_before(self.frame);
        self.frame += 1;
        if !delay.is_zero() {
            self.arm(delay);
        }
        Some(Due::AfterTimer(Ok(bytes)))
    }

    /// Hold the next frame until `delay` after the previous frame was due (no timer when that has passed).
    fn arm(&mut self, delay: Duration) {
        let now = Instant::now();
        let at = self.schedule.unwrap_or(now) + delay;
        self.schedule = Some(at);
        if at <= now {
            return;
        }
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(at),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed = true;
    }

    /// The fault's frame when the stream has reached its position.
    fn injected(&mut self) -> Option<Chunk> {
        let at = |n: &u32| self.frame == *n as usize;
        let script = &self.script;
        match &self.fault {
            BodyFault::CutAfter(n) if at(n) => {
                self.finished = true;
                Some(Err(aborted("stream cut")))
            }
            BodyFault::ErrorAfter(n, message) if at(n) => {
                self.finished = true;
                Some(Ok(providers::stream_error_frame(
                    script.provider,
                    message.as_deref(),
                    &script.request_id,
                )))
            }
            BodyFault::MalformedAfter(n) if at(n) => {
                self.fault = BodyFault::None;
                Some(Ok(providers::malformed_frame(script.provider)))
            }
            _ => None,
        }
    }

    fn delay_before(&mut self, frame: usize) -> Duration {
        let first_token = providers::preamble_frames(self.script.provider);
        let last_token = first_token + self.script.completion.output_tokens as usize;
        let rng = &mut self.script.rng;
        match frame {
            f if f == first_token && f < last_token => self.script.profile.first_token_delay(rng),
            f if f > first_token && f < last_token => self.script.profile.inter_token_delay(rng),
            _ => Duration::ZERO,
        }
    }
}

/// Pass items through until `at`, then fail (the connection drops mid-body); ends normally if `inner` does.
fn with_deadline(
    inner: impl Stream<Item = Chunk> + Send + 'static,
    at: Instant,
) -> impl Stream<Item = Chunk> + Send {
    stream::unfold(Some(inner.boxed()), move |state| async move {
        let mut inner = state?;
        tokio::select! {
            item = inner.next() => item.map(|item| (item, Some(inner))),
            () = tokio::time::sleep_until(at) => Some((abort_after_flush("disconnect fault").await, None)),
        }
    })
}

/// Re-emit bytes at about `bytes_per_sec`, in small pieces.
fn dribble(
    inner: impl Stream<Item = Chunk> + Send + 'static,
    bytes_per_sec: u32,
) -> impl Stream<Item = Chunk> + Send {
    let rate = bytes_per_sec.max(1) as usize;
    let piece = (rate / 20).max(1);
    inner.flat_map(move |item| {
        let pieces: Vec<Chunk> = match item {
            Ok(bytes) => (0..bytes.len())
                .step_by(piece)
                .map(|at| Ok(bytes.slice(at..(at + piece).min(bytes.len()))))
                .collect(),
            Err(err) => vec![Err(err)],
        };
        stream::iter(pieces).then(move |item| async move {
            if let Ok(bytes) = &item {
                tokio::time::sleep(Duration::from_secs_f64(bytes.len() as f64 / rate as f64)).await;
            }
            item
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Distribution;
    use futures::FutureExt;
    use rand::SeedableRng;

    /// An OpenAI stream of `tokens` tokens, 10 ms apart.
    fn player(tokens: u32) -> SsePlayer {
        let profile = LatencyProfile {
            inter_token: Some(Distribution::Fixed(Duration::from_millis(10))),
            ..Default::default()
        };
        let completion = Completion {
            id: "chatcmpl-1".into(),
            model: "gpt-4".into(),
            created: 0,
            input_tokens: 5,
            output_tokens: tokens,
            text_start: 0,
            hit_max_tokens: true,
            include_usage: false,
            token_template: Default::default(),
        };
        let script = SseScript {
            provider: Provider::OpenAi,
            completion,
            profile,
            rng: ChaCha8Rng::seed_from_u64(1),
            request_id: "req_1".into(),
            _placement: None,
        };
        match sse_body(script, BodyFault::None, None) {
            ResponseBody::Sse(player) => *player,
            _ => unreachable!("a plain stream is played directly"),
        }
    }

    /// Frames the player hands over before it has to wait.
    fn ready_now(player: &mut SsePlayer) -> usize {
        let mut frames = 0;
        while let Some(Some(frame)) = player.next().now_or_never() {
            assert!(frame.is_ok());
            frames += 1;
        }
        frames
    }

    #[tokio::test(start_paused = true)]
    async fn frames_follow_a_schedule_and_late_ones_go_out_together() {
        let mut player = player(20);
        // Role frame and first token (no time to first token configured), then 10 ms per token.
        assert_eq!(ready_now(&mut player), 2);
        let cases = [(10, 1), (10, 1), (35, 3), (5, 1), (10, 1), (0, 0)];
        for (step, (advance_ms, expected)) in cases.into_iter().enumerate() {
            tokio::time::advance(Duration::from_millis(advance_ms)).await;
            assert_eq!(
                ready_now(&mut player),
                expected,
                "step {step}: +{advance_ms} ms"
            );
        }
    }
}
