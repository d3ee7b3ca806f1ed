//! Locust 2.x compatible CSV files: `_stats.csv`, `_stats_history.csv`, `_failures.csv`, `_exceptions.csv`.
//!
//! Why: the users' CI scripts and dashboards read Locust's files. Headers, column order, the `Aggregated` row,
//! `\r\n` row endings and cell formats follow Locust 2.47.0, checked byte for byte against real Locust output
//! committed under `tests/fixtures/locust/`.
//!
//! Deliberate differences from Locust (documented for readers of the files):
//! - Latencies come from HDR histograms at microsecond resolution; percentile cells are then bucketed exactly like
//!   Locust's (2 significant digits) so the cells look the same. Percentile ranks follow HdrHistogram
//!   (`ceil(n x q)`); Locust takes rank `floor(n x q) + 1`, so the two differ only when `n x q` is a whole number
//!   (e.g. the median of an even count) — negligible beyond a handful of requests. Given the same latencies, the
//!   file is otherwise identical to Locust's (tested against Locust's own code, `fixtures/locust/reference/`).
//! - `_stats_history.csv` percentiles, `Requests/s` and `Failures/s` describe the closed interval itself (1 s),
//!   where Locust's aggregated row shows run-so-far percentiles and a ~10 s moving rate; the `Total ...` columns
//!   are cumulative, as in Locust.
//! - `_failures.csv` `Error` is `unexpected status <code>` for a response the scenario did not accept and
//!   `<class>: <message>` for a transport error (Locust writes Python exception reprs).

pub mod format;

use std::io::{self, Write};
use std::time::Duration;

use crate::errors::{ErrorKind, ErrorRow, ErrorTable};
use crate::percentiles::{us_to_ms, LOCUST_PERCENTILE_LABELS};
use crate::{HistoryRow, LatencyPercentiles, RequestReport, RunStats};
use format::{float_or_float_zero, float_or_int_zero, median_cell, percentile_cell};

/// `_stats.csv` columns before the percentiles.
const STATS_COLUMNS: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];
/// `_stats_history.csv` columns before the percentiles.
const HISTORY_LEADING_COLUMNS: [&str; 6] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
];
/// `_stats_history.csv` columns after the percentiles.
const HISTORY_TOTAL_COLUMNS: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];
/// `_failures.csv` columns (Locust 2.47 added the two `Seen` columns).
pub const FAILURES_COLUMNS: [&str; 6] = [
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
];
/// `_exceptions.csv` columns.
pub const EXCEPTIONS_COLUMNS: [&str; 4] = ["Count", "Message", "Traceback", "Nodes"];

/// `_stats.csv` header, in order.
pub fn stats_columns() -> Vec<&'static str> {
    STATS_COLUMNS
        .iter()
        .chain(&LOCUST_PERCENTILE_LABELS)
        .copied()
        .collect()
}

/// `_stats_history.csv` header, in order.
pub fn history_columns() -> Vec<&'static str> {
    HISTORY_LEADING_COLUMNS
        .iter()
        .chain(&LOCUST_PERCENTILE_LABELS)
        .chain(&HISTORY_TOTAL_COLUMNS)
        .copied()
        .collect()
}

fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(w)
}

/// Writes `_stats.csv`: one row per request (sorted by name, method) and the `Aggregated` row.
pub fn write_stats_csv(w: impl Write, run: &RunStats) -> io::Result<()> {
    let mut csv = csv_writer(w);
    csv.write_record(stats_columns())?;
    let elapsed = run.elapsed();
    for report in run
        .request_reports()
        .iter()
        .chain([&run.aggregate_report()])
    {
        csv.write_record(stats_row(report, elapsed))?;
    }
    csv.flush()
}

/// The `_stats.csv` cells of one report; rates are over `elapsed` (0 when it is zero, like Locust).
pub fn stats_row(report: &RequestReport, elapsed: Duration) -> Vec<String> {
    let latency = &report.latency;
    let ms = |us: Option<u64>| us.map(us_to_ms);
    let (min, max) = (ms(latency.min_us()), ms(latency.max_us()));
    let per_sec = |n: u64| (!elapsed.is_zero()).then(|| n as f64 / elapsed.as_secs_f64());
    let content =
        (report.requests > 0).then(|| report.content_bytes as f64 / report.requests as f64);
    let mut row = vec![
        report.method.clone(),
        report.name.clone(),
        report.requests.to_string(),
        report.failures.to_string(),
        median_cell(ms(latency.quantile_us(0.5)), min, max),
        float_or_float_zero(latency.mean_ms()),
        float_or_int_zero(min),
        float_or_int_zero(max),
        float_or_int_zero(content),
        float_or_float_zero(per_sec(report.requests)),
        float_or_float_zero(per_sec(report.failures)),
    ];
    row.extend(percentile_cells(report.percentiles().as_ref()));
    row
}

