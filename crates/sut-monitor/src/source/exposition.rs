//! One replica's `/metrics` page (Prometheus text exposition) → a [`RemoteReading`].
//!
//! Parsing is the `prometheus-parse` crate's; this module only picks the configured names out of it. A name that
//! appears with several label sets (a process exporting per-worker series) is combined by [`Gauge::combine`], as
//! the process source sums a process tree.

use super::{Gauge, MetricNames, RemoteReading};

/// Why a page could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExpositionError {
    /// Not Prometheus text.
    #[error("not Prometheus text exposition: {0}")]
    Unparsable(String),
    /// Parsed, but none of the configured metric names is on the page.
    #[error("none of the configured metrics ({0}) is exported")]
    NoKnownMetric(String),
}

/// Picks the gauges named in `names` out of an exposition page.
pub fn reading_from_text(
    text: &str,
    names: &MetricNames,
) -> Result<RemoteReading, ExpositionError> {
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| ExpositionError::Unparsable(e.to_string()))?;
    let mut reading = RemoteReading::default();
    for gauge in Gauge::ALL {
        let name = names.of(gauge);
        let values = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(|s| scalar(&s.value));
        reading.set(gauge, values.reduce(|a, b| gauge.combine(a, b)));
    }
    if reading.is_empty() {
        let wanted: Vec<&str> = Gauge::ALL.iter().map(|&g| names.of(g)).collect();
        return Err(ExpositionError::NoKnownMetric(wanted.join(", ")));
    }
    Ok(reading)
}

fn scalar(value: &prometheus_parse::Value) -> Option<f64> {
    match *value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(v).filter(|v| v.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUST_PROMETHEUS: &str = "\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 17
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 12345678
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1764950000
# TYPE process_threads gauge
process_threads 9
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 1.2e9
";

    #[test]
    fn pages_map_to_readings() {
        let custom = MetricNames {
            rss: "proxy_rss".into(),
            open_fds: "proxy_fds".into(),
            ..MetricNames::default()
        };
        let per_worker =
            "# TYPE proxy_rss gauge\nproxy_rss{worker=\"1\"} 100\nproxy_rss{worker=\"2\"} 50\n\
                          proxy_fds 3\nprocess_start_time_seconds{worker=\"1\"} 10\n\
                          process_start_time_seconds{worker=\"2\"} 20\n";
        let python_client = "process_resident_memory_bytes 2.048e+07\nprocess_open_fds 6.0\n\
                             process_cpu_seconds_total 0.25\nprocess_start_time_seconds 1.76495e+09\n";
        type Case<'a> = (&'a str, &'a MetricNames, &'a [(Gauge, f64)]);
        let cases: [Case; 3] = [
            (
                RUST_PROMETHEUS,
                &MetricNames::default(),
                &[
                    (Gauge::Rss, 12_345_678.0),
                    (Gauge::Vsize, 1.2e9),
                    (Gauge::CpuSeconds, 1.5),
                    (Gauge::OpenFds, 17.0),
                    (Gauge::Threads, 9.0),
                    (Gauge::StartTime, 1_764_950_000.0),
                ],
            ),
            (
                per_worker,
                &custom,
                &[
                    (Gauge::Rss, 150.0),
                    (Gauge::OpenFds, 3.0),
                    (Gauge::StartTime, 20.0),
                ],
            ),
            (
                python_client,
                &MetricNames::default(),
                &[
                    (Gauge::Rss, 2.048e7),
                    (Gauge::CpuSeconds, 0.25),
                    (Gauge::OpenFds, 6.0),
                    (Gauge::StartTime, 1.76495e9),
                ],
            ),
        ];
        for (text, names, want) in cases {
            assert_eq!(
                reading_from_text(text, names),
                Ok(RemoteReading::of(want)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_page_without_the_configured_metrics_is_an_error() {
        let err = reading_from_text("http_requests_total 5\n", &MetricNames::default())
            .expect_err("nothing known");
        assert!(
            err.to_string().contains("process_resident_memory_bytes"),
            "{err}"
        );
    }
}
