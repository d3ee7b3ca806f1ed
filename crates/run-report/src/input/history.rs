//! The Locust 2.x `_stats_history.csv`, read by column name (so Locust's own files work too).
//!
//! Only `Aggregated` rows are kept (Locust's `--csv-full-history` adds per-request rows). Percentile cells are
//! `N/A` for intervals without a finished request.

use std::path::Path;

use crate::error::ReportError;

/// One closed interval of the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// Unix seconds at the end of the interval.
    pub timestamp: u64,
    /// Users (closed model) or in-flight requests (open model).
    pub users: u64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Failures per second (429s included).
    pub failures_per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Cumulative requests.
    pub total_requests: u64,
    /// Cumulative failures.
    pub total_failures: u64,
}

const COLUMNS: [&str; 10] = [
    "Timestamp",
    "User Count",
    "Name",
    "Requests/s",
    "Failures/s",
    "50%",
    "95%",
    "99%",
    "Total Request Count",
    "Total Failure Count",
];

/// Reads the aggregated rows; errors name the file, the line and the column.
pub fn read(path: &Path) -> Result<Vec<HistoryPoint>, ReportError> {
    let text = ReportError::read_to_string(path)?;
    parse(&text).map_err(|problem| ReportError::invalid(path, problem))
}

/// Parses the CSV text (pure; `read` adds the file name to errors).
pub fn parse(text: &str) -> Result<Vec<HistoryPoint>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("bad header: {e}"))?
        .clone();
    let mut index = [0usize; COLUMNS.len()];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("missing column `{name}` (not a Locust _stats_history.csv?)"))?;
    }
    let mut points = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| format!("line {line}: {e}"))?;
        let cell = |i: usize| record.get(index[i]).unwrap_or("").trim();
        if cell(2) != "Aggregated" {
            continue;
        }
        let number = |i: usize| -> Result<Option<f64>, String> {
            match cell(i) {
                "" | "N/A" => Ok(None),
                v => v.parse::<f64>().map(Some).map_err(|_| {
                    format!(
                        "line {line}: column `{}`: `{v}` is not a number",
                        COLUMNS[i]
                    )
                }),
            }
        };
        let count = |i: usize| number(i).map(|v| v.unwrap_or(0.0).max(0.0) as u64);
        points.push(HistoryPoint {
            timestamp: count(0)?,
            users: count(1)?,
            requests_per_sec: number(3)?.unwrap_or(0.0),
            failures_per_sec: number(4)?.unwrap_or(0.0),
            p50_ms: number(5)?,
            p95_ms: number(6)?,
            p99_ms: number(7)?,
            total_requests: count(8)?,
            total_failures: count(9)?,
        });
    }
    points.sort_by_key(|p| p.timestamp);
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCUST: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size\r\n\
1700000001,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0\r\n\
1700000002,10,,Aggregated,95.000000,1.000000,12,14,15,16,20,25,30,41,60,60,60,95,1,12,13.5,2,60,120\r\n\
1700000002,10,POST,chat,95.000000,1.000000,12,14,15,16,20,25,30,41,60,60,60,95,1,12,13.5,2,60,120\r\n";

    #[test]
    fn reads_aggregated_rows_and_na_cells() {
        let points = parse(LOCUST).unwrap();
        assert_eq!(points.len(), 2, "per-request row skipped");
        assert_eq!(points[0].p95_ms, None);
        assert_eq!(
            (
                points[1].users,
                points[1].requests_per_sec,
                points[1].p95_ms,
                points[1].p99_ms,
                points[1].total_failures
            ),
            (10, 95.0, Some(25.0), Some(41.0), 1)
        );
    }

    #[test]
    fn errors_name_the_column_and_line() {
        for (text, expected) in [
            (
                "Timestamp,Name\n1,Aggregated\n",
                "missing column `User Count`",
            ),
            (
                &LOCUST.replace("95.000000,1.000000,12", "fast,1.000000,12"),
                "line 3: column `Requests/s`: `fast`",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }
}
