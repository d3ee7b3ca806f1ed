//! Reading a results directory into a [`ReportInput`].
//!
//! Only `summary.json` is required; the history CSV, `resources.csv`, `timeline.csv` and `ledger.json` are
//! optional (older runs, runs without a monitor or a fault timeline, `--csv` elsewhere). An absent optional file
//! becomes a note shown in the report; a present but broken one is an error naming the file and the problem,
//! because silently dropping data a person relies on at 3 a.m. is worse than refusing.

pub mod behaviour;
pub mod history;
pub mod keys;
pub mod timeline;

use std::path::{Path, PathBuf};

use load_stats::summary::Summary;
use sut_monitor::monitor::Sample;

use crate::error::ReportError;
pub use behaviour::BehaviourVerdict;
pub use history::HistoryPoint;
pub use keys::{KeyFairness, KeyShare};
pub use timeline::FaultWindow;

/// File name of the run summary inside a results directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of the proxy resource samples (written by `sut-monitor`).
pub const RESOURCES_FILE: &str = "resources.csv";
/// File name of the fault windows (see [`timeline`]).
pub const TIMELINE_FILE: &str = "timeline.csv";
/// File name of the mock upstream's ledger (`GET /__admin/ledger` body).
pub const LEDGER_FILE: &str = "ledger.json";
/// Suffix of the Locust interval history file (`<prefix>_stats_history.csv`).
pub const HISTORY_SUFFIX: &str = "_stats_history.csv";
/// The history file looked for first (the harness's default prefix).
pub const DEFAULT_HISTORY_FILE: &str = "results_stats_history.csv";

/// Everything a report is drawn from. Times are seconds since the run's start (`summary.started_at`).
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The run summary.
    pub summary: Summary,
    /// Unix seconds of the run start (from `summary.started_at`, else the first history row).
    pub started_unix: f64,
    /// Aggregated rows of the interval history, in time order (empty when the file is absent).
    pub history: Vec<HistoryPoint>,
    /// Resource samples of the proxy (empty when `resources.csv` is absent).
    pub resources: Vec<Sample>,
    /// Fault windows (empty when `timeline.csv` is absent).
    pub timeline: Vec<FaultWindow>,
    /// Requests per upstream key with the fairness figures, when a ledger or a behaviour report has them.
    pub keys: Option<KeyFairness>,
    /// Proxy-behaviour verdicts (empty when the run has none).
    pub behaviour: Vec<BehaviourVerdict>,
    /// The summary as JSON, with fields the typed [`Summary`] does not know (yet).
    pub raw_summary: serde_json::Value,
    /// What was missing or approximated, one sentence each (shown in the report).
    pub notes: Vec<String>,
    /// The results directory read.
    pub dir: PathBuf,
}

impl ReportInput {
    /// Reads a results directory, or the directory of a given `summary.json` path.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let (dir, summary_path) = if path.is_dir() {
            (path.to_path_buf(), path.join(SUMMARY_FILE))
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (dir, path.to_path_buf())
        };
        let (summary, raw_summary) = load_summary_with_raw(&summary_path)?;
        let mut notes = Vec::new();
        let history = match find_history(&dir) {
            Some(file) => history::read(&file)?,
            None => {
                notes.push(format!(
                    "No *{HISTORY_SUFFIX} in {}: no charts over time of load and latency.",
                    dir.display()
                ));
                Vec::new()
            }
        };
        let resources = optional(
            &dir.join(RESOURCES_FILE),
            &mut notes,
            "no proxy resource charts",
            read_resources,
        )?;
        let timeline = optional(
            &dir.join(TIMELINE_FILE),
            &mut notes,
            "no fault windows shaded",
            timeline::read,
        )?;
        let keys = keys::find(&raw_summary, &summary_path, &dir.join(LEDGER_FILE))?;
        let behaviour = behaviour::verdicts(&raw_summary)
            .map_err(|e| ReportError::invalid(&summary_path, e))?;
        let started_unix = start_of(&summary, &history);
        Ok(Self {
            summary,
            started_unix,
            history,
            resources,
            timeline,
            keys,
            behaviour,
            raw_summary,
            notes,
            dir,
        })
    }

    /// Seconds since the run start of a resource sample.
    pub fn sample_secs(&self, sample: &Sample) -> f64 {
        sample.unix_ms as f64 / 1000.0 - self.started_unix
    }
}

/// Reads and parses a `summary.json`; the error names the file and the JSON line/column.
pub fn load_summary(path: &Path) -> Result<Summary, ReportError> {
    load_summary_with_raw(path).map(|(summary, _)| summary)
}

fn load_summary_with_raw(path: &Path) -> Result<(Summary, serde_json::Value), ReportError> {
    let text = ReportError::read_to_string(path)?;
    let invalid =
        |e: serde_json::Error| ReportError::invalid(path, format!("not a valid summary.json: {e}"));
    let summary = Summary::from_json(&text).map_err(invalid)?;
    let raw = serde_json::from_str(&text).map_err(invalid)?;
    Ok((summary, raw))
}

fn optional<T: Default>(
    path: &Path,
    notes: &mut Vec<String>,
    consequence: &str,
    read: fn(&Path) -> Result<T, ReportError>,
) -> Result<T, ReportError> {
    if path.exists() {
        read(path)
    } else {
        notes.push(format!("{} is absent: {consequence}.", path.display()));
        Ok(T::default())
    }
}

fn read_resources(path: &Path) -> Result<Vec<Sample>, ReportError> {
    sut_monitor::resources_csv::read_samples(path)
        .map_err(|e| ReportError::invalid(path, e.to_string()))
}

/// `results_stats_history.csv` if present, else the only (or first by name) `*_stats_history.csv`.
fn find_history(dir: &Path) -> Option<PathBuf> {
    let default = dir.join(DEFAULT_HISTORY_FILE);
    if default.is_file() {
        return Some(default);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(HISTORY_SUFFIX))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

fn start_of(summary: &Summary, history: &[HistoryPoint]) -> f64 {
    let parsed = time::OffsetDateTime::parse(
        &summary.started_at,
        &time::format_description::well_known::Rfc3339,
    );
    match parsed {
        Ok(at) => at.unix_timestamp_nanos() as f64 / 1e9,
        Err(_) => history.first().map_or(0.0, |h| h.timestamp as f64 - 1.0),
    }
}
