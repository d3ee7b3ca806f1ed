//! The load engine against a tiny loopback target: request mix, tags, closed and open models, coordinated
//! omission.

mod common;

use harness::engine::{self, EngineConfig, Mix, TagFilter};
use harness::scenario::Scenario;
use load_stats::RunStats;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

fn scenario(text: &str) -> Scenario {
    Scenario::from_str_at(text, "test.toml", Path::new(".")).expect("valid scenario")
}

/// Runs `scenario` against `target` until its run time is over and returns the merged stats.
async fn run(
    s: &Scenario,
    target: &str,
    tags: TagFilter,
) -> (RunStats, std::sync::Arc<engine::Counters>) {
    let specs: Vec<_> = s.requests.iter().map(|r| r.get_ref().clone()).collect();
    let mix = Mix::new(&specs, target, &tags).expect("mix");
    let handle = engine::start(
        EngineConfig {
            mix,
            load: s.load.clone(),
            seed: s.seed,
            watched: Vec::new(),
        },
        &CancellationToken::new(),
    );
    let counters = handle.counters_handle();
    handle.stopped().await;
    let mut stats = RunStats::new(SystemTime::now());
    for d in handle.join().await.0 {
        stats.merge(&d);
    }
    (stats, counters)
}

const REQUESTS: &str = r#"
[[request]]
name = "a"
weight = 3
path = "/ok/a"
tags = ["x"]

