//! Top-level harness errors, each mapped to an exit code.

use crate::exit::Exit;

/// Why a harness command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Bad scenario, config or command line.
    #[error("{0}")]
    BadInput(String),
    /// The system under test did not start or never became ready.
    #[error("system under test failed to start: {0}")]
    SutStart(String),
    /// Results could not be written, or another environment failure.
    #[error("{0}")]
    Environment(String),
}

impl HarnessError {
    /// Exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            HarnessError::BadInput(_) => Exit::BadInput,
            HarnessError::SutStart(_) => Exit::SutStartFailed,
            HarnessError::Environment(_) => Exit::Invalid,
        }
    }

    /// Wraps an I/O failure while writing to `path`.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> HarnessError {
        HarnessError::Environment(format!("{}: {e}", path.display()))
    }
}

impl From<crate::scenario::ScenarioError> for HarnessError {
    fn from(e: crate::scenario::ScenarioError) -> Self {
        HarnessError::BadInput(e.to_string())
    }
}
