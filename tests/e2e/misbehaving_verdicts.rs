//! Each behaviour verdict of `proxy-behaviour` must FAIL for the misbehaving fixture with the matching defect
//! and PASS for the reference proxy (the `leaky-proxy` binary without `LEAK_*` settings is exactly the reference
//! proxy). Real processes and real HTTP on loopback: an in-process `mock-upstream` with fault rules, the proxy
//! binary as a child, a bounded sequential client loop, then the mock's ledger into the verdict functions.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mock_upstream::{
    Distribution, FaultKind, FaultRule, KeyConfig, LatencyProfile, MockConfig, RunningMock,
};
use proxy_behaviour::{
    compare_reported_keys, evaluate, failover_masking, key_distribution, ledger_counts,
    mock_first_event_delay, retry_after_compliance, stream_pass_through, upstream_window,
    BehaviourCheck, BehaviourMeasurements, BehaviourThresholds, BehaviourVerdict, StreamRules,
    StreamSample, VerdictOutcome, WindowCounts,
};
use tests::misbehaving::process::ProxyProcess;

const KEYS: [(&str, &str); 3] = [
    ("k1", "sk-test-one"),
    ("k2", "sk-test-two"),
    ("k3", "sk-test-three"),
];
/// Client requests per proxy in the non-streaming checks (sequential, so a few hundred milliseconds).
const REQUESTS: usize = 90;

/// The system under test.
#[derive(Debug, Clone, Copy)]
enum Sut {
    Reference,
    Misbehaving(&'static str),
}

async fn start_mock(rules: Vec<FaultRule>, latency: LatencyProfile) -> RunningMock {
    let keys = KEYS.map(|(id, secret)| KeyConfig {
        id: id.into(),
        secret: secret.into(),
        ..Default::default()
    });
    let config = MockConfig {
        seed: 7,
        keys: keys.to_vec(),
        rules,
        latency,
        // The client is sequential, so nothing is ever on the wire when a 429 is written: every in-window
        // arrival is disregard, however soon after the window opened.
        retry_after_grace: Duration::ZERO,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    mock_upstream::spawn(config, listener)
        .await
        .expect("start mock")
}

async fn start_proxy(sut: Sut, upstream: &str) -> ProxyProcess {
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--upstream".into(),
        upstream.into(),
    ];
    for (id, secret) in KEYS {
        args.extend(["--key".to_string(), format!("{id}={secret}")]);
    }
    let program = match sut {
        Sut::Reference => env!("CARGO_BIN_EXE_leaky-proxy"),
        Sut::Misbehaving(defect) => {
            args.extend(["--defect".to_string(), defect.to_string()]);
            env!("CARGO_BIN_EXE_misbehaving-proxy")
        }
    };
    ProxyProcess::start(Path::new(program), &args)
        .await
        .expect("start proxy")
}

/// What the client saw: requests, failures (429, 5xx, transport) and `X-Key-Used` of successful responses.
#[derive(Debug, Default)]
struct ClientTally {
    counts: WindowCounts,
    key_used: BTreeMap<String, u64>,
}

fn chat_body(stream: bool, max_tokens: u32) -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": "hello" }],
    })
}

async fn chat_loop(base_url: &str, requests: usize) -> ClientTally {
    let client = reqwest::Client::new();
    let mut tally = ClientTally::default();
    for _ in 0..requests {
        tally.counts.requests += 1;
        let sent = client
            .post(format!("{base_url}/v1/chat/completions"))
            .json(&chat_body(false, 4))
            .send()
            .await;
        let Ok(response) = sent else {
            tally.counts.errors += 1;
            continue;
        };
        let status = response.status();
        if status.is_success() {
            if let Some(key) = response
                .headers()
                .get("x-key-used")
                .and_then(|v| v.to_str().ok())
            {
                *tally.key_used.entry(key.to_string()).or_default() += 1;
            }
        }
        tally.counts.errors += u64::from(status.as_u16() == 429 || status.is_server_error());
        let _ = response.bytes().await;
    }
    tally
}

