//! `timeline.csv`: the fault windows of a run, shaded on every time chart.
//!
//! Format (header required, one window per row, `\n` or `\r\n` line ends):
//! ```text
//! start_s,end_s,label
//! 30,60,k2 rate_limit 100%
//! 90,,upstream down (until the end)
//! ```
//! `start_s` / `end_s` are seconds since the run start (`summary.started_at`), decimals allowed; an empty
//! `end_s` means "until the end of the run". The engine writes it with [`write()`] as the timeline fires.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ReportError;

/// The header of `timeline.csv`.
pub const HEADER: [&str; 3] = ["start_s", "end_s", "label"];

/// One fault window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultWindow {
    /// Start, seconds since the run start.
    pub start_s: f64,
    /// End, seconds since the run start; `None` = until the end of the run.
    pub end_s: Option<f64>,
    /// What was injected (shown on the charts).
    pub label: String,
}

/// Reads `timeline.csv`; errors name the file and line.
pub fn read(path: &Path) -> Result<Vec<FaultWindow>, ReportError> {
    let text = ReportError::read_to_string(path)?;
    parse(&text).map_err(|problem| ReportError::invalid(path, problem))
}

/// Parses the CSV text and checks each window.
pub fn parse(text: &str) -> Result<Vec<FaultWindow>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| format!("bad header: {e}"))?;
    if headers.iter().collect::<Vec<_>>() != HEADER {
        return Err(format!("header must be `{}`", HEADER.join(",")));
    }
    let mut windows = Vec::new();
    for (row, record) in reader.deserialize::<FaultWindow>().enumerate() {
        let line = row + 2;
        let window = record.map_err(|e| format!("line {line}: {e}"))?;
        let valid_end = window
            .end_s
            .is_none_or(|end| end >= window.start_s && end.is_finite());
        if !window.start_s.is_finite() || !valid_end {
            return Err(format!("line {line}: end_s must be empty or >= start_s"));
        }
        windows.push(window);
    }
    Ok(windows)
}

/// Writes `timeline.csv` (header and rows).
pub fn write(out: impl Write, windows: &[FaultWindow]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;
    for w in windows {
        let end = w.end_s.map(|e| e.to_string()).unwrap_or_default();
        writer.write_record([w.start_s.to_string(), end, w.label.clone()])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_open_ended_windows() {
        let windows = vec![
            FaultWindow {
                start_s: 30.0,
                end_s: Some(60.5),
                label: "k2 rate_limit, 100%".into(),
            },
            FaultWindow {
                start_s: 90.0,
                end_s: None,
                label: "down".into(),
            },
        ];
        let mut bytes = Vec::new();
        write(&mut bytes, &windows).unwrap();
        assert_eq!(
            parse(std::str::from_utf8(&bytes).unwrap()).unwrap(),
            windows
        );
    }

    #[test]
    fn bad_rows_are_named() {
        for (text, expected) in [
            ("start,end,label\n", "header must be"),
            ("start_s,end_s,label\n10,5,x\n", "line 2: end_s must be"),
            ("start_s,end_s,label\nsoon,5,x\n", "line 2:"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
