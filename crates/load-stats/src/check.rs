//! `harness check`: thresholds applied to a finished run's files — a drop-in for the users'
//! `check_load_test_results.py`.
//!
//! Why here: that script read column names Locust 2.x does not write, crashed on the `N/A` cells of an empty run
//! and forgot to take 429s out of the error rate. This reads Locust's real columns by name, treats `N/A` as "no
//! data", and — because `_stats.csv` does not say which failures were 429s — reads the sibling `_failures.csv`
//! (`<prefix>_failures.csv`) and subtracts the rows whose `Error` is a 429 (see [`is_429_error`]). It also reads
//! the harness's own `summary.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::summary::{RequestSummary, Summary};
use crate::thresholds::{all_passed, evaluate, Measured, ThresholdResult, Thresholds};
use crate::LatencyHistogram;

/// Why a file could not be checked (bad input: the CLI exits 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV problem (malformed row, unparsable number, missing column, ...).
    #[error("{path}: {problem}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        problem: CsvProblem,
    },
    /// The JSON is not a `summary.json`.
    #[error("{path} is not a harness summary.json: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
}

/// Which kind of file was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// A Locust (or harness) `_stats.csv`.
    LocustStatsCsv,
    /// A harness `summary.json`.
    SummaryJson,
}

/// The outcome of a check: the results plus notes about how the input was read.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The checked file.
    pub path: PathBuf,
    /// How it was read.
    pub format: InputFormat,
    /// The `_failures.csv` used to identify 429s, if one was found.
    pub failures_csv: Option<PathBuf>,
    /// Remarks for the reader (e.g. 429s could not be identified).
    pub notes: Vec<String>,
    /// The whole run's figures.
    pub overall: Measured,
    /// One result per threshold.
    pub results: Vec<ThresholdResult>,
}

impl CheckReport {
    /// True when every threshold passed.
    pub fn passed(&self) -> bool {
        all_passed(&self.results)
    }
}

/// Reads `path` and applies `thresholds`. `path` may be a Locust `_stats.csv` or a `summary.json` (told apart by
/// content), a results directory (its `summary.json`, else its only `*_stats.csv`), or a Locust `--csv` prefix
/// (`results` for `results_stats.csv`).
pub fn check_path(path: &Path, thresholds: &Thresholds) -> Result<CheckReport, CheckError> {
    let path = &resolve_input(path);
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })?;
    let input = if text.trim_start().starts_with('{') {
        read_summary(path, &text)?
    } else {
        read_locust(path, &text)?
    };
    let results = evaluate(thresholds, &input.overall, &input.per_request);
    Ok(CheckReport {
        path: path.to_owned(),
        format: input.format,
        failures_csv: input.failures_csv,
        notes: input.notes,
        overall: input.overall,
        results,
    })
}

/// The file to read for `path` (see [`check_path`]); `path` itself when nothing better exists, so the read error
/// names what the user typed.
pub fn resolve_input(path: &Path) -> PathBuf {
    if path.is_dir() {
        let summary = path.join("summary.json");
        if summary.is_file() {
            return summary;
        }
        let stats: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with("_stats.csv")))
            .collect();
        if let [only] = stats.as_slice() {
            return only.clone();
        }
    } else if !path.exists() {
        let mut prefixed = path.as_os_str().to_owned();
        prefixed.push("_stats.csv");
        let prefixed = PathBuf::from(prefixed);
        if prefixed.is_file() {
            return prefixed;
        }
    }
    path.to_owned()
}

/// Figures read from a file, before judging.
struct Input {
    format: InputFormat,
    failures_csv: Option<PathBuf>,
    notes: Vec<String>,
    overall: Measured,
    per_request: BTreeMap<String, Measured>,
}

