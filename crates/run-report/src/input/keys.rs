//! Per-key distribution and fairness, from the mock upstream's ledger.
//!
//! Sources:
//! - the ledger: `engine.ledger` in `summary.json` (the engine may embed it), else `ledger.json` in the results
//!   directory (the body of `GET /__admin/ledger`): requests, 429s, Retry-After violations and faults per key;
//! - the behaviour report's key distribution (`behaviour.measurements.distribution`, see [`super::behaviour`]):
//!   which keys are eligible for fairness and the fairness the run was judged on. When present it decides the
//!   key list, eligibility and the index; the ledger then only adds its per-key counters.
//!
//! Only the fields read here are required, so both formats can grow. Fairness is Jain's index over the eligible
//! keys' request counts: 1.0 when every key carried the same share, 1/n when one key carried everything. Pooled
//! ledger buckets (`_any`, `_unknown`) and keys the behaviour report marks ineligible are shown, not judged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use serde_json::Value;

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
    /// Requests sent inside an announced retry window, at least the mock's grace after it opened.
    pub retry_after_violations: u64,
    /// Requests that arrived inside a retry window within the grace (already on the wire when the 429 was sent).
    pub retry_after_races: u64,
    /// In-window arrivals by depth into the window (the mock's buckets: up to 250 ms, 500 ms, 1 s, 2 s, 5 s, more);
    /// empty when the ledger has none.
    pub retry_window_depths: Vec<u64>,
    /// Faults injected on this key.
    pub faults: u64,
    /// Not judged for fairness (pooled ledger bucket, or ineligible in the behaviour report).
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
struct Distribution {
    keys: Vec<DistributionKey>,
    #[serde(default)]
    fairness: Option<f64>,
}

#[derive(Deserialize)]
struct DistributionKey {
    key: String,
    requests: u64,
    #[serde(default = "yes")]
    eligible: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
struct LedgerKey {
    total_requests: u64,
    #[serde(default)]
    rate_limited: u64,
    #[serde(default)]
    retry_after_violations: u64,
    #[serde(default)]
    retry_after_races: u64,
    #[serde(default)]
    retry_window_depths: DepthCounts,
    #[serde(default)]
    faults: BTreeMap<String, u64>,
}

#[derive(Deserialize, Default)]
struct DepthCounts {
    #[serde(default)]
    counts: Vec<u64>,
}

/// The key distribution of a run, if a ledger or a behaviour report has one. `summary` is the raw
/// `summary.json` (read from `summary_path`, named in errors).
pub fn find(
    summary: &Value,
    summary_path: &Path,
    ledger_file: &Path,
) -> Result<Option<KeyFairness>, ReportError> {
    let ledger = read_ledger(summary, summary_path, ledger_file)?;
    let distribution = super::behaviour::report_of(summary)
        .and_then(|b| b.pointer("/measurements/distribution"))
        .filter(|d| !d.is_null())
        .map(|d| serde_json::from_value::<Distribution>(d.clone()))
        .transpose()
        .map_err(|e| {
            ReportError::invalid(
                summary_path,
                format!("behaviour.measurements.distribution: {e}"),
            )
        })?;
    Ok(match (distribution, ledger) {
        (Some(d), ledger) => Some(from_distribution(
            d,
            ledger.map(|l| l.keys).unwrap_or_default(),
        )),
        (None, Some(ledger)) => Some(fairness(ledger)),
        (None, None) => None,
    })
}

fn read_ledger(
    summary: &Value,
    summary_path: &Path,
    ledger_file: &Path,
) -> Result<Option<Ledger>, ReportError> {
    if let Some(embedded) = summary.pointer("/engine/ledger").filter(|v| !v.is_null()) {
        let ledger = serde_json::from_value(embedded.clone())
            .map_err(|e| ReportError::invalid(summary_path, format!("engine.ledger: {e}")))?;
        return Ok(Some(ledger));
    }
    if !ledger_file.exists() {
        return Ok(None);
    }
    let text = ReportError::read_to_string(ledger_file)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReportError::invalid(ledger_file, e.to_string()))
}

