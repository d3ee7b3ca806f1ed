//! `harness run --metrics-listen`: the live OpenMetrics endpoint, scraped over loopback during a real run (the
//! real harness binary, its in-process mock and the reference proxy), and the Grafana dashboard checked
//! against what the endpoint served.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_harness");
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/grafana/harness-dashboard.json"
);

/// One sample line of the exposition: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text (the subset the endpoint writes: no escaped quotes in label values, no
/// timestamps, no exemplars); panics on anything else so a format change cannot pass unnoticed.
fn parse(text: &str) -> Vec<Sample> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value
                    .parse()
                    .unwrap_or_else(|e| panic!("{line}: value: {e}")),
            }
        })
        .collect()
}

fn sum(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k).is_some_and(|x| x == v)))
        .map(|s| s.value)
        .sum()
}

fn value(samples: &[Sample], name: &str, label: (&str, &str)) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get(label.0).is_some_and(|v| v == label.1))
        .map(|s| s.value)
}

async fn scrape(client: &reqwest::Client, url: &str) -> Option<Vec<Sample>> {
    let response = client.get(url).send().await.ok()?;
    let content_type = response.headers().get("content-type")?.to_str().ok()?;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Some(parse(&response.text().await.ok()?))
}

/// Scrapes every 100 ms until `until` holds for a scrape, or panics after `limit`.
async fn scrape_until(
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
    until: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(samples) = scrape(client, url).await {
            if until(&samples) {
                return samples;
            }
        }
        assert!(Instant::now() < deadline, "no matching scrape of {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every `harness_*` metric name the dashboard's queries (panels and annotations) use.
fn dashboard_metric_names(dashboard: &serde_json::Value) -> BTreeSet<String> {
    let mut exprs = Vec::new();
    collect_exprs(dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "the dashboard has queries: {exprs:?}");
    exprs
        .iter()
        .flat_map(|e| {
            e.match_indices("harness_").map(|(i, _)| {
                e[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
        })
        .collect()
}

fn collect_exprs(v: &serde_json::Value, into: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => into.push(e.clone()),
                    _ => collect_exprs(v, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, into)),
        _ => {}
    }
}

fn scenario(dir: &Path) -> std::path::PathBuf {
    let text = common::chat_and_stream_scenario(
        "live_metrics",
        5,
        "4s",
        r#"
[[timeline]]
at = "1s"
for = "1500ms"
label = "key2 limited"
fault = { keys = ["key2"], action = "rate_limit", retry_after = "1s" }

[thresholds]
p99 = "2s"
max_error_percent_excluding_429 = 5.0
"#,
    );
    common::scenario_file(dir, "live_metrics.toml", &text)
}

/// A 4 s run with a 2 s drain: scraped while the load runs (fault window open, requests counted) and once the
/// load has ended (phase `drain`); the final per-request and per-class counts equal `summary.json`'s, and every
/// metric name the Grafana dashboard queries was served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_the_runs_counts_and_every_dashboard_metric() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path());
    let out = dir.path().join("out");
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/metrics");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "-q",
            "--drain",
            "2s",
            "--metrics-listen",
            &addr,
            "--out",
        ])
        .arg(&out)
        .arg(&file)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn harness");
    let client = reqwest::Client::new();
    let during = scrape_until(&client, &url, Duration::from_secs(30), |s| {
        value(s, "harness_fault_window_active", ("window", "key2 limited")) == Some(1.0)
            && sum(s, "harness_requests_total", None) > 0.0
    })
    .await;
    assert_eq!(
        value(&during, "harness_run_phase", ("phase", "drain")),
        Some(0.0)
    );
    let after = scrape_until(&client, &url, Duration::from_secs(30), |s| {
        value(s, "harness_run_phase", ("phase", "drain")) == Some(1.0)
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("harness finished")
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(status.code().is_some_and(|c| c <= 1), "{status:?}");

    let aggregate = &summary["aggregate"];
    assert_eq!(
        sum(&after, "harness_requests_total", None),
        aggregate["requests"].as_f64().unwrap()
    );
    assert_eq!(
        sum(&after, "harness_failures_total", None),
        aggregate["failures"].as_f64().unwrap()
    );
    assert!(
        sum(&during, "harness_requests_total", None) < sum(&after, "harness_requests_total", None)
    );
    for request in summary["requests"].as_array().unwrap() {
        let name = request["name"].as_str().unwrap();
        assert_eq!(
            sum(&after, "harness_requests_total", Some(("name", name))),
            request["requests"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(
            sum(
                &after,
                "harness_request_duration_seconds_count",
                Some(("name", name))
            ),
            request["requests"].as_f64().unwrap(),
            "{name}: histogram count"
        );
    }
    let limited = sum(&after, "harness_requests_total", Some(("class", "429")));
    let by_class = summary["failures_by_class"].to_string();
    assert_eq!(
        value(
            &after,
            "harness_fault_window_active",
            ("window", "key2 limited")
        ),
        Some(0.0)
    );
    assert!(
        sum(&after, "harness_time_to_first_token_seconds_count", None) > 0.0,
        "streams have TTFT"
    );
    assert!(sum(&after, "harness_proxy_rss_bytes", None) > 0.0);
    assert_eq!(
        value(&after, "harness_verdict", ("check", "Aggregated p99")),
        Some(1.0),
        "the p99 limit holds so far ({limited} 429s; {by_class})"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let served: BTreeSet<String> = during
        .iter()
        .chain(&after)
        .map(|s| s.name.clone())
        .collect();
    let used = dashboard_metric_names(&dashboard);
    let missing: Vec<_> = used.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the endpoint does not serve: {missing:?}"
    );
}

/// An unparsable address is a command-line error (exit 2) naming the flag.
#[tokio::test]
async fn a_bad_address_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path());
    let output = Command::new(BIN)
        .args(["run", "--metrics-listen", "localhost:metrics"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-listen"), "{stderr}");
}

/// A port already taken stops the run before the proxy starts, with exit 2 and the address in the message.
#[tokio::test]
async fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["run", "--metrics-listen", &addr, "--out"])
        .arg(dir.path().join("out"))
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&addr) && stderr.contains("already in use"),
        "{stderr}"
    );
}

#[test]
fn the_parser_reads_labels_and_rejects_a_missing_eof() {
    let text = "# TYPE harness_requests counter\nharness_requests_total{name=\"a, b\",class=\"2xx\"} 3\nharness_users 2\n# EOF\n";
    let samples = parse(text);
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["name"], "a, b");
    assert_eq!(samples[0].labels["class"], "2xx");
    assert_eq!(sum(&samples, "harness_users", None), 2.0);
    assert!(std::panic::catch_unwind(|| parse("harness_users 2\n")).is_err());
}
