//! Each behaviour verdict of `proxy-behaviour` must FAIL for the misbehaving fixture with the matching defect
//! and PASS for the reference proxy (the `leaky-proxy` binary without `LEAK_*` settings is exactly the reference
//! proxy). Real processes and real HTTP on loopback: an in-process `mock-upstream` with fault rules, the proxy
//! binary as a child, a bounded sequential client loop, then the mock's ledger into the verdict functions.
//!
//! A fast proxy is the easy case, so the same defects are also run slow and unsteady ([`SLOW_AND_UNSTEADY`]:
//! service time, a small worker pool, stop-the-world pauses) through `harness run` with a `[behaviour]` table: the
//! correct fixture (`--defect none`) must still pass every check, and each defect must still fail its own. The
//! answer while every key rests is judged on `scenarios/all_keys_exhausted.toml` itself.

mod common;

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

use common::{behaviour_outcomes, misbehaving_command, run_scenario, temp_dir};

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

/// A proxy that is not sub-millisecond: 5 ms per request, 8 at once (the rest queue), and a 150 ms
/// stop-the-world pause every 3 s.
const SLOW_AND_UNSTEADY: [&str; 8] = [
    "--service-time",
    "5ms",
    "--max-concurrency",
    "8",
    "--pause-every",
    "3s",
    "--pause-for",
    "150ms",
];

/// Each defect and the behaviour check it must fail.
const DEFECT_CHECKS: [(&str, &str); 4] = [
    ("ignores-retry-after", "retry_after"),
    ("first-key-only", "fairness"),
    ("no-failover", "failover_masking"),
    ("buffers-streams", "stream_buffering"),
];

/// 12 users (more than the 8 workers, so requests queue) for 7 s: chat and streamed chat; k2 answers 429
/// (`retry-after: 2s`) from 0.5 s to 3 s and k3 503 from 4 s to 5.5 s. Streams last ~100 ms upstream, so
/// buffering shows; at least two pauses fall inside the load.
fn slow_behaviour_scenario(name: &str, command: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 11

[load]
model = "closed"
users = 12
spawn_rate = 200
think_time = "20ms"
run_time = "7s"
timeout = "5s"

[[request]]
name = "chat"
weight = 3
method = "POST"
path = "/v1/chat/completions"
body = {{ model = "gpt-4", messages = [{{ role = "user", content = "slow behaviour probe" }}], max_tokens = 8 }}

[[request]]
name = "stream"
method = "POST"
path = "/v1/chat/completions"
stream = true
body = {{ model = "gpt-4", stream = true, messages = [{{ role = "user", content = "slow behaviour probe" }}], max_tokens = 8 }}

[upstream.latency]
ttft = {{ fixed = "20ms" }}
inter_token = {{ fixed = "10ms" }}

[[upstream.keys]]
id = "k1"
secret = "sk-slow-one"
[[upstream.keys]]
id = "k2"
secret = "sk-slow-two"
[[upstream.keys]]
id = "k3"
secret = "sk-slow-three"

[[timeline]]
at = "500ms"
for = "2500ms"
fault = {{ keys = ["k2"], action = "rate_limit", retry_after = "2s" }}

[[timeline]]
at = "4s"
for = "1500ms"
fault = {{ keys = ["k3"], action = "error", status = 503 }}

[behaviour]
max_retry_after_violations = 0
min_fairness = 0.7
min_masking = 0.5

[proxy]
command = {command}
"#
    )
}

