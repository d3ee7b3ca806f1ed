//! Prometheus HTTP API answers (`/api/v1/query`, an instant vector) → one value per replica.
//!
//! Each result series is assigned to the value of the replica label (`pod`, `instance`); several series of one
//! replica (containers of a pod) are combined by [`Gauge::combine`]. The answers of all gauges at one tick are
//! then merged into one [`RemoteReading`] per replica.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Gauge, RemoteReading};

/// Why an answer could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromQlError {
    /// Not the API's JSON.
    #[error("not a Prometheus API answer: {0}")]
    Unparsable(String),
    /// The server refused the query.
    #[error("Prometheus answered {kind}: {message} (query {query:?})")]
    Refused {
        /// `errorType`.
        kind: String,
        /// `error`.
        message: String,
        /// The query sent.
        query: String,
    },
    /// The query returned something other than an instant vector (a scalar, a matrix).
    #[error("query {query:?} returned a {result_type}, not an instant vector")]
    NotAVector {
        /// The query sent.
        query: String,
        /// `resultType`.
        result_type: String,
    },
    /// A series has no replica label, so it cannot be assigned to a replica.
    #[error("query {query:?} returned a series without the replica label {label:?} ({series}); add it to the query's `by (...)` or set replica_label")]
    NoReplicaLabel {
        /// The query sent.
        query: String,
        /// The replica label.
        label: String,
        /// The series' labels.
        series: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSeries {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// One tick's answers: each gauge's values per replica.
pub type GaugeAnswers = [(Gauge, BTreeMap<String, f64>)];

/// The values of one gauge's query, per replica-label value.
pub fn values_by_replica(
    body: &str,
    query: &str,
    replica_label: &str,
    gauge: Gauge,
) -> Result<BTreeMap<String, f64>, PromQlError> {
    let answer: Answer =
        serde_json::from_str(body).map_err(|e| PromQlError::Unparsable(e.to_string()))?;
    let data = match (answer.status.as_str(), answer.data) {
        ("success", Some(data)) => data,
        _ => {
            return Err(PromQlError::Refused {
                kind: answer.error_type,
                message: answer.error,
                query: query.into(),
            })
        }
    };
    if data.result_type != "vector" {
        return Err(PromQlError::NotAVector {
            query: query.into(),
            result_type: data.result_type,
        });
    }
    let series: Vec<VectorSeries> =
        serde_json::from_value(data.result).map_err(|e| PromQlError::Unparsable(e.to_string()))?;
    let mut values = BTreeMap::new();
    for s in series {
        let Some(replica) = s.metric.get(replica_label) else {
            return Err(PromQlError::NoReplicaLabel {
                query: query.into(),
                label: replica_label.into(),
                series: format!("{:?}", s.metric),
            });
        };
        let Some(value) = s.value.1.parse::<f64>().ok().filter(|v| v.is_finite()) else {
            continue;
        };
        values
            .entry(replica.clone())
            .and_modify(|v: &mut f64| *v = gauge.combine(*v, value))
            .or_insert(value);
    }
    Ok(values)
}

/// Merges the per-gauge answers of one tick into one reading per replica (a replica is any label value that any
/// query returned).
pub fn readings_by_replica(per_gauge: &GaugeAnswers) -> BTreeMap<String, RemoteReading> {
    let mut readings: BTreeMap<String, RemoteReading> = BTreeMap::new();
    for (gauge, values) in per_gauge {
        for (replica, value) in values {
            readings
                .entry(replica.clone())
                .or_default()
                .set(*gauge, Some(*value));
        }
    }
    readings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(series: &[(&str, &str)]) -> String {
        let result: Vec<String> = series
            .iter()
            .map(|(labels, value)| {
                format!(r#"{{"metric":{labels},"value":[1764950000.5,"{value}"]}}"#)
            })
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        )
    }

    #[test]
    fn answers_map_to_values_per_replica() {
        let two_pods = vector(&[
            (r#"{"pod":"proxy-a","job":"proxy"}"#, "100"),
            (r#"{"pod":"proxy-b","job":"proxy"}"#, "2e3"),
        ]);
        let two_containers = vector(&[
            (r#"{"pod":"p","container":"app"}"#, "100"),
            (r#"{"pod":"p","container":"sidecar"}"#, "50"),
        ]);
        let restarted = vector(&[
            (r#"{"pod":"p","c":"1"}"#, "10"),
            (r#"{"pod":"p","c":"2"}"#, "30"),
        ]);
        let stale = vector(&[(r#"{"pod":"p"}"#, "NaN")]);
        type Case<'a> = (&'a str, &'a String, Gauge, &'a [(&'a str, f64)]);
        let cases: [Case; 5] = [
            (
                "pods",
                &two_pods,
                Gauge::Rss,
                &[("proxy-a", 100.0), ("proxy-b", 2000.0)],
            ),
            ("containers", &two_containers, Gauge::Rss, &[("p", 150.0)]),
            ("start time", &restarted, Gauge::StartTime, &[("p", 30.0)]),
            ("NaN", &stale, Gauge::Rss, &[]),
            ("empty", &vector(&[]), Gauge::Rss, &[]),
        ];
        for (name, body, gauge, want) in cases {
            let got = values_by_replica(body, "q", "pod", gauge).expect(name);
            let want: BTreeMap<String, f64> =
                want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn unusable_answers_say_why() {
        let cases = [
            ("<html>", "not a Prometheus API answer"),
            (
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
                "Prometheus answered bad_data: parse error (query \"q\")",
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#,
                "returned a scalar, not an instant vector",
            ),
            (
                &vector(&[(r#"{"instance":"a:1"}"#, "1")]),
                "without the replica label \"pod\"",
            ),
        ];
        for (body, want) in cases {
            let err = values_by_replica(body, "q", "pod", Gauge::Rss).expect_err(body);
            assert!(err.to_string().contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn gauges_merge_into_one_reading_per_replica() {
        let rss: BTreeMap<String, f64> = [("a".to_string(), 1.0), ("b".to_string(), 2.0)].into();
        let fds: BTreeMap<String, f64> = [("a".to_string(), 7.0)].into();
        let got = readings_by_replica(&[(Gauge::Rss, rss), (Gauge::OpenFds, fds)]);
        assert_eq!(
            got["a"],
            RemoteReading::of(&[(Gauge::Rss, 1.0), (Gauge::OpenFds, 7.0)])
        );
        assert_eq!(got["b"], RemoteReading::of(&[(Gauge::Rss, 2.0)]));
    }
}
