//! One request/response exchange on a worker's own connection, with the timings the stats need.

use super::conn::Link;
use super::{classify, Connection, PreparedRequest, SendError, SseScanner};
use http_body_util::BodyExt;
use load_stats::{ErrorClass, Outcome, OutcomeResult, StreamTiming};
use std::time::{Duration, Instant};

impl Connection {
    /// Sends `req` (body variant `variant`) on this connection; latency is measured from `origin` (the intended
    /// send time in the open model, the actual one in the closed model). `timeout` covers connect, headers and
    /// the whole body. Inter-chunk gaps of streams are appended to `gaps`.
    pub async fn exchange(
        &mut self,
        req: &PreparedRequest,
        variant: usize,
        origin: Instant,
        timeout: Duration,
        gaps: &mut Vec<Duration>,
    ) -> Exchange {
        gaps.clear();
        let mut ex = Exchange::default();
        let deadline = tokio::time::Instant::now() + timeout;
        let watchdog = self
            .watchdog
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        let timed_out = {
            let run = receive(&mut self.link, req, variant, origin, gaps, &mut ex);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    biased;
                    () = &mut run => break false,
                    () = watchdog.as_mut() => {
                        // Armed for an earlier exchange's deadline: re-arm for this one.
                        if tokio::time::Instant::now() >= deadline {
                            break true;
                        }
                        watchdog.as_mut().reset(deadline);
                    }
                }
            }
        };
        if timed_out {
            let msg = format!("no complete response within {timeout:?}");
            ex.error = Some((ErrorClass::Timeout, msg));
        }
        ex.latency = origin.elapsed();
        ex.judge(req);
        ex
    }
}

/// Sends `req` on `link` and reads the response to its end, filling in `ex` (and `gaps` for streams).
async fn receive(
    link: &mut Link,
    req: &PreparedRequest,
    variant: usize,
    origin: Instant,
    gaps: &mut Vec<Duration>,
    ex: &mut Exchange,
) {
    let resp = match link.send(req.connect_to(), req.build(variant)).await {
        Ok(r) => r,
        Err(e) => {
            ex.error = Some(classify_send(&e));
            return;
        }
    };
    ex.status = Some(resp.status().as_u16());
    ex.header_ok = req
        .expect_header
        .as_ref()
        .is_some_and(|h| resp.headers().contains_key(h));
    ex.key_used = req
        .key_header
        .as_ref()
        .and_then(|h| resp.headers().get(h))
        .cloned();
    let mut scan = (req.stream && resp_is_ok(ex.status)).then(SseScanner::default);
    let mut timing = StreamTiming::default();
    if scan.is_some() {
        timing.ttfb = origin.elapsed();
    }
    let mut body = resp.into_body();
    let mut last_event: Option<Instant> = None;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                let (class, msg) = classify(&e);
                let class = if scan.is_some() {
                    ErrorClass::StreamCut
                } else {
                    class
                };
                ex.error = Some((class, format!("body: {msg}")));
                break;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                ex.bytes += data.len() as u64;
                if let Some(scan) = scan.as_mut() {
                    let step = scan.feed(&data);
                    if step.data_events > 0 {
                        let now = Instant::now();
                        timing.ttft.get_or_insert(now - origin);
                        if let Some(prev) = last_event {
                            let gap = now - prev;
                            timing.max_gap = timing.max_gap.max(gap);
                            gaps.push(gap);
                        }
                        last_event = Some(now);
                        timing.chunks += step.data_events;
                    }
                }
            }
        }
    }
    if ex.error.is_none() {
        link.finished();
    }
    if let Some(scan) = scan {
        if !scan.finished() && ex.error.is_none() {
            ex.error = Some((
                ErrorClass::StreamCut,
                "stream ended before its terminal event".into(),
            ));
        }
        ex.stream = Some(timing);
    }
}

/// Class and message of a failed send: the innermost error decides the class, the message keeps the chain.
fn classify_send(e: &SendError) -> (ErrorClass, String) {
    match e {
        SendError::Connect(io) => {
            let (class, msg) = classify(io);
            (class, format!("tcp connect error: {msg}"))
        }
        SendError::Http(h) => classify(h),
    }
}

fn resp_is_ok(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}

/// What happened to one request.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Status received (also set when the body later failed).
    pub status: Option<u16>,
    /// Transport / stream failure, if any.
    pub error: Option<(ErrorClass, String)>,
    /// Counted as success by the scenario's rules.
    pub success: bool,
    /// Latency from the origin instant to the end of the body.
    pub latency: Duration,
    /// Body bytes received.
    pub bytes: u64,
    /// Streaming timings (stream requests with a 2xx status).
    pub stream: Option<StreamTiming>,
    /// The proxy's `X-Key-Used` response header, when sent.
    pub key_used: Option<http::HeaderValue>,
    header_ok: bool,
}

impl Exchange {
    /// Success = no transport error, an expected status and (if required) the expected header; an expected
    /// status without the required header becomes a failure that says so.
    fn judge(&mut self, req: &PreparedRequest) {
        let expected_status = self.status.is_some_and(|s| req.expect.contains(&s));
        if let Some(header) = req.expect_header.as_ref().filter(|_| !self.header_ok) {
            if self.error.is_none() && expected_status {
                let msg = format!("response without required header {header}");
                self.error = Some((ErrorClass::Other, msg));
            }
        }
        self.success = self.error.is_none() && expected_status;
    }

    /// The stats record for this exchange.
    pub fn outcome<'a>(&'a self, req: &'a PreparedRequest) -> Outcome<'a> {
        let result = match (&self.error, self.status) {
            (Some((class, msg)), _) => OutcomeResult::Error(*class, msg),
            (None, Some(s)) => OutcomeResult::Status(s),
            (None, None) => OutcomeResult::Error(ErrorClass::Other, "no response"),
        };
        Outcome {
            name: &req.name,
            method: req.method.as_str(),
            result,
            success: self.success,
            latency: self.latency,
            bytes: self.bytes,
            stream: self.stream.clone(),
        }
    }
}