/// Client TTFT (first body chunk: the mock sends the first SSE `data:` event with the headers) and total duration of `streams` sequential streamed completions.
async fn stream_samples(base_url: &str, streams: usize) -> Vec<StreamSample> {
    let client = reqwest::Client::new();
    let mut samples = Vec::new();
    for _ in 0..streams {
        let started = Instant::now();
        let url = format!("{base_url}/v1/chat/completions");
        let mut response = client
            .post(url)
            .json(&chat_body(true, 25))
            .send()
            .await
            .expect("stream request");
        assert!(
            response.status().is_success(),
            "stream status {}",
            response.status()
        );
        let mut ttft = None;
        while let Some(chunk) = response.chunk().await.expect("stream chunk") {
            if !chunk.is_empty() && ttft.is_none() {
                ttft = Some(started.elapsed());
            }
        }
        let total = started.elapsed();
        samples.push(StreamSample {
            ttft: ttft.unwrap_or(total),
            total,
        });
    }
    samples
}

fn outcome(verdicts: &[BehaviourVerdict], check: BehaviourCheck) -> VerdictOutcome {
    let found: Vec<&BehaviourVerdict> = verdicts.iter().filter(|v| v.check == check).collect();
    assert_eq!(
        found.len(),
        1,
        "one {check:?} verdict expected in {verdicts:#?}"
    );
    found[0].outcome
}

fn eligible() -> Vec<String> {
    KEYS.map(|(id, _)| id.to_string()).to_vec()
}

