//! Retry-After races against disregard, through real proxies: a correct proxy with many requests in flight when
//! a key's first 429 is written gets those requests counted as races (they were on the wire before the 429 could
//! reach it), not violations; a proxy that ignores even a 1 s `retry-after` still gets violations. Real
//! processes and HTTP on loopback: an in-process `mock-upstream`, the proxy binary as a child, 20 concurrent
//! client loops, a rate-limit rule switched on while they run.

use std::path::Path;
use std::time::{Duration, Instant};

use mock_upstream::{Distribution, FaultKind, FaultRule, KeyConfig, LatencyProfile, MockConfig};
use proxy_behaviour::{
    evaluate, ledger_counts, retry_after_compliance, BehaviourCheck, BehaviourMeasurements,
    BehaviourThresholds, RetryAfterCompliance, VerdictOutcome,
};
use tests::misbehaving::process::ProxyProcess;

const KEYS: [(&str, &str); 3] = [
    ("k1", "sk-race-one"),
    ("k2", "sk-race-two"),
    ("k3", "sk-race-three"),
];
/// Concurrent client loops: with a 2 ms upstream the proxy dispatches on k2 every few hundred microseconds, so
/// some requests leave for k2 between its first 429 being written and the proxy reading it.
const CLIENTS: usize = 40;

/// `Some(defect)` runs the misbehaving fixture with it; `None` the reference proxy.
async fn start_proxy(defect: Option<&str>, upstream: &str) -> ProxyProcess {
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--upstream".into(),
        upstream.into(),
    ];
    for (id, secret) in KEYS {
        args.extend(["--key".to_string(), format!("{id}={secret}")]);
    }
    let program = match defect {
        None => env!("CARGO_BIN_EXE_leaky-proxy"),
        Some(defect) => {
            args.extend(["--defect".to_string(), defect.to_string()]);
            env!("CARGO_BIN_EXE_misbehaving-proxy")
        }
    };
    ProxyProcess::start(Path::new(program), &args)
        .await
        .expect("start proxy")
}

/// Chat requests in a loop until `until`.
async fn client_loop(base_url: String, until: Instant) {
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 4,
        "messages": [{ "role": "user", "content": "hello" }],
    });
    while Instant::now() < until {
        if let Ok(response) = client
            .post(format!("{base_url}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
        {
            let _ = response.bytes().await;
        }
    }
}

/// Runs the load through the proxy; k2 answers 429 with `retry-after: 1s` from 0.5 s on. Returns k2's
/// compliance as the mock saw it.
async fn run(defect: Option<&str>) -> RetryAfterCompliance {
    let config = MockConfig {
        keys: KEYS
            .map(|(id, secret)| KeyConfig {
                id: id.into(),
                secret: secret.into(),
                ..Default::default()
            })
            .to_vec(),
        latency: LatencyProfile {
            base: Some(Distribution::Fixed(Duration::from_millis(2))),
            ..Default::default()
        },
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind mock");
    let mock = mock_upstream::spawn(config, listener)
        .await
        .expect("start mock");
    let proxy = start_proxy(defect, &mock.base_url()).await;
    let until = Instant::now() + Duration::from_millis(3500);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client_loop(proxy.base_url().to_string(), until)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    mock.add_rule(FaultRule {
        keys: vec!["k2".into()],
        retry_after: Some(Duration::from_secs(1)),
        ..FaultRule::new(FaultKind::RateLimit)
    })
    .expect("install the rate limit");
    for client in clients {
        client.await.expect("client loop");
    }
    proxy.stop().await;
    let counts = ledger_counts(&mock.ledger());
    mock.shutdown().await;
    retry_after_compliance(&counts).with_grace(MockConfig::default().retry_after_grace)
}

fn verdict(compliance: &RetryAfterCompliance) -> VerdictOutcome {
    let measurements = BehaviourMeasurements {
        retry_after: Some(compliance.clone()),
        ..Default::default()
    };
    let thresholds = BehaviourThresholds {
        max_retry_after_violations: Some(0),
        ..Default::default()
    };
    let verdicts = evaluate(&measurements, &thresholds);
    let found: Vec<_> = verdicts
        .iter()
        .filter(|v| v.check == BehaviourCheck::RetryAfter)
        .collect();
    assert_eq!(found.len(), 1, "{verdicts:#?}");
    found[0].outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_at_the_429_are_races_and_disregard_is_violations() {
    let correct = run(None).await;
    assert!(
        correct.rate_limited >= 1,
        "the mock never rate limited k2: {correct:?}"
    );
    assert_eq!(
        correct.violations, 0,
        "the reference proxy rests k2: {correct:?}"
    );
    assert!(
        correct.races > 0,
        "requests on the wire when k2's first 429 was written: {correct:?}"
    );
    assert_eq!(verdict(&correct), VerdictOutcome::Pass, "{correct:?}");

    let ignoring = run(Some("ignores-retry-after")).await;
    assert!(
        ignoring.violations > 10,
        "a proxy ignoring a 1 s retry-after keeps sending into the window: {ignoring:?}"
    );
    let deeper_than_grace: u64 = ignoring.depths.counts[1..].iter().sum();
    assert!(
        deeper_than_grace >= ignoring.violations,
        "violations sit past the first depth bucket: {ignoring:?}"
    );
    assert_eq!(verdict(&ignoring), VerdictOutcome::Fail, "{ignoring:?}");
}