fn read_summary(path: &Path, text: &str) -> Result<Input, CheckError> {
    let summary = Summary::from_json(text).map_err(|e| CheckError::Json {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut notes = Vec::new();
    if summary.schema_version != crate::summary::SCHEMA_VERSION {
        notes.push(format!(
            "summary.json schema version {} (this build reads version {}); fields may have changed",
            summary.schema_version,
            crate::summary::SCHEMA_VERSION
        ));
    }
    let mut by_name: BTreeMap<String, Vec<&RequestSummary>> = BTreeMap::new();
    for request in &summary.requests {
        by_name
            .entry(request.name.clone())
            .or_default()
            .push(request);
    }
    let per_request = by_name
        .into_iter()
        .map(|(name, requests)| (name, measured_of_summaries(&requests)))
        .collect();
    Ok(Input {
        format: InputFormat::SummaryJson,
        failures_csv: None,
        notes,
        overall: measured_of_summaries(&[&summary.aggregate]),
        per_request,
    })
}

/// Sums summaries of one name (several methods): counts and rates add, histograms merge.
fn measured_of_summaries(requests: &[&RequestSummary]) -> Measured {
    let mut histogram = LatencyHistogram::new();
    for request in requests {
        histogram.add(&request.histogram);
    }
    let ms = |q: f64| histogram.quantile_us(q).map(crate::percentiles::us_to_ms);
    Measured {
        requests: requests.iter().map(|r| r.requests).sum(),
        failures: requests.iter().map(|r| r.failures).sum(),
        failures_429: requests.iter().map(|r| r.failures_429).sum(),
        requests_per_sec: requests.iter().map(|r| r.requests_per_sec).sum(),
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
    }
}

/// The `_stats.csv` columns the check needs.
const NEEDED_COLUMNS: [&str; 7] = [
    "Name",
    "Request Count",
    "Failure Count",
    "Requests/s",
    "50%",
    "95%",
    "99%",
];

/// What is wrong with a CSV file given to `harness check`.
#[derive(Debug, thiserror::Error)]
pub enum CsvProblem {
    /// The header line cannot be read.
    #[error("unreadable header: {0}")]
    Header(#[source] csv::Error),
    /// A required column is absent.
    #[error("missing column `{missing}` (header is `{header}`); pass a Locust `<prefix>_stats.csv` or a summary.json")]
    MissingColumn {
        /// The column required.
        missing: String,
        /// The header found.
        header: String,
    },
    /// A row cannot be read.
    #[error("malformed row: {0}")]
    Row(#[source] csv::Error),
    /// A cell does not hold what its column needs.
    #[error("line {line}: column `{column}` is {cell:?}, expected {expected}")]
    BadCell {
        /// Line in the file.
        line: u64,
        /// Column name.
        column: String,
        /// The cell's text.
        cell: String,
        /// What the column holds, e.g. "a whole number".
        expected: &'static str,
    },
    /// The Locust aggregate row is missing.
    #[error("no `Aggregated` row (an interrupted write, or not a Locust _stats.csv?)")]
    NoAggregatedRow,
}

fn read_locust(path: &Path, text: &str) -> Result<Input, CheckError> {
    let csv_error = |problem: CsvProblem| CheckError::Csv {
        path: path.to_owned(),
        problem,
    };
    let table = Table::parse(text, &NEEDED_COLUMNS).map_err(csv_error)?;
    let mut overall = None;
    let mut per_request: BTreeMap<String, Measured> = BTreeMap::new();
    for row in table.rows() {
        let measured = measured_of_row(&row).map_err(csv_error)?;
        // Locust's aggregate row has an empty `Type`; a request that happens to be named "Aggregated" does not.
        if row.get("Name") == crate::run::AGGREGATED_NAME && row.get("Type").is_empty() {
            overall = Some(measured);
        } else {
            add_measured(
                per_request
                    .entry(row.get("Name").to_owned())
                    .or_insert_with(empty_measured),
                &measured,
            );
        }
    }
    let overall = overall.ok_or_else(|| csv_error(CsvProblem::NoAggregatedRow))?;
    let mut input = Input {
        format: InputFormat::LocustStatsCsv,
        failures_csv: None,
        notes: Vec::new(),
        overall,
        per_request,
    };
    apply_sibling_failures(path, &mut input)?;
    Ok(input)
}

fn empty_measured() -> Measured {
    Measured {
        requests: 0,
        failures: 0,
        failures_429: 0,
        requests_per_sec: 0.0,
        p50_ms: None,
        p95_ms: None,
        p99_ms: None,
    }
}

/// Several rows with one name (different methods): counts add; percentiles keep the worst, since bucketed
/// Locust percentiles cannot be merged exactly.
fn add_measured(into: &mut Measured, row: &Measured) {
    let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    into.requests += row.requests;
    into.failures += row.failures;
    into.requests_per_sec += row.requests_per_sec;
    into.p50_ms = worst(into.p50_ms, row.p50_ms);
    into.p95_ms = worst(into.p95_ms, row.p95_ms);
    into.p99_ms = worst(into.p99_ms, row.p99_ms);
}

fn measured_of_row(row: &Row<'_>) -> Result<Measured, CsvProblem> {
    Ok(Measured {
        requests: row.number("Request Count")?,
        failures: row.number("Failure Count")?,
        failures_429: 0,
        requests_per_sec: row.float("Requests/s")?,
        p50_ms: row.optional_float("50%")?,
        p95_ms: row.optional_float("95%")?,
        p99_ms: row.optional_float("99%")?,
    })
}

/// Takes 429 failures out using `<prefix>_failures.csv`, or notes that it could not.
fn apply_sibling_failures(stats_path: &Path, input: &mut Input) -> Result<(), CheckError> {
    let Some(failures_path) = sibling_failures_csv(stats_path) else {
        input.notes.push(format!(
            "no _failures.csv next to {}: 429 failures cannot be told apart and count as errors",
            stats_path.display()
        ));
        return Ok(());
    };
    let text = std::fs::read_to_string(&failures_path).map_err(|source| CheckError::Io {
        path: failures_path.clone(),
        source,
    })?;
    let csv_error = |problem: CsvProblem| CheckError::Csv {
        path: failures_path.clone(),
        problem,
    };
    let table = Table::parse(&text, &["Name", "Error", "Occurrences"]).map_err(csv_error)?;
    let mut total_429 = 0;
    for row in table.rows().filter(|row| is_429_error(row.get("Error"))) {
        let occurrences: u64 = row.number("Occurrences").map_err(csv_error)?;
        total_429 += occurrences;
        if let Some(measured) = input.per_request.get_mut(row.get("Name")) {
            measured.failures_429 += occurrences;
        }
    }
    input.overall.failures_429 += total_429;
    input.failures_csv = Some(failures_path);
    Ok(())
}

/// `<prefix>_failures.csv` for `<prefix>_stats.csv`, if it exists.
pub fn sibling_failures_csv(stats_path: &Path) -> Option<PathBuf> {
    let file_name = stats_path.file_name()?.to_str()?;
    let prefix = file_name.strip_suffix("_stats.csv")?;
    let sibling = stats_path.with_file_name(format!("{prefix}_failures.csv"));
    sibling.is_file().then_some(sibling)
}

/// Whether a `_failures.csv` `Error` cell describes a 429 response: a standalone `429` in a message that speaks of
/// a status (`LocustBadStatusCode(code=429)`, `HTTPError('429 Client Error: Too Many Requests ...')`,
/// `unexpected status 429`, `HTTP 429`) — but not e.g. `timed out after 429 ms`.
pub fn is_429_error(error: &str) -> bool {
    let lower = error.to_ascii_lowercase();
    let standalone_429 = lower.match_indices("429").any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + 3..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    });
    let speaks_of_status = [
        "code",
        "status",
        "http",
        "too many requests",
        "client error",
    ]
    .iter()
    .any(|word| lower.contains(word));
    standalone_429 && speaks_of_status
}

/// A parsed CSV: header positions plus records.
struct Table {
    columns: BTreeMap<String, usize>,
    records: Vec<csv::StringRecord>,
}

impl Table {
    /// Parses a CSV with a header, requiring `needed` columns (by name, in any order).
    fn parse(text: &str, needed: &[&str]) -> Result<Self, CsvProblem> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(CsvProblem::Header)?.clone();
        let columns: BTreeMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_owned(), i))
            .collect();
        if let Some(missing) = needed.iter().find(|name| !columns.contains_key(**name)) {
            return Err(CsvProblem::MissingColumn {
                missing: missing.to_string(),
                header: header.iter().collect::<Vec<_>>().join(","),
            });
        }
        let records = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(CsvProblem::Row)?;
        Ok(Self { columns, records })
    }

    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.records.iter().map(|record| Row {
            columns: &self.columns,
            record,
        })
    }
}