/// Runs `REQUESTS` chat requests through `sut` against a mock with `rules`; returns the client tally and the
/// mock's counts.
async fn run_chat(sut: Sut, rules: Vec<FaultRule>) -> (ClientTally, proxy_behaviour::LedgerCounts) {
    let mock = start_mock(rules, LatencyProfile::default()).await;
    let proxy = start_proxy(sut, &mock.base_url()).await;
    let tally = chat_loop(proxy.base_url(), REQUESTS).await;
    proxy.stop().await;
    let counts = ledger_counts(&mock.ledger());
    mock.shutdown().await;
    (tally, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_compliance_fails_only_for_the_proxy_that_ignores_it() {
    let rate_limit_k2 = || {
        vec![FaultRule {
            keys: vec!["k2".into()],
            retry_after: Some(Duration::from_secs(3)),
            ..FaultRule::new(FaultKind::RateLimit)
        }]
    };
    let thresholds = BehaviourThresholds {
        max_retry_after_violations: Some(0),
        ..Default::default()
    };
    for (sut, expected) in [
        (Sut::Reference, VerdictOutcome::Pass),
        (
            Sut::Misbehaving("ignores-retry-after"),
            VerdictOutcome::Fail,
        ),
    ] {
        let (_, counts) = run_chat(sut, rate_limit_k2()).await;
        let compliance = retry_after_compliance(&counts);
        assert!(
            compliance.rate_limited >= 1,
            "{sut:?}: the mock never rate limited k2: {counts:?}"
        );
        let measurements = BehaviourMeasurements {
            retry_after: Some(compliance.clone()),
            ..Default::default()
        };
        let verdicts = evaluate(&measurements, &thresholds);
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::RetryAfter),
            expected,
            "{sut:?}: {verdicts:#?}"
        );
        if expected == VerdictOutcome::Fail {
            // Every third request lands on k2 inside its 3 s window.
            assert!(
                compliance.violations >= (REQUESTS as u64) / 4,
                "{compliance:?}"
            );
            assert_eq!(
                compliance.per_key.keys().collect::<Vec<_>>(),
                ["k2"],
                "{compliance:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fairness_fails_only_for_the_first_key_only_proxy() {
    let thresholds = BehaviourThresholds {
        min_fairness: Some(0.9),
        min_key_report_agreement: Some(0.95),
        ..Default::default()
    };
    for (sut, expected) in [
        (Sut::Reference, VerdictOutcome::Pass),
        (Sut::Misbehaving("first-key-only"), VerdictOutcome::Fail),
    ] {
        let (tally, counts) = run_chat(sut, Vec::new()).await;
        assert_eq!(tally.counts.errors, 0, "{sut:?}: {tally:?}");
        let distribution = key_distribution(&counts, &eligible());
        let measurements = BehaviourMeasurements {
            key_report: Some(compare_reported_keys(&tally.key_used, &counts)),
            distribution: Some(distribution.clone()),
            ..Default::default()
        };
        let verdicts = evaluate(&measurements, &thresholds);
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::Fairness),
            expected,
            "{sut:?}: {verdicts:#?}"
        );
        // Both proxies tell the truth in X-Key-Used.
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::KeyReport),
            VerdictOutcome::Pass,
            "{sut:?}: {verdicts:#?}"
        );
        if expected == VerdictOutcome::Fail {
            let fairness = distribution.fairness.expect("fairness measured");
            assert!(
                (fairness - 1.0 / 3.0).abs() < 0.01,
                "first-key-only fairness {fairness}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_buffering_is_flagged_only_for_the_buffering_proxy() {
    // 5 ms to the headers and the preamble frame, 10 ms to the first token, 10 ms per token: ~260 ms streams.
    let latency = LatencyProfile {
        base: Some(Distribution::Fixed(Duration::from_millis(5))),
        ttft: Some(Distribution::Fixed(Duration::from_millis(10))),
        inter_token: Some(Distribution::Fixed(Duration::from_millis(10))),
        ..Default::default()
    };
    let thresholds = BehaviourThresholds {
        max_ttft_overhead: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    for (sut, expected) in [
        (Sut::Reference, VerdictOutcome::Pass),
        (Sut::Misbehaving("buffers-streams"), VerdictOutcome::Fail),
    ] {
        let mock = start_mock(Vec::new(), latency.clone()).await;
        let proxy = start_proxy(sut, &mock.base_url()).await;
        let samples = stream_samples(proxy.base_url(), 3).await;
        proxy.stop().await;
        mock.shutdown().await;
        let upstream_first_event = mock_first_event_delay(&latency);
        let streams = stream_pass_through(&samples, upstream_first_event, &StreamRules::default());
        let measurements = BehaviourMeasurements {
            streams: Some(streams),
            ..Default::default()
        };
        let verdicts = evaluate(&measurements, &thresholds);
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::StreamBuffering),
            expected,
            "{sut:?}: {verdicts:#?}"
        );
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::TtftOverhead),
            expected,
            "{sut:?}: {verdicts:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_masking_fails_only_for_the_proxy_without_failover() {
    let flaky_k2 = || {
        vec![FaultRule {
            keys: vec!["k2".into()],
            probability: Some(0.5),
            status: Some(503),
            ..FaultRule::new(FaultKind::Error)
        }]
    };
    let thresholds = BehaviourThresholds {
        min_masking: Some(0.9),
        ..Default::default()
    };
    for (sut, expected) in [
        (Sut::Reference, VerdictOutcome::Pass),
        (Sut::Misbehaving("no-failover"), VerdictOutcome::Fail),
    ] {
        let (tally, counts) = run_chat(sut, flaky_k2()).await;
        let masking = failover_masking("k2 503 at 50 %", tally.counts, upstream_window(&counts));
        assert!(
            masking.upstream.errors > 0,
            "{sut:?}: the mock injected no 503: {counts:?}"
        );
        let measurements = BehaviourMeasurements {
            masking: vec![masking],
            ..Default::default()
        };
        let verdicts = evaluate(&measurements, &thresholds);
        assert_eq!(
            outcome(&verdicts, BehaviourCheck::FailoverMasking),
            expected,
            "{sut:?}: {verdicts:#?}"
        );
    }
}