/// The longest response time (ms) among the requests whose name `selected` accepts, from `summary.json`.
fn slowest_ms(summary: &serde_json::Value, selected: impl Fn(&str) -> bool) -> f64 {
    summary["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|request| selected(request["name"].as_str().unwrap_or_default()))
        .filter_map(|request| request["latency"]["max_ms"].as_f64())
        .fold(0.0, f64::max)
}

/// The run's verdict, its reasons and the behaviour report, for assertion messages.
fn behaviour_evidence(who: &str, summary: &serde_json::Value) -> String {
    format!(
        "{who}: verdict {}, reasons {}\nbehaviour: {}",
        summary["verdict"],
        summary["verdict_reasons"],
        serde_json::to_string_pretty(&summary["engine"]["behaviour"]).unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_unsteady_correct_proxy_passes_and_each_slow_defect_fails_its_own_check() {
    let runs = std::iter::once("none")
        .chain(DEFECT_CHECKS.map(|(defect, _)| defect))
        .map(|defect| async move {
            let scenario = slow_behaviour_scenario(
                &format!("slow_{}", defect.replace('-', "_")),
                &misbehaving_command(defect, &SLOW_AND_UNSTEADY),
            );
            let (_, summary) = run_scenario(&temp_dir(), &scenario, &[]).await;
            (defect, summary)
        });
    let mut results = futures::future::join_all(runs).await.into_iter();
    let (_, correct) = results.next().expect("the correct fixture ran");

    let why = behaviour_evidence("slow correct proxy", &correct);
    // A chat takes ~15 ms through the slow fixture; one caught by a 150 ms pause shows the mode was on.
    let slowest_chat = slowest_ms(&correct, |name| name == "chat");
    assert!(
        slowest_chat > 100.0,
        "no pause met: chat max {slowest_chat} ms; {why}"
    );
    let rate_limited =
        &correct["engine"]["behaviour"]["measurements"]["retry_after"]["rate_limited"];
    assert!(
        rate_limited.as_u64().unwrap_or(0) > 0,
        "the faults fired: {why}"
    );
    let mut failed = Vec::new();
    for (_, check) in DEFECT_CHECKS {
        let got = behaviour_outcomes(&correct, check);
        if got.is_empty() || got.iter().any(|o| o != "pass") {
            failed.push(format!("{check}: {got:?}"));
        }
    }
    assert!(failed.is_empty(), "not passed: {failed:?}\n{why}");

    for (defect, summary) in results {
        let check = DEFECT_CHECKS
            .iter()
            .find_map(|(d, c)| (*d == defect).then_some(*c))
            .expect("a defect of DEFECT_CHECKS");
        let why = behaviour_evidence(defect, &summary);
        assert_eq!(summary["verdict"], "FAIL", "{why}");
        assert!(
            behaviour_outcomes(&summary, check)
                .iter()
                .any(|o| o == "fail"),
            "{check} did not fail: {why}"
        );
    }
}

/// While every key rests, the correct fixture answers 429 with `retry-after` at once; `holds-when-exhausted`
/// keeps the client waiting until a key is back. Every key is rate-limited for 2 s by the first request; an answer
/// within 500 ms is prompt, none within 1 s is holding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_every_key_rests_the_correct_proxy_answers_429_at_once_and_the_holding_one_waits() {
    let every_key_limited = vec![FaultRule {
        retry_after: Some(Duration::from_secs(2)),
        ..FaultRule::new(FaultKind::RateLimit)
    }];
    let client = reqwest::Client::new();
    for (defect, prompt) in [("none", true), ("holds-when-exhausted", false)] {
        let mock = start_mock(every_key_limited.clone(), LatencyProfile::default()).await;
        let proxy = start_proxy(Sut::Misbehaving(defect), &mock.base_url()).await;
        let url = format!("{}/v1/chat/completions", proxy.base_url());
        let send = || client.post(&url).json(&chat_body(false, 4)).send();
        // The first request meets the upstream's 429 on every key, which rests them all.
        let first = send().await.expect("first request");
        assert_eq!(first.status(), 429, "{defect}");
        let started = Instant::now();
        let second = tokio::time::timeout(Duration::from_secs(1), send()).await;
        let waited = started.elapsed();
        if prompt {
            let response = second
                .unwrap_or_else(|_| panic!("{defect}: no answer in 1 s"))
                .expect("second request");
            assert_eq!(response.status(), 429, "{defect}");
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("retry-after in whole seconds");
            assert!(
                (1..=2).contains(&retry_after),
                "{defect}: retry-after {retry_after} s is not the time until the first key is back"
            );
            assert!(waited < Duration::from_millis(500), "{defect}: {waited:?}");
        } else {
            assert!(
                second.is_err(),
                "{defect} answered in {waited:?}: {second:?}"
            );
        }
        proxy.stop().await;
        mock.shutdown().await;
    }
}

/// `scenarios/all_keys_exhausted.toml` as it is (its `[behaviour] max_exhausted_answer` sets the limit), cut to
/// 16 s: its whole 4 s of "every key rate-limited" (10-14 s) are judged, and the keys' rests end before the load
/// does, against the correct and the holding fixture at once.
#[tokio::test(flavor = "multi_thread")]
async fn exhausted_answer_fails_only_for_the_proxy_that_holds_requests() {
    let catalogue = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/all_keys_exhausted.toml"
    );
    let scenario = std::fs::read_to_string(catalogue).expect("read all_keys_exhausted.toml");
    let with_fixture = |defect: &str| {
        format!(
            "{scenario}\n[proxy]\ncommand = {}\n",
            misbehaving_command(defect, &[])
        )
    };
    let (correct_dir, holding_dir) = (temp_dir(), temp_dir());
    let (correct_scenario, holding_scenario) =
        (with_fixture("none"), with_fixture("holds-when-exhausted"));
    let cut = ["-t", "16s"];
    let ((_, correct), (_, holding)) = tokio::join!(
        run_scenario(&correct_dir, &correct_scenario, &cut),
        run_scenario(&holding_dir, &holding_scenario, &cut)
    );

    // The fixtures did what they are for, whatever the check says: held answers took about a rest (3 s), the
    // correct proxy answered everything at once.
    let slowest = |summary| slowest_ms(summary, |_| true);
    assert!(
        slowest(&holding) > 1500.0,
        "holding: {}",
        holding["requests"]
    );
    assert!(
        slowest(&correct) < 1000.0,
        "correct: {}",
        correct["requests"]
    );

    let why = behaviour_evidence("holds-when-exhausted", &holding);
    assert!(
        behaviour_outcomes(&holding, "exhausted_answer")
            .iter()
            .any(|o| o == "fail"),
        "exhausted_answer did not fail: {why}"
    );
    assert_eq!(holding["verdict"], "FAIL", "{why}");
    let why = behaviour_evidence("correct", &correct);
    let got = behaviour_outcomes(&correct, "exhausted_answer");
    assert!(
        !got.is_empty() && got.iter().all(|o| o == "pass"),
        "exhausted_answer: {got:?} {why}"
    );
}
