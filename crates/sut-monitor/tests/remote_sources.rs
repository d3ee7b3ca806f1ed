//! The `metrics` source over real HTTP: three `/metrics` endpoints on loopback, one growing, one that restarts
//! (its start time changes) and one that fails for a while. The monitor must give each its own rows, name the
//! restarted one CRASHED and the failing one INVALID (a gap, never zeros).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sut_monitor::leak::{analyze_replicas, LeakConfig, Verdict};
use sut_monitor::monitor::{Monitor, MonitorConfig};
use sut_monitor::resources_csv::read_samples;
use sut_monitor::source::{MetricNames, MonitorSource};

const MIB: u64 = 1 << 20;

/// What an endpoint answers to its `n`th scrape: `Ok(page)` or `Err(status)`.
type Page = fn(u64) -> Result<String, u16>;

fn page(rss: u64, start: f64, cpu: f64) -> String {
    format!(
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n\
         process_open_fds 12\nprocess_cpu_seconds_total {cpu}\nprocess_start_time_seconds {start}\n\
         process_virtual_memory_bytes 1e9\n"
    )
}

/// Serves `answer` on a loopback port until the test ends; returns its `/metrics` URL.
fn serve(answer: Page) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/metrics", listener.local_addr().expect("addr"));
    let scrapes = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let n = scrapes.fetch_add(1, Ordering::SeqCst);
            let (status, body) = match answer(n) {
                Ok(body) => (200, body),
                Err(status) => (status, "unavailable".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = reader.get_mut().write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn each_replica_gets_its_rows_and_restarts_and_gaps_are_named() {
    let growing = serve(|n| Ok(page(10 * MIB + n * MIB, 1000.0, n as f64 * 0.01)));
    let restarting = serve(|n| Ok(page(20 * MIB, if n < 5 { 1000.0 } else { 2000.0 }, 0.5)));
    let failing = serve(|n| {
        if (3..=9).contains(&n) {
            Err(503)
        } else {
            Ok(page(30 * MIB, 1000.0, 0.1))
        }
    });
    let name = |url: &str| sut_monitor::source::replica_name_of_url(url);
    let source = MonitorSource::Metrics {
        urls: vec![growing.clone(), restarting.clone(), failing.clone()],
        names: MetricNames::default(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("resources.csv");
    let config = MonitorConfig {
        interval: Duration::from_millis(100),
        ..MonitorConfig::default()
    };
    let handle = Monitor::start_source(&source, config, &csv).expect("start");
    std::thread::sleep(Duration::from_millis(2000));
    let series = handle.stop();

    let rows_of = |replica: &str| {
        series
            .samples
            .iter()
            .filter(|s| s.replica == replica)
            .count()
    };
    assert!(rows_of(&name(&growing)) >= 10, "{:?}", series.samples.len());
    assert!(
        rows_of(&name(&failing)) < rows_of(&name(&growing)),
        "the failing one has fewer rows"
    );
    let growth: Vec<u64> = series
        .samples
        .iter()
        .filter(|s| s.replica == name(&growing))
        .map(|s| s.rss_bytes)
        .collect();
    assert!(growth.windows(2).all(|w| w[1] > w[0]), "{growth:?}");
    assert!(
        series.samples.iter().all(|s| s.rss_bytes > 0),
        "a failed scrape is never a zero row"
    );
    let restarted: Vec<&str> = series
        .replica_restarts
        .iter()
        .map(|r| r.replica.as_str())
        .collect();
    assert_eq!(restarted, [name(&restarting)]);
    for column in ["threads", "rss_anon_bytes", "socket_fds"] {
        assert!(
            series.unavailable_columns.iter().any(|c| c == column),
            "{column}"
        );
    }

    let report = analyze_replicas(&series, &LeakConfig::default());
    assert_eq!(report.verdict, Verdict::Crashed, "{:?}", report.reasons);
    let verdict_of = |url: &str| {
        report
            .replicas
            .iter()
            .find(|r| r.replica == name(url))
            .map(|r| r.report.verdict)
    };
    assert_eq!(verdict_of(&restarting), Some(Verdict::Crashed));
    assert_eq!(verdict_of(&failing), Some(Verdict::Invalid));
    let reasons = report.reasons.join("\n");
    assert!(
        reasons.contains(&format!("replica {} restarted", name(&restarting))),
        "{reasons}"
    );
    assert!(reasons.contains("sampling gap"), "{reasons}");

    let written = read_samples(&csv).expect("resources.csv reads back");
    assert_eq!(written.len(), series.samples.len());
    assert!(written.iter().any(|s| s.replica == name(&failing)));
}
