//! Per-key distribution and fairness, from the mock upstream's ledger.
//!
//! Source, first found: `summary.engine.ledger` (the engine may embed it), else `ledger.json` in the results
//! directory (the body of `GET /__admin/ledger`). Only the fields read here are required of each key; the rest
//! of the ledger is ignored so its format can grow.
//!
//! Fairness is Jain's index over the configured keys' request counts: 1.0 when every key carried the same
//! share, 1/n when one key carried everything. Pooled buckets (`_any`, `_unknown`) are shown but not judged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use load_stats::summary::Summary;

use crate::error::ReportError;

/// One key's share of the traffic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyShare {
    /// Key id.
    pub key: String,
    /// Requests the upstream saw with this key.
    pub requests: u64,
    /// Percent of all requests.
    pub share_percent: f64,
    /// 429 responses served to this key.
    pub rate_limited: u64,
    /// Requests sent before an announced Retry-After had passed.
    pub retry_after_violations: u64,
    /// Faults injected on this key.
    pub faults: u64,
    /// Pooled bucket (not a configured key).
    pub pooled: bool,
}

/// The distribution over keys and its fairness.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyFairness {
    /// Every key, by id.
    pub keys: Vec<KeyShare>,
    /// Jain's fairness index over configured keys (`None` with fewer than two).
    pub jain_index: Option<f64>,
    /// Busiest over least busy configured key (`None` when one carried nothing or fewer than two keys).
    pub max_min_ratio: Option<f64>,
}

#[derive(Deserialize)]
struct Ledger {
    keys: BTreeMap<String, LedgerKey>,
}

#[derive(Deserialize)]
struct LedgerKey {
    total_requests: u64,
    #[serde(default)]
    rate_limited: u64,
    #[serde(default)]
    retry_after_violations: u64,
    #[serde(default)]
    faults: BTreeMap<String, u64>,
}

/// The key distribution of a run, if a ledger is available.
pub fn find(summary: &Summary, ledger_file: &Path) -> Result<Option<KeyFairness>, ReportError> {
    if let Some(embedded) = summary.engine.get("ledger").filter(|v| !v.is_null()) {
        let ledger: Ledger = serde_json::from_value(embedded.clone())
            .map_err(|e| ReportError::invalid("summary.json", format!("engine.ledger: {e}")))?;
        return Ok(Some(fairness(ledger)));
    }
    if !ledger_file.exists() {
        return Ok(None);
    }
    let text = ReportError::read_to_string(ledger_file)?;
    let ledger: Ledger = serde_json::from_str(&text)
        .map_err(|e| ReportError::invalid(ledger_file, e.to_string()))?;
    Ok(Some(fairness(ledger)))
}

fn fairness(ledger: Ledger) -> KeyFairness {
    let total: u64 = ledger.keys.values().map(|k| k.total_requests).sum();
    let keys: Vec<KeyShare> = ledger
        .keys
        .into_iter()
        .map(|(key, k)| KeyShare {
            pooled: key.starts_with('_'),
            share_percent: if total == 0 {
                0.0
            } else {
                100.0 * k.total_requests as f64 / total as f64
            },
            requests: k.total_requests,
            rate_limited: k.rate_limited,
            retry_after_violations: k.retry_after_violations,
            faults: k.faults.values().sum(),
            key,
        })
        .collect();
    let counts: Vec<f64> = keys
        .iter()
        .filter(|k| !k.pooled)
        .map(|k| k.requests as f64)
        .collect();
    KeyFairness {
        jain_index: jain_index(&counts),
        max_min_ratio: max_min_ratio(&counts),
        keys,
    }
}

/// Jain's fairness index `(Σx)² / (n·Σx²)`; `None` for fewer than two values or no traffic.
pub fn jain_index(values: &[f64]) -> Option<f64> {
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    (values.len() >= 2 && squares > 0.0).then(|| sum * sum / (values.len() as f64 * squares))
}

fn max_min_ratio(values: &[f64]) -> Option<f64> {
    let max = values.iter().copied().fold(f64::NAN, f64::max);
    let min = values.iter().copied().fold(f64::NAN, f64::min);
    (values.len() >= 2 && min > 0.0).then(|| max / min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_table() {
        for (values, expected) in [
            (vec![10.0, 10.0, 10.0], Some(1.0)),
            (vec![30.0, 0.0, 0.0], Some(1.0 / 3.0)),
            (vec![5.0], None),
            (vec![0.0, 0.0], None),
        ] {
            let got = jain_index(&values);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{values:?}: {g}"),
                _ => assert_eq!(got, expected, "{values:?}"),
            }
        }
    }

    #[test]
    fn ledger_shape_is_read_and_pooled_keys_not_judged() {
        let json = r#"{"uptime_ms":5,"totals":{},"keys":{
            "k1":{"total_requests":60,"rate_limited":3,"faults":{"rate_limit":3},"requests":{}},
            "k2":{"total_requests":30},
            "_any":{"total_requests":10}}}"#;
        let ledger: Ledger = serde_json::from_str(json).unwrap();
        let f = fairness(ledger);
        assert_eq!(f.keys.len(), 3);
        assert_eq!(f.keys[0].key, "_any");
        assert!(f.keys[0].pooled);
        assert_eq!(f.keys[1].share_percent, 60.0);
        assert_eq!(f.keys[1].faults, 3);
        assert_eq!(f.max_min_ratio, Some(2.0));
        assert!((f.jain_index.unwrap() - 0.9).abs() < 1e-9);
    }
}
