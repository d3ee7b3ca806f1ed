//! `connection_reuse` end to end, run by the real harness binary on `scenarios/tls_soak.toml` cut to a few seconds
//! at its 50 req/s, a pooling proxy and the misbehaving fixture with `new-connection-per-request` (which keeps
//! no idle connection) at once each time. The pooling proxy must pass with many requests per connection; the
//! fixture must fail with about one, and for that reason only.
//!
//! - Over plain HTTP (the scenario's `[upstream.tls]` table left out, so the check is shown apart from TLS),
//!   with the reference proxy.
//! - Over TLS as the catalogue has it, with the FastAPI example (`examples/fastapi-proxy`, its `--upstream-ca`):
//!   the proxy in the users' own stack, whose HTTPS client must pool as well as the plain one. Every counted
//!   connection must have begun with a TLS handshake. Skipped without `python3` and the example's requirements
//!   (failed instead with `CI` set).

mod common;

use common::{
    behaviour_outcomes, fastapi_example_can_run, misbehaving_command, run_scenario, temp_dir,
};

/// A short debug-build run on a shared machine says nothing about tail latency or drift: only reuse is judged.
const ONLY_REUSE_JUDGED: [&str; 6] = [
    "--p99",
    "2s",
    "--max-p95-drift-ratio",
    "20",
    "--max-p95-drift-ms",
    "1000",
];

/// `scenarios/tls_soak.toml` as the catalogue has it.
fn catalogue_scenario() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/tls_soak.toml");
    std::fs::read_to_string(path).expect("read tls_soak.toml")
}

/// The catalogue scenario without its `[upstream.tls]` table.
fn plain_http_scenario() -> String {
    let text = catalogue_scenario();
    let mut in_tls_table = false;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let header = line.trim_start().starts_with('[');
            if header {
                in_tls_table = line.trim_start().starts_with("[upstream.tls]");
            }
            !in_tls_table
        })
        .collect();
    assert!(
        kept.len() < text.lines().count(),
        "tls_soak.toml should turn TLS on in an [upstream.tls] table"
    );
    kept.join("\n")
}

/// `summary.json`'s connection reuse measurement and its verdict, for assertion messages.
fn evidence(who: &str, summary: &serde_json::Value) -> String {
    let behaviour = &summary["engine"]["behaviour"];
    format!(
        "{who}: verdict {}, reasons {}\nmeasured: {}\nverdicts: {}",
        summary["verdict"],
        summary["verdict_reasons"],
        behaviour["measurements"]["connection_reuse"],
        behaviour["verdicts"]
    )
}

