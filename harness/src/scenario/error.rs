//! Scenario errors that always point into the user's file.

use std::ops::Range;

/// Why a scenario file was rejected. Every variant names the file; parse and validation errors also name the
/// line (and column) and the field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file (a scenario or a proxy profile) could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// Scenario file.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type / unknown field.
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        /// Scenario file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// toml/serde message (names the field).
        message: String,
    },
    /// A semantically invalid value.
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        /// Scenario file.
        file: String,
        /// 1-based line of the table or value holding the field.
        line: usize,
        /// Field path, e.g. `request[2].weight`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ScenarioError {
    /// Converts a toml error (which carries a byte span) into a `file:line:col` error.
    pub(crate) fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> ScenarioError {
        let (line, col) = err
            .span()
            .map(|s| line_col(text, s.start))
            .unwrap_or((1, 1));
        ScenarioError::Parse {
            file: file.to_string(),
            line,
            col,
            message: err.message().trim().to_string(),
        }
    }

    /// A validation error at the start of `span`.
    pub(crate) fn invalid(
        file: &str,
        text: &str,
        span: Range<usize>,
        field: String,
        message: String,
    ) -> Self {
        ScenarioError::Invalid {
            file: file.to_string(),
            line: line_col(text, span.start).0,
            field,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn line_col_table() {
        let text = "a = 1\nbb = 2\n\nc = 3";
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (8, (2, 3)),
            (13, (3, 1)),
            (14, (4, 1)),
            (99, (4, 6)),
        ];
        for (offset, want) in cases {
            assert_eq!(line_col(text, offset), want, "offset {offset}");
        }
    }
}