/// A CSV data row with cells looked up by column name.
struct Row<'a> {
    columns: &'a BTreeMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, column: &str) -> &str {
        self.columns
            .get(column)
            .and_then(|&i| self.record.get(i))
            .unwrap_or("")
    }

    fn number(&self, column: &str) -> Result<u64, CsvProblem> {
        let cell = self.get(column);
        cell.trim()
            .parse()
            .map_err(|_| self.bad_cell(column, cell, "a whole number"))
    }

    fn float(&self, column: &str) -> Result<f64, CsvProblem> {
        let cell = self.get(column);
        cell.trim()
            .parse()
            .map_err(|_| self.bad_cell(column, cell, "a number"))
    }

    /// `N/A` or empty means "no data".
    fn optional_float(&self, column: &str) -> Result<Option<f64>, CsvProblem> {
        match self.get(column).trim() {
            "N/A" | "" => Ok(None),
            _ => self.float(column).map(Some),
        }
    }

    fn bad_cell(&self, column: &str, cell: &str, expected: &'static str) -> CsvProblem {
        CsvProblem::BadCell {
            line: self.record.position().map_or(0, |p| p.line()),
            column: column.to_string(),
            cell: cell.to_string(),
            expected,
        }
    }
}

impl fmt::Display for CheckReport {
    /// The table `harness check` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.format {
            InputFormat::LocustStatsCsv => "Locust _stats.csv",
            InputFormat::SummaryJson => "summary.json",
        };
        writeln!(f, "check of {} ({source})", self.path.display())?;
        if let Some(failures) = &self.failures_csv {
            writeln!(f, "429s identified from {}", failures.display())?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        let rows: Vec<[String; 5]> = self.results.iter().map(table_row).collect();
        let header = ["RESULT", "SCOPE", "METRIC", "MEASURED", "LIMIT"].map(str::to_owned);
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .chain([&header])
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in [&header].into_iter().chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())?;
        }
        let failed = self.results.iter().filter(|r| !r.passed).count();
        match (self.results.len(), failed) {
            (0, _) => writeln!(f, "PASSED: no thresholds were set"),
            (total, 0) => writeln!(f, "PASSED: all {total} thresholds held"),
            (total, failed) => {
                writeln!(f, "FAILED: {failed} of {total} thresholds failed")?;
                for result in self.results.iter().filter(|r| !r.passed) {
                    writeln!(f, "  {}: {}", result.scope, result.detail)?;
                }
                Ok(())
            }
        }
    }
}