fn requests_per_connection(summary: &serde_json::Value) -> f64 {
    summary["engine"]["behaviour"]["measurements"]["connection_reuse"]["requests_per_connection"]
        .as_f64()
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pooling_proxy_passes_and_the_one_connecting_per_request_fails() {
    let scenario = plain_http_scenario();
    let fixture = format!(
        "{scenario}\n[proxy]\ncommand = {}\n",
        misbehaving_command("new-connection-per-request", &[])
    );
    let cut = [&["-t", "12s"][..], &ONLY_REUSE_JUDGED].concat();
    let (pooled_dir, connecting_dir) = (temp_dir(), temp_dir());
    let ((_, pooled), (_, connecting)) = tokio::join!(
        run_scenario(&pooled_dir, &scenario, &cut),
        run_scenario(&connecting_dir, &fixture, &cut)
    );

    assert_reuse_passes("reference proxy", &pooled);
    assert_reuse_fails("new-connection-per-request", &connecting, 300);
}

/// `connection_reuse` passed with at least 20 requests per connection, and the run did not fail; returns the
/// evidence for further assertions.
fn assert_reuse_passes(who: &str, summary: &serde_json::Value) -> String {
    let why = evidence(who, summary);
    println!("{why}");
    assert_eq!(
        behaviour_outcomes(summary, "connection_reuse"),
        ["pass"],
        "{why}"
    );
    assert!(requests_per_connection(summary) >= 20.0, "{why}");
    assert_ne!(summary["verdict"], "FAIL", "{why}");
    why
}

/// `connection_reuse` failed on at least `min_requests` requests at under 1.5 per connection, and the run
/// failed; returns the evidence for further assertions.
fn assert_reuse_fails(who: &str, summary: &serde_json::Value, min_requests: u64) -> String {
    let why = evidence(who, summary);
    println!("{why}");
    assert_eq!(
        behaviour_outcomes(summary, "connection_reuse"),
        ["fail"],
        "{why}"
    );
    assert!(measured_count(summary, "requests") >= min_requests, "{why}");
    assert!(requests_per_connection(summary) < 1.5, "{why}");
    assert_eq!(summary["verdict"], "FAIL", "{why}");
    why
}

/// The `connection_reuse` measurement's `field` as a count.
fn measured_count(summary: &serde_json::Value, field: &str) -> u64 {
    summary["engine"]["behaviour"]["measurements"]["connection_reuse"][field]
        .as_u64()
        .unwrap_or(0)
}

/// The checks and thresholds of a run that failed, other than `connection_reuse`.
fn other_failures(summary: &serde_json::Value) -> Vec<String> {
    let behaviour = summary["engine"]["behaviour"]["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["outcome"] == "fail" && v["check"] != "connection_reuse")
        .map(|v| format!("behaviour {}: {}", v["check"], v["detail"]));
    let thresholds = summary["thresholds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["passed"] == false)
        .map(|t| format!("threshold {}: {}", t["metric"], t["detail"]));
    behaviour.chain(thresholds).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_the_fastapi_example_passes_and_the_one_connecting_per_request_fails() {
    if !fastapi_example_can_run() {
        return;
    }
    let scenario = catalogue_scenario();
    let app = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/fastapi-proxy/app.py"
    );
    let fastapi = format!(
        "{scenario}\n[proxy]\ncommand = {:?}\nready_path = \"/health\"\nready_timeout = \"30s\"\n",
        [
            "python3",
            app,
            "--port",
            "{port}",
            "--upstream",
            "{upstream_url}",
            "--keys-file",
            "{keys_file}",
            "--upstream-ca",
            "{ca_file}"
        ]
    );
    let fixture = format!(
        "{scenario}\n[proxy]\ncommand = {}\n",
        misbehaving_command(
            "new-connection-per-request",
            &["--upstream-ca", "{ca_file}"]
        )
    );
    let cut = [&["-t", "8s", "--warmup", "2s"][..], &ONLY_REUSE_JUDGED].concat();
    let (pooled_dir, connecting_dir) = (temp_dir(), temp_dir());
    let ((_, pooled), (_, connecting)) = tokio::join!(
        run_scenario(&pooled_dir, &fastapi, &cut),
        run_scenario(&connecting_dir, &fixture, &cut)
    );

    let why = assert_reuse_passes("FastAPI example over TLS", &pooled);
    let connections = measured_count(&pooled, "connections");
    assert!(connections >= 1, "{why}");
    assert_eq!(
        measured_count(&pooled, "tls_handshakes"),
        connections,
        "{why}"
    );

    let why = assert_reuse_fails("new-connection-per-request over TLS", &connecting, 200);
    assert_eq!(
        measured_count(&connecting, "tls_handshakes"),
        measured_count(&connecting, "connections"),
        "{why}"
    );
    // The run fails because of the connection reuse verdict: its detail is one of the reasons, and nothing
    // else failed.
    let reuse_detail = connecting["engine"]["behaviour"]["verdicts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["check"] == "connection_reuse")
        .and_then(|v| v["detail"].as_str())
        .unwrap_or_default();
    assert!(!reuse_detail.is_empty(), "{why}");
    let reasons = connecting["verdict_reasons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().is_some_and(|r| r.contains(reuse_detail))),
        "{why}"
    );
    assert_eq!(other_failures(&connecting), Vec::<String>::new(), "{why}");
}
