//! Scenario files: TOML → a validated [`Scenario`].
//!
//! A scenario is the whole description of one run: the load model, the weighted request mix, thresholds and,
//! optionally, the mock upstream's configuration and how to start the proxy under test. Parsing happens in two
//! steps so that every mistake is reported against the user's file: serde (with `deny_unknown_fields`) rejects
//! unknown or mistyped fields and toml's byte spans become `file:line:col`; then `validate` checks what types
//! cannot express (weights, ranges, expected statuses) and names the field path and the line of its table.

mod error;
mod load;
mod spec;
mod validate;

pub use error::{line_col, ScenarioError};
pub use spec::{
    BodySpec, ClosedLoad, ClosedStage, GeneratorLimits, LoadSpec, MonitorSourceKind,
    MonitorSourceOverride, MonitorSpec, OpenLoad, OpenStage, ProxySpec, RequestSpec, Scenario,
    SetupCall, ThinkTime, TimelineEvent, DEFAULT_MAX_IN_FLIGHT, DEFAULT_SPAWN_RATE,
    DEFAULT_TIMEOUT,
};

use std::path::Path;

impl Scenario {
    /// `[load.generator]`: when the harness itself counts as overloaded (defaults when absent).
    pub fn generator_limits(&self) -> GeneratorLimits {
        self.load_file.get_ref().generator
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: path.display().to_string(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Scenario::from_str_at(&text, &path.display().to_string(), base_dir)
    }

    /// Parses and validates scenario text; `origin` names it in errors and `base_dir` resolves `body_file`.
    pub fn from_str_at(
        text: &str,
        origin: &str,
        base_dir: &Path,
    ) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::from_toml(origin, text, &e))?;
        scenario.origin = origin.to_string();
        validate::validate(&mut scenario, text, base_dir)?;
        Ok(scenario)
    }
}

#[cfg(test)]
mod tests;
