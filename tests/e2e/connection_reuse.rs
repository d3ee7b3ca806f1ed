//! `connection_reuse` end to end: `scenarios/tls_soak.toml` over plain HTTP (its `[upstream.tls]` table left
//! out, so the check is shown apart from TLS), cut to 12 s at its 50 req/s, run by the real harness binary against
//! the reference proxy (which pools its upstream connections) and against the misbehaving fixture with
//! `new-connection-per-request` (which keeps no idle connection), both at once. The reference proxy must pass
//! with many requests per connection; the fixture must fail with about one.

mod common;

use common::{behaviour_outcomes, misbehaving_command, run_scenario, temp_dir};

/// The catalogue scenario without its `[upstream.tls]` table.
fn plain_http_scenario() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/tls_soak.toml");
    let text = std::fs::read_to_string(path).expect("read tls_soak.toml");
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
    // A short debug-build run on a shared machine says nothing about tail latency or drift: only reuse is judged.
    let cut = [
        "-t",
        "12s",
        "--p99",
        "2s",
        "--max-p95-drift-ratio",
        "20",
        "--max-p95-drift-ms",
        "1000",
    ];
    let (pooled_dir, connecting_dir) = (temp_dir(), temp_dir());
    let ((_, pooled), (_, connecting)) = tokio::join!(
        run_scenario(&pooled_dir, &scenario, &cut),
        run_scenario(&connecting_dir, &fixture, &cut)
    );

    let why = evidence("reference proxy", &pooled);
    println!("{why}");
    assert_eq!(
        behaviour_outcomes(&pooled, "connection_reuse"),
        ["pass"],
        "{why}"
    );
    assert!(requests_per_connection(&pooled) >= 20.0, "{why}");
    assert_ne!(pooled["verdict"], "FAIL", "{why}");

    let why = evidence("new-connection-per-request", &connecting);
    println!("{why}");
    assert_eq!(
        behaviour_outcomes(&connecting, "connection_reuse"),
        ["fail"],
        "{why}"
    );
    let measured = &connecting["engine"]["behaviour"]["measurements"]["connection_reuse"];
    assert!(measured["requests"].as_u64().unwrap_or(0) >= 300, "{why}");
    assert!(requests_per_connection(&connecting) < 1.5, "{why}");
    assert_eq!(connecting["verdict"], "FAIL", "{why}");
}