fn table_row(result: &ThresholdResult) -> [String; 5] {
    let relation = match result.metric {
        crate::thresholds::Metric::MinRps | crate::thresholds::Metric::Requests => ">=",
        _ => "<=",
    };
    let measured = result.measured.map_or_else(
        || "N/A".to_owned(),
        |v| format!("{} {}", short(v), result.unit),
    );
    [
        if result.passed { "PASS" } else { "FAIL" }.to_owned(),
        result.scope.clone(),
        result.metric.to_string(),
        measured,
        format!("{relation} {} {}", short(result.limit), result.unit),
    ]
}

/// Two decimals at most, no trailing zeros.
fn short(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_429_messages_of_locust_and_harness() {
        for (error, is_429) in [
            ("LocustBadStatusCode(code=429)", true),
            (
                "HTTPError('429 Client Error: Too Many Requests for url: /limited')",
                true,
            ),
            ("CatchResponseError('Got status code 429')", true),
            ("unexpected status 429", true),
            ("HTTP 429", true),
            (
                "HTTPError('404 Client Error: Not Found for url: /missing')",
                false,
            ),
            ("LocustBadStatusCode(code=4290)", false),
            ("timeout: timed out after 429 ms", false),
            ("unexpected status 503", false),
        ] {
            assert_eq!(is_429_error(error), is_429, "{error}");
        }
    }

    #[test]
    fn table_lists_every_result_and_the_verdict() {
        let report = CheckReport {
            path: PathBuf::from("r_stats.csv"),
            format: InputFormat::LocustStatsCsv,
            failures_csv: None,
            notes: vec!["a note".into()],
            overall: empty_measured(),
            results: evaluate(
                &Thresholds::users_targets(),
                &Measured {
                    requests: 100,
                    p95_ms: None,
                    ..empty_measured()
                },
                &BTreeMap::new(),
            ),
        };
        let table = report.to_string();
        assert!(table.contains("note: a note"), "{table}");
        assert!(table.contains("N/A"), "{table}");
        let words = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        assert!(
            table.lines().any(|l| words(l) == "FAIL Aggregated req/s"),
            "{table}"
        );
        assert!(
            table.contains("FAILED: 4 of 5 thresholds failed"),
            "{table}"
        );
        assert!(
            table
                .trim_end()
                .ends_with("p99 has no data (N/A), limit 200 ms"),
            "{table}"
        );
    }
}