[[request]]
name = "b"
weight = 1
path = "/ok/b"
tags = ["y"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_mix_follows_weights() {
    let (url, seen) = common::start().await;
    let s = scenario(&format!("name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 4\nspawn_rate = 100\nrun_time = \"1s\"\n{REQUESTS}"));
    let (stats, _) = run(&s, &url, TagFilter::default()).await;
    let (a, b) = (seen.hits("/ok/a") as f64, seen.hits("/ok/b") as f64);
    assert!(a + b > 400.0, "too few requests: {a} + {b}");
    let share = a / (a + b);
    assert!(
        (share - 0.75).abs() < 0.05,
        "share of a = {share:.3} (a {a}, b {b})"
    );
    assert!(
        stats.aggregate_report().requests as f64 >= (a + b) * 0.95,
        "recorded vs served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_select_requests() {
    let (url, seen) = common::start().await;
    let s = scenario(&format!("name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 2\nspawn_rate = 100\nrun_time = \"500ms\"\n{REQUESTS}"));
    let only_y = TagFilter {
        include: vec!["y".into()],
        exclude: vec![],
    };
    run(&s, &url, only_y).await;
    assert!(seen.hits("/ok/b") > 10, "b ran");
    assert_eq!(seen.hits("/ok/a"), 0, "a is not tagged y");
    let specs: Vec<_> = s.requests.iter().map(|r| r.get_ref().clone()).collect();
    let none = TagFilter {
        include: vec!["x".into()],
        exclude: vec!["x".into()],
    };
    assert!(
        Mix::new(&specs, &url, &none).is_err(),
        "empty selection is an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_keeps_n_users_with_think_time() {
    let (url, seen) = common::start().await;
    // 5 users, 50 ms service + 100 ms think: ~6.7 requests/s per user, never more than 5 in flight.
    let s = scenario(
        "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 5\nspawn_rate = 1000\nthink_time = \"100ms\"\nrun_time = \"1500ms\"\n\
         [[request]]\nname = \"s\"\npath = \"/sleep/50\"\n",
    );
    let (stats, _) = run(&s, &url, TagFilter::default()).await;
    let n = stats.aggregate_report().requests;
    assert_eq!(
        seen.max_in_flight.load(Ordering::SeqCst),
        5,
        "exactly 5 users in flight at the peak"
    );
    // 1.5 s / 150 ms = 10 cycles per user → at most 50; timers overshoot on a busy machine, hence the low bound.
    // Without the think time it would be ~150.
    assert!((25..=55).contains(&n), "requests {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_holds_its_rate() {
    let (url, seen) = common::start().await;
    let s = scenario(
        "name = \"t\"\n[load]\nmodel = \"open\"\nrate = 200.0\nrun_time = \"1500ms\"\n[[request]]\nname = \"f\"\npath = \"/ok/f\"\n",
    );
    let (stats, counters) = run(&s, &url, TagFilter::default()).await;
    // The schedule has exactly 300 arrivals (every 5 ms in [0, 1.5 s)); each is sent or counted as dropped.
    let (sent, dropped) = (
        counters.sent.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed) + counters.slot_dropped.load(Ordering::Relaxed),
    );
    assert_eq!(sent + dropped, 300, "sent {sent} + dropped {dropped}");
    let served = seen.hits("/ok/f");
    assert!(served >= 270, "served {served} of 300");
    assert!(
        stats.aggregate_report().requests + 5 >= served,
        "recorded what was served"
    );
}

/// A target that stalls for 600 ms while the generator may only have one request in flight: the arrivals
/// queued behind the stall must show the stall in their latency (measured from their intended send time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_latency_includes_a_stalled_targets_queueing() {
    let (url, seen) = common::start().await;
    let s = scenario(
        "name = \"t\"\n[load]\nmodel = \"open\"\nrate = 100.0\nmax_in_flight = 1\nrun_time = \"1500ms\"\n\
         [[request]]\nname = \"st\"\npath = \"/stall/300/600\"\n",
    );
    let (stats, counters) = run(&s, &url, TagFilter::default()).await;
    assert!(
        seen.stalled.load(Ordering::SeqCst) > 0,
        "the target stalled"
    );
    let lat = stats.aggregated_latency();
    let max_ms = lat.max_us().unwrap() as f64 / 1000.0;
    let p90_ms = lat.quantile_us(0.90).unwrap() as f64 / 1000.0;
    // ~60 arrivals fall inside the 600 ms stall and wait behind it; their latencies spread over 0..600 ms.
    assert!(
        max_ms >= 590.0,
        "max {max_ms} ms must include the 600 ms stall"
    );
    assert!(
        p90_ms >= 300.0,
        "p90 {p90_ms} ms: queued arrivals must carry the stall (coordinated omission)"
    );
    let (slot_late, late) = (
        counters.slot_late.load(Ordering::Relaxed),
        counters.late.load(Ordering::Relaxed),
    );
    assert!(slot_late >= 40, "sends that waited for a slot: {slot_late}");
    assert!(
        late * 4 < slot_late,
        "the stall is the target's, not the generator's: late {late}, slot waits {slot_late}"
    );
    assert!(
        stats.aggregate_report().requests >= 140,
        "every arrival was eventually sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_header_decides_success_and_statuses_are_classified() {
    let (url, _) = common::start().await;
    let s = scenario(
        "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 2\nthink_time = \"5ms\"\nrun_time = \"1s\"\n\
         [[request]]\nname = \"no key header\"\npath = \"/ok/h\"\nexpect_header = \"X-Key-Used\"\n\
         [[request]]\nname = \"has content-type\"\npath = \"/ok/h\"\nexpect_header = \"content-type\"\n\
         [[request]]\nname = \"429 accepted\"\npath = \"/status/429\"\nexpect = [200, 429]\n\
         [[request]]\nname = \"503\"\npath = \"/status/503\"\n",
    );
    let (stats, _) = run(&s, &url, TagFilter::default()).await;
    let by_name = |name: &str| {
        stats
            .request_reports()
            .into_iter()
            .find(|r| r.name == name)
            .expect(name)
    };
    let missing = by_name("no key header");
    assert!(
        missing.requests > 0 && missing.failures == missing.requests,
        "all fail without the header"
    );
    let present = by_name("has content-type");
    assert!(present.requests > 0 && present.failures == 0);
    let accepted = by_name("429 accepted");
    assert!(
        accepted.requests > 0 && accepted.failures == 0,
        "429 is expected here"
    );
    let unavailable = by_name("503");
    assert!(unavailable.requests > 0 && unavailable.failures == unavailable.requests);
    let messages: Vec<String> = stats
        .totals()
        .errors
        .rows()
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("without required header x-key-used")),
        "{messages:?}"
    );
}
