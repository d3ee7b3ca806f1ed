//! One request/response exchange on the pooled hyper-util client, with the timings the stats need.

use super::{classify, PreparedRequest, SseScanner};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use load_stats::{ErrorClass, Outcome, OutcomeResult, StreamTiming};
use std::time::{Duration, Instant};

/// Pooled HTTP/1.1 client for the hot path. Cheap to clone (shares the pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client with keep-alive (`keep_alive = false` opens one connection per request) and a per-request
    /// timeout covering connect, headers and the whole body.
    pub fn new(keep_alive: bool, timeout: Duration) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(if keep_alive { usize::MAX } else { 0 })
            .build(connector);
        HttpClient { inner, timeout }
    }

    /// Sends `req` (body variant `variant`); latency is measured from `origin` (the intended send time in the
    /// open model, the actual one in the closed model). Inter-chunk gaps of streams are appended to `gaps`.
    pub async fn exchange(
        &self,
        req: &PreparedRequest,
        variant: usize,
        origin: Instant,
        gaps: &mut Vec<Duration>,
    ) -> Exchange {
        gaps.clear();
        let mut ex = Exchange::default();
        let run = self.run(req, variant, origin, gaps, &mut ex);
        if tokio::time::timeout(self.timeout, run).await.is_err() {
            let msg = format!("no complete response within {:?}", self.timeout);
            ex.error = Some((ErrorClass::Timeout, msg));
        }
        ex.latency = origin.elapsed();
        ex.judge(req);
        ex
    }

    async fn run(
        &self,
        req: &PreparedRequest,
        variant: usize,
        origin: Instant,
        gaps: &mut Vec<Duration>,
        ex: &mut Exchange,
    ) {
        let resp = match self.inner.request(req.build(variant)).await {
            Ok(r) => r,
            Err(e) => {
                ex.error = Some(classify(&e));
                return;
            }
        };
        ex.status = Some(resp.status().as_u16());
        ex.header_ok = req
            .expect_header
            .as_ref()
            .is_some_and(|h| resp.headers().contains_key(h));
        ex.key_used = resp.headers().get(crate::engine::KEY_USED_HEADER).cloned();
        let ttfb = origin.elapsed();
        let mut body = resp.into_body();
        let mut scan = (req.stream && resp_is_ok(ex.status)).then(SseScanner::default);
        let mut timing = StreamTiming {
            ttfb,
            ..StreamTiming::default()
        };
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
