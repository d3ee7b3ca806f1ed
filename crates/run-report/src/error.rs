//! The one error type of the crate: every message names the file and what is wrong with it.

use std::path::PathBuf;

/// Why a report input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read (missing, permissions, ...).
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but its content is not what it should be.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line/column/field where known.
        problem: String,
    },
}

impl ReportError {
    /// An [`ReportError::Invalid`] for `path`.
    pub fn invalid(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// Reads a whole file as text, naming it on failure.
    pub(crate) fn read_to_string(path: &std::path::Path) -> Result<String, Self> {
        std::fs::read_to_string(path).map_err(|source| Self::Read {
            path: path.to_path_buf(),
            source,
        })
    }
}