fn from_distribution(
    distribution: Distribution,
    mut ledger: BTreeMap<String, LedgerKey>,
) -> KeyFairness {
    let total: u64 = distribution.keys.iter().map(|k| k.requests).sum();
    let keys: Vec<KeyShare> = distribution
        .keys
        .into_iter()
        .map(|k| {
            let counters = ledger.remove(&k.key).unwrap_or_default();
            KeyShare {
                share_percent: percent_of(k.requests, total),
                requests: k.requests,
                rate_limited: counters.rate_limited,
                retry_after_violations: counters.retry_after_violations,
                retry_after_races: counters.retry_after_races,
                retry_window_depths: counters.retry_window_depths.counts,
                faults: counters.faults.values().sum(),
                pooled: !k.eligible,
                key: k.key,
            }
        })
        .collect();
    let eligible: Vec<f64> = keys
        .iter()
        .filter(|k| !k.pooled)
        .map(|k| k.requests as f64)
        .collect();
    KeyFairness {
        jain_index: distribution.fairness.or_else(|| jain_index(&eligible)),
        max_min_ratio: max_min_ratio(&eligible),
        keys,
    }
}

fn percent_of(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
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
            retry_after_races: k.retry_after_races,
            retry_window_depths: k.retry_window_depths.counts,
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
            "k1":{"total_requests":60,"rate_limited":3,"faults":{"rate_limit":3},"requests":{},
                  "retry_after_races":4,"retry_window_depths":{"counts":[4,0,0,1,0,0]}},
            "k2":{"total_requests":30},
            "_any":{"total_requests":10}}}"#;
        let ledger: Ledger = serde_json::from_str(json).unwrap();
        let f = fairness(ledger);
        assert_eq!(f.keys.len(), 3);
        assert_eq!(f.keys[0].key, "_any");
        assert!(f.keys[0].pooled);
        assert_eq!(f.keys[1].share_percent, 60.0);
        assert_eq!(f.keys[1].faults, 3);
        assert_eq!(
            (
                f.keys[1].retry_after_races,
                f.keys[1].retry_window_depths.as_slice()
            ),
            (4, [4, 0, 0, 1, 0, 0].as_slice())
        );
        assert!(
            f.keys[2].retry_window_depths.is_empty(),
            "older ledgers have none"
        );
        assert_eq!(f.max_min_ratio, Some(2.0));
        assert!((f.jain_index.unwrap() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn behaviour_distribution_decides_eligibility_and_ledger_adds_counters() {
        let summary = serde_json::json!({"behaviour": {"measurements": {"distribution": {"total_requests": 100, "fairness": 0.8,
            "keys": [{"key": "k1", "requests": 70, "share": 0.7, "eligible": true},
                     {"key": "k2", "requests": 30, "share": 0.3, "eligible": true},
                     {"key": "k3", "requests": 0, "share": 0.0, "eligible": false}]}}},
            "engine": {"ledger": {"keys": {"k2": {"total_requests": 30, "rate_limited": 4}}}}});
        let f = find(
            &summary,
            Path::new("summary.json"),
            Path::new("/nonexistent/ledger.json"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            f.jain_index,
            Some(0.8),
            "the judged index is shown, not recomputed"
        );
        assert_eq!(
            f.keys
                .iter()
                .map(|k| (k.key.as_str(), k.pooled, k.rate_limited))
                .collect::<Vec<_>>(),
            [("k1", false, 0), ("k2", false, 4), ("k3", true, 0)]
        );
        assert!((f.max_min_ratio.unwrap() - 70.0 / 30.0).abs() < 1e-9);
        let broken = serde_json::json!({"engine": {"ledger": {"keys": 3}}});
        let err = find(&broken, Path::new("summary.json"), Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("summary.json: engine.ledger"), "{err}");
    }
}
