//! Proxy-behaviour verdicts (crate `proxy-behaviour`: fairness, `X-Key-Used` agreement, Retry-After compliance,
//! failover masking, recovery, stream pass-through) as the harness puts them into `summary.json`.
//!
//! Looked up leniently, first found: top-level `behaviour`, then `engine.behaviour` — each a
//! `proxy_behaviour::BehaviourReport` (`{"measurements": {...}, "verdicts": [...]}`). Only the verdict fields
//! shown here are read, so the report does not depend on the measurement layout.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One behaviour verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourVerdict {
    /// Which behaviour (`fairness`, `retry_after`, `failover_masking`, ...).
    pub check: String,
    /// The fault window or recovery label for per-window checks.
    #[serde(default)]
    pub subject: Option<String>,
    /// Measured value in `unit` (`None` when skipped).
    #[serde(default)]
    pub measured: Option<f64>,
    /// The limit in `unit`.
    pub limit: f64,
    /// `ratio`, `count` or `ms`.
    #[serde(default)]
    pub unit: String,
    /// `pass`, `fail`, `skipped` or `inconclusive`.
    pub outcome: String,
    /// One line for people.
    #[serde(default)]
    pub detail: String,
}

/// The behaviour report object inside a summary document, if any.
pub fn report_of(summary: &Value) -> Option<&Value> {
    ["/behaviour", "/engine/behaviour"]
        .into_iter()
        .find_map(|p| summary.pointer(p).filter(|v| !v.is_null()))
}

/// The verdicts in a summary document (empty when there are none); `Err` names the JSON problem.
pub fn verdicts(summary: &Value) -> Result<Vec<BehaviourVerdict>, String> {
    let Some(report) = report_of(summary) else {
        return Ok(Vec::new());
    };
    let Some(list) = report.get("verdicts") else {
        return Ok(Vec::new());
    };
    serde_json::from_value(list.clone()).map_err(|e| format!("behaviour.verdicts: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn found_at_top_level_or_under_engine() {
        let verdict = json!({"check": "fairness", "measured": 0.93, "limit": 0.9, "unit": "ratio", "outcome": "pass", "detail": "Jain 0.93 >= 0.9"});
        for doc in [
            json!({"behaviour": {"verdicts": [verdict.clone()]}}),
            json!({"engine": {"behaviour": {"verdicts": [verdict.clone()]}}}),
        ] {
            let v = verdicts(&doc).unwrap();
            assert_eq!(
                (v.len(), v[0].check.as_str(), v[0].subject.clone()),
                (1, "fairness", None)
            );
        }
        assert!(verdicts(&json!({"engine": null})).unwrap().is_empty());
        assert!(
            verdicts(&json!({"behaviour": {"verdicts": [{"check": 1}]}}))
                .unwrap_err()
                .starts_with("behaviour.verdicts")
        );
    }
}