fn percentile_cells(percentiles: Option<&LatencyPercentiles>) -> Vec<String> {
    match percentiles {
        Some(p) => p
            .as_array()
            .iter()
            .map(|ms| percentile_cell(Some(*ms)))
            .collect(),
        None => vec![percentile_cell(None); LOCUST_PERCENTILE_LABELS.len()],
    }
}

/// Appends `_stats_history.csv` rows as intervals close; every row is flushed so a killed run keeps its history.
pub struct HistoryCsvWriter<W: Write> {
    csv: csv::Writer<W>,
}

impl<W: Write> HistoryCsvWriter<W> {
    /// Writes the header and flushes.
    pub fn new(w: W) -> io::Result<Self> {
        let mut csv = csv_writer(w);
        csv.write_record(history_columns())?;
        csv.flush()?;
        Ok(Self { csv })
    }

    /// Writes one `Aggregated` row and flushes.
    pub fn write_row(&mut self, row: &HistoryRow) -> io::Result<()> {
        self.csv.write_record(history_row(row))?;
        self.csv.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// The `_stats_history.csv` cells of one closed interval.
pub fn history_row(row: &HistoryRow) -> Vec<String> {
    let total = &row.total;
    let content = (total.requests > 0).then(|| total.content_bytes as f64 / total.requests as f64);
    let mut cells = vec![
        row.timestamp.to_string(),
        row.users.to_string(),
        String::new(),
        crate::run::AGGREGATED_NAME.to_owned(),
        format!("{:.6}", row.requests_per_sec),
        format!("{:.6}", row.failures_per_sec),
    ];
    cells.extend(percentile_cells(row.percentiles.as_ref()));
    cells.extend([
        total.requests.to_string(),
        total.failures.to_string(),
        median_cell(total.median_ms, total.min_ms, total.max_ms),
        float_or_float_zero(total.mean_ms),
        float_or_int_zero(total.min_ms),
        float_or_int_zero(total.max_ms),
        float_or_int_zero(content),
    ]);
    cells
}

/// Writes `_failures.csv` from the error table.
pub fn write_failures_csv(w: impl Write, errors: &ErrorTable) -> io::Result<()> {
    let mut csv = csv_writer(w);
    csv.write_record(FAILURES_COLUMNS)?;
    for row in errors.rows() {
        csv.write_record(failure_row(&row))?;
    }
    csv.flush()
}

/// The `_failures.csv` cells of one error row.
pub fn failure_row(row: &ErrorRow) -> Vec<String> {
    let error = match row.kind {
        ErrorKind::Status(_) => row.message.clone(),
        ErrorKind::Transport(_) => format!("{}: {}", row.kind.class(), row.message),
    };
    vec![
        row.method.clone(),
        row.name.clone(),
        error,
        row.occurrences.to_string(),
        utc_timestamp(row.first_seen),
        utc_timestamp(row.last_seen),
    ]
}

/// Locust's `format_utc_timestamp`: `%Y-%m-%dT%H:%M:%SZ`.
pub fn utc_timestamp(unix_secs: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| at.format(&format).ok())
        .unwrap_or_default()
}

/// One line of `_exceptions.csv` (Locust: errors raised by the test code itself, not by the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRow {
    /// Occurrences.
    pub count: u64,
    /// Message.
    pub message: String,
    /// Where it happened (free text, may span lines).
    pub traceback: String,
    /// Which generator processes saw it (Locust: `local` or worker ids).
    pub nodes: Vec<String>,
}

/// Writes `_exceptions.csv` (header only when `rows` is empty).
pub fn write_exceptions_csv(w: impl Write, rows: &[ExceptionRow]) -> io::Result<()> {
    let mut csv = csv_writer(w);
    csv.write_record(EXCEPTIONS_COLUMNS)?;
    for row in rows {
        csv.write_record([
            row.count.to_string(),
            row.message.clone(),
            row.traceback.clone(),
            row.nodes.join(", "),
        ])?;
    }
    csv.flush()
}
