//! `resources.csv`: one row per sample, flushed as it is written so a crash or Ctrl-C loses nothing.
//!
//! The columns are exactly the fields of [`Sample`] in declaration order (header row first), so the file can be
//! read back with [`read_samples`] to re-judge a run offline.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::monitor::{MonitorError, Sample};

/// An open `resources.csv` that appends and flushes one row per sample.
pub(crate) struct ResourcesCsv {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl ResourcesCsv {
    /// Creates (truncates) the file and its parent directory.
    pub fn create(path: &Path) -> Result<Self, MonitorError> {
        let io_error = |source| MonitorError::Csv {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        let file = File::create(path).map_err(io_error)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(file),
        })
    }

    /// Appends one row and flushes it to the OS.
    pub fn append(&mut self, sample: &Sample) -> Result<(), MonitorError> {
        let io_error = |source| MonitorError::Csv {
            path: self.path.clone(),
            source,
        };
        self.writer
            .serialize(sample)
            .map_err(|e| io_error(std::io::Error::other(e)))?;
        self.writer.flush().map_err(io_error)
    }
}

/// Reads the samples back from a `resources.csv` written by the monitor.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>, MonitorError> {
    let io_error = |source| MonitorError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| io_error(std::io::Error::other(e)))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| io_error(std::io::Error::other(format!("row {}: {e}", i + 2))))
        })
        .collect()
}

/// Writes samples as CSV to any writer (used for tests and for re-exporting a series).
pub fn write_samples(out: impl Write, samples: &[Sample]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for sample in samples {
        writer.serialize(sample)?;
    }
    writer.flush()?;
    Ok(())
}
