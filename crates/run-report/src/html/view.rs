//! The template's view model: every number already formatted with its unit, so the template only lays out.

use serde::Serialize;

use load_stats::drift::{LatencyDrift, WindowLatency};
use load_stats::percentiles::LOCUST_PERCENTILE_LABELS;
use load_stats::summary::{LatencySummary, RequestSummary, StreamSummary, Summary};
use load_stats::ErrorKind;
use sut_monitor::leak::{LeakReport, MetricReport};

use crate::format::{self, NOT_AVAILABLE};
use crate::input::{KeyFairness, ReportInput};
use crate::leak_judging::{LeakJudging, NOT_JUDGED};

/// CSS class of a verdict banner or badge.
pub fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "PASS" => "pass",
        "FAIL" | "LEAK" | "GROWTH" => "fail",
        "CRASHED" => "crashed",
        "INVALID" | "INCONCLUSIVE" => "warn",
        _ => "neutral",
    }
}

/// A figure at the top of the page.
#[derive(Debug, Serialize)]
pub struct Card {
    label: String,
    value: String,
}

/// One row of the thresholds table.
#[derive(Debug, Serialize)]
pub struct ThresholdRow {
    scope: String,
    metric: String,
    limit: String,
    measured: String,
    passed: bool,
    detail: String,
}

/// One row of the resource verdicts table.
#[derive(Debug, Serialize)]
pub struct MetricRow {
    metric: String,
    verdict: String,
    class: &'static str,
    slope: String,
    ci: String,
    limit: String,
    p_value: String,
    peak: String,
    peak_limit: String,
    drain: String,
    reason: String,
}

/// The resource (leak) verdict section.
#[derive(Debug, Serialize)]
pub struct ResourceVerdict {
    verdict: String,
    class: &'static str,
    /// [`crate::leak_judging::NOT_JUDGED`] when the verdicts did not count toward the exit code.
    not_judged: Option<&'static str>,
    reasons: Vec<String>,
    sampling: String,
    metrics: Vec<MetricRow>,
}

/// One row of the error table.
#[derive(Debug, Serialize)]
pub struct ErrorView {
    method: String,
    name: String,
    error: String,
    class: String,
    is_429: bool,
    message: String,
    occurrences: u64,
    seen: String,
}

/// Header and rows of a simple table.
#[derive(Debug, Serialize, Default)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Cards for the top of the page.
pub fn cards(input: &ReportInput) -> Vec<Card> {
    let a = &input.summary.aggregate;
    let p = a.latency.as_ref().map(|l| l.percentiles);
    let peak_rss = input.resources.iter().map(|s| s.rss_bytes).max();
    let card = |label: &str, value: String| Card {
        label: label.into(),
        value,
    };
    vec![
        card("Requests", a.requests.to_string()),
        card("Throughput", format::rate(Some(a.requests_per_sec))),
        card(
            "p50 / p95 / p99",
            format!(
                "{} / {} / {}",
                format::ms(p.map(|p| p.p50)),
                format::ms(p.map(|p| p.p95)),
                format::ms(p.map(|p| p.p99))
            ),
        ),
        card(
            "Errors excl. 429",
            format::percent(Some(a.error_percent_excluding_429)),
        ),
        card("429 responses", a.failures_429.to_string()),
        card(
            "Peak proxy RSS",
            peak_rss.map_or(NOT_AVAILABLE.into(), |b| format::bytes(b as f64)),
        ),
    ]
}

/// Every threshold result.
pub fn thresholds(summary: &Summary) -> Vec<ThresholdRow> {
    summary
        .thresholds
        .iter()
        .map(|t| ThresholdRow {
            scope: t.scope.clone(),
            metric: t.metric.to_string(),
            limit: format::with_unit(Some(t.limit), &t.unit),
            measured: format::with_unit(t.measured, &t.unit),
            passed: t.passed,
            detail: t.detail.clone(),
        })
        .collect()
}

/// The load generator's own health (`engine.generator`): late and dropped sends and the harness's CPU, each
/// against its limit — a run the harness could not deliver is INCONCLUSIVE, and this table says why.
pub fn generator(raw_summary: &serde_json::Value) -> Option<Table> {
    let g = raw_summary
        .pointer("/engine/generator")
        .filter(|v| v.is_object())?;
    let figure = |field: &str| g.get(field).and_then(serde_json::Value::as_f64);
    let limit = |field: &str| {
        g.pointer(&format!("/limits/{field}"))
            .and_then(serde_json::Value::as_f64)
    };
    let rows = [
        (
            "sends > 10 ms behind schedule",
            "late_percent",
            "max_late_percent",
        ),
        (
            "arrivals due but never sent",
            "dropped_percent",
            "max_dropped_percent",
        ),
        (
            "harness CPU, mean of its cores",
            "cpu_percent_of_cores",
            "max_cpu_percent",
        ),
    ]
    .into_iter()
    .map(|(what, measured, max)| {
        let (value, max) = (figure(measured), limit(max));
        let result = match (value, max) {
            (Some(v), Some(m)) if v > m => "OVERLOADED",
            (Some(_), Some(_)) => "ok",
            _ => "not measured",
        };
        vec![
            what.to_owned(),
            format::percent(value),
            format::percent(max),
            result.to_owned(),
        ]
    })
    .collect();
    Some(Table {
        columns: ["Generator check", "Measured", "Limit", "Result"]
            .map(str::to_owned)
            .to_vec(),
        rows,
    })
}

/// The latency drift table (`engine.latency_drift`: first vs last window of the load), when the run has one.
///
/// Read leniently from the raw summary: an older summary without the field, or a run stopped before its last
/// window, simply has no table.
pub fn latency_drift(raw_summary: &serde_json::Value) -> Option<Table> {
    let drift: LatencyDrift = raw_summary
        .pointer("/engine/latency_drift")
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())?;
    let window = |w: &WindowLatency| {
        format!(
            "{} – {} ({} requests)",
            format::duration_secs(w.start_s),
            format::duration_secs(w.end_s),
            w.requests
        )
    };
    let ratio = |r: Option<f64>| r.map_or_else(|| NOT_AVAILABLE.to_owned(), |r| format!("{r:.2}×"));
    let diff =
        |d: Option<f64>| d.map_or_else(|| NOT_AVAILABLE.to_owned(), |d| format!("{d:+.3} ms"));
    let (first, last) = (&drift.first, &drift.last);
    Some(Table {
        columns: [
            "Percentile",
            "First window",
            "Last window",
            "Last / first",
            "Change",
        ]
        .map(str::to_owned)
        .to_vec(),
        rows: vec![
            vec![
                "windows".to_owned(),
                window(first),
                window(last),
                String::new(),
                String::new(),
            ],
            vec![
                "p50".to_owned(),
                format::ms(first.p50_ms),
                format::ms(last.p50_ms),
                ratio(drift.p50_ratio),
                diff(drift.p50_diff_ms),
            ],
            vec![
                "p95".to_owned(),
                format::ms(first.p95_ms),
                format::ms(last.p95_ms),
                ratio(drift.p95_ratio),
                diff(drift.p95_diff_ms),
            ],
        ],
    })
}

/// One row of the proxy-behaviour table.
#[derive(Debug, Serialize)]
pub struct BehaviourRow {
    check: String,
    subject: String,
    measured: String,
    limit: String,
    outcome: String,
    class: &'static str,
    detail: String,
}

/// The behaviour verdicts with units (`ratio` and `count` shown as plain numbers).
pub fn behaviour(verdicts: &[crate::input::BehaviourVerdict]) -> Vec<BehaviourRow> {
    let unit = |u: &str| {
        if matches!(u, "ratio" | "count") {
            ""
        } else {
            u
        }
        .to_owned()
    };
    verdicts
        .iter()
        .map(|v| {
            let outcome = v.outcome.to_uppercase();
            BehaviourRow {
                check: v.check.replace('_', " "),
                subject: v.subject.clone().unwrap_or_default(),
                measured: format::with_unit(v.measured, &unit(&v.unit)),
                limit: format::with_unit(Some(v.limit), &unit(&v.unit)),
                class: match outcome.as_str() {
                    "PASS" => "pass",
                    "FAIL" => "fail",
                    "INCONCLUSIVE" => "warn",
                    _ => "neutral",
                },
                outcome,
                detail: v.detail.clone(),
            }
        })
        .collect()
}

/// The leak report section; with verdicts that did not count, every badge is neutral and says so.
pub fn resource_verdict(leak: &LeakReport, judging: LeakJudging) -> ResourceVerdict {
    let s = &leak.sampling;
    ResourceVerdict {
        verdict: leak.verdict.as_str().into(),
        class: judging.class(leak.verdict.as_str()),
        not_judged: (!judging.counts()).then_some(NOT_JUDGED),
        reasons: leak.reasons.clone(),
        sampling: format!(
            "{} samples every {} s; warm-up {}, steady {}, drain {}; largest gap {} s; monitor cost {} of a core.",
            s.samples,
            format::significant(s.interval_secs),
            format::duration_secs(s.warmup_secs),
            format::duration_secs(s.steady_secs),
            format::duration_secs(s.drain_secs),
            format::significant(s.max_gap_secs),
            format::percent(Some(s.monitor_cpu_percent)),
        ),
        metrics: leak
            .metrics
            .iter()
            .map(|m| metric_row(m, judging))
            .chain(leak.replicas.iter().flat_map(|replica| {
                replica.report.metrics.iter().map(move |m| MetricRow {
                    metric: format!("{} — replica {}", m.metric.name(), replica.replica),
                    ..metric_row(m, judging)
                })
            }))
            .collect(),
    }
}

/// The banner's line about a resource verdict that did not count, when it is not a PASS (a red LEAK would
/// otherwise be the only resource word near a green PASS).
pub fn banner_resource_note(leak: &LeakReport, judging: LeakJudging) -> Option<String> {
    let verdict = leak.verdict.as_str();
    (!judging.counts() && verdict != "PASS")
        .then(|| format!("Proxy resources: {}", judging.label(verdict)))
}

fn metric_row(m: &MetricReport, judging: LeakJudging) -> MetricRow {
    let memory = m.metric.is_memory();
    let amount = |v: f64| {
        if memory {
            format::bytes(v)
        } else {
            format::significant(v)
        }
    };
    let per_hour = |v: f64| format!("{}/h", amount(v));
    let n = m.trend.numbers.as_ref();
    MetricRow {
        metric: m.metric.name().into(),
        verdict: m.verdict.as_str().into(),
        class: judging.class(m.verdict.as_str()),
        slope: n.map_or(NOT_AVAILABLE.into(), |n| per_hour(n.slope_per_hour)),
        ci: n.map_or(NOT_AVAILABLE.into(), |n| {
            format!(
                "{} .. {}",
                per_hour(n.slope_ci_per_hour[0]),
                per_hour(n.slope_ci_per_hour[1])
            )
        }),
        limit: n.map_or(NOT_AVAILABLE.into(), |n| per_hour(n.limit_per_hour)),
        p_value: n.map_or(NOT_AVAILABLE.into(), |n| p_value(n.p_value)),
        peak: amount(m.peak.peak),
        peak_limit: m.peak.limit.map_or("none".into(), amount),
        drain: m.drain.as_ref().map_or(NOT_AVAILABLE.into(), |d| {
            format!(
                "{} (back to {} of ceiling {})",
                d.verdict,
                amount(d.last_value),
                amount(d.ceiling)
            )
        }),
        reason: m.trend.reason.clone(),
    }
}

/// A p-value for people: `<0.001` or three decimals.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Locust's `_stats.csv` columns, requests then the aggregate.
pub fn request_table(summary: &Summary) -> Table {
    let mut columns: Vec<String> = [
        "Type",
        "Name",
        "Requests",
        "Failures",
        "429s",
        "Median (ms)",
        "Average (ms)",
        "Min (ms)",
        "Max (ms)",
        "Avg size (bytes)",
        "Requests/s",
        "Failures/s",
    ]
    .map(String::from)
    .to_vec();
    columns.extend(LOCUST_PERCENTILE_LABELS.iter().map(|l| l.to_string()));
    let rows = summary
        .requests
        .iter()
        .chain(std::iter::once(&summary.aggregate))
        .map(request_cells)
        .collect();
    Table { columns, rows }
}

fn request_cells(r: &RequestSummary) -> Vec<String> {
    let l = r.latency.as_ref();
    let value = |f: fn(&LatencySummary) -> f64| {
        l.map_or(NOT_AVAILABLE.into(), |l| format::significant(f(l)))
    };
    let size = if r.requests == 0 {
        0.0
    } else {
        r.content_bytes as f64 / r.requests as f64
    };
    let mut cells = vec![
        r.method.clone(),
        r.name.clone(),
        r.requests.to_string(),
        r.failures.to_string(),
        r.failures_429.to_string(),
        value(|l| l.percentiles.p50),
        value(|l| l.mean_ms),
        value(|l| l.min_ms),
        value(|l| l.max_ms),
        format::significant(size),
        format::significant(r.requests_per_sec),
        format::significant(r.failures_per_sec),
    ];
    match l {
        Some(l) => cells.extend(
            l.percentiles
                .as_array()
                .iter()
                .map(|v| format::significant(*v)),
        ),
        None => cells.extend(
            LOCUST_PERCENTILE_LABELS
                .iter()
                .map(|_| NOT_AVAILABLE.to_owned()),
        ),
    }
    cells
}

/// The failures table, most frequent first.
pub fn errors(summary: &Summary, started_unix: f64) -> Vec<ErrorView> {
    let mut rows: Vec<ErrorView> = summary
        .errors
        .iter()
        .map(|e| ErrorView {
            method: e.method.clone(),
            name: e.name.clone(),
            error: match e.kind {
                ErrorKind::Status(code) => format!("HTTP {code}"),
                ErrorKind::Transport(class) => format!(
                    "transport: {}",
                    serde_json::to_value(class)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                ),
            },
            class: super::time_charts::class_label(e.kind.class()),
            is_429: e.kind.is_429(),
            message: e.message.clone(),
            occurrences: e.occurrences,
            seen: format!(
                "{} .. {}",
                since_start(e.first_seen, started_unix),
                since_start(e.last_seen, started_unix)
            ),
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.occurrences));
    rows
}

fn since_start(unix: u64, started_unix: f64) -> String {
    format!(
        "+{} s",
        format::significant((unix as f64 - started_unix).max(0.0))
    )
}

/// Failures by class (429 flagged).
pub fn failure_classes(summary: &Summary) -> Table {
    let total: u64 = summary.failures_by_class.values().sum();
    let rows = summary
        .failures_by_class
        .iter()
        .map(|(class, n)| {
            vec![
                super::time_charts::class_label(*class),
                n.to_string(),
                format::percent(Some(100.0 * *n as f64 / total.max(1) as f64)),
            ]
        })
        .collect();
    Table {
        columns: ["Class", "Failures", "Share of failures"]
            .map(String::from)
            .to_vec(),
        rows,
    }
}

/// Streaming metrics per name.
pub fn streaming(summary: &Summary) -> Table {
    let columns = [
        "Name",
        "Streams",
        "Cut short",
        "No first token",
        "Chunks/stream",
        "TTFB p50",
        "TTFB p95",
        "TTFT p50",
        "TTFT p95",
        "TTFT p99",
        "Chunk gap p99",
        "Max gap p99",
        "Duration p50",
    ]
    .map(String::from)
    .to_vec();
    let rows = summary.streaming.iter().map(stream_cells).collect();
    Table { columns, rows }
}

fn stream_cells(s: &StreamSummary) -> Vec<String> {
    let p =
        |l: &Option<LatencySummary>, f: fn(&LatencySummary) -> f64| format::ms(l.as_ref().map(f));
    let cut_detail = s
        .cut_by_cause
        .iter()
        .map(|(c, n)| {
            format!(
                "{}: {n}",
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>();
    let cut = if cut_detail.is_empty() {
        s.cut.to_string()
    } else {
        format!("{} ({})", s.cut, cut_detail.join(", "))
    };
    vec![
        s.name.clone(),
        s.streams.to_string(),
        cut,
        s.without_first_token.to_string(),
        format::significant(s.mean_chunks),
        p(&s.ttfb, |l| l.percentiles.p50),
        p(&s.ttfb, |l| l.percentiles.p95),
        p(&s.ttft, |l| l.percentiles.p50),
        p(&s.ttft, |l| l.percentiles.p95),
        p(&s.ttft, |l| l.percentiles.p99),
        p(&s.chunk_gap, |l| l.percentiles.p99),
        p(&s.max_gap, |l| l.percentiles.p99),
        p(&s.duration, |l| l.percentiles.p50),
    ]
}

/// The per-key table and the fairness sentence.
pub fn keys(fairness: &KeyFairness) -> (Table, String) {
    let columns = [
        "Key",
        "Requests",
        "Share",
        "429s served",
        "Retry-After violations",
        "Retry-After races",
        "In-window arrivals by depth (<250 ms / <500 ms / <1 s / <2 s / <5 s / ≥5 s)",
        "Faults injected",
    ]
    .map(String::from)
    .to_vec();
    let rows = fairness
        .keys
        .iter()
        .map(|k| {
            let key = if k.pooled {
                format!("{} (pooled)", k.key)
            } else {
                k.key.clone()
            };
            vec![
                key,
                k.requests.to_string(),
                format::percent(Some(k.share_percent)),
                k.rate_limited.to_string(),
                k.retry_after_violations.to_string(),
                k.retry_after_races.to_string(),
                retry_depths(&k.retry_window_depths),
                k.faults.to_string(),
            ]
        })
        .collect();
    let sentence = format!(
        "Jain's fairness index over configured keys: {} (1 = perfectly even); busiest / least busy key: {}.",
        fairness.jain_index.map_or(NOT_AVAILABLE.into(), |j| format!("{j:.3}")),
        fairness.max_min_ratio.map_or(NOT_AVAILABLE.into(), |r| format!("{r:.2}×")),
    );
    (Table { columns, rows }, sentence)
}

/// Depth buckets as `a / b / …`, or `–` when the ledger has none (an older mock) or all are zero.
fn retry_depths(counts: &[u64]) -> String {
    if counts.iter().all(|n| *n == 0) {
        return "–".to_string();
    }
    counts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The scenario name from the echoed configuration, if any.
pub fn scenario_name(config: &serde_json::Value) -> Option<String> {
    let candidates = [
        config.get("name"),
        config.pointer("/scenario/name"),
        config.get("scenario"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(String::from))
}

/// The first `seed` anywhere in the configuration.
pub fn seed(config: &serde_json::Value) -> Option<String> {
    match config {
        serde_json::Value::Object(map) => map
            .get("seed")
            .map(|s| s.to_string())
            .or_else(|| map.values().find_map(seed)),
        serde_json::Value::Array(items) => items.iter().find_map(seed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_and_name_are_found_where_engines_put_them() {
        for (config, name, found_seed) in [
            (
                json!({"name": "nightly", "seed": 42}),
                Some("nightly"),
                Some("42"),
            ),
            (
                json!({"scenario": {"name": "soak", "upstream": {"seed": 7}}}),
                Some("soak"),
                Some("7"),
            ),
            (json!({"scenario": "smoke"}), Some("smoke"), None),
            (serde_json::Value::Null, None, None),
        ] {
            assert_eq!(scenario_name(&config).as_deref(), name);
            assert_eq!(seed(&config).as_deref(), found_seed);
        }
    }

    #[test]
    fn latency_drift_table_shows_both_windows_and_the_change() {
        let window = |start: f64, p50: f64, p95: f64| json!({"start_s": start, "end_s": start + 900.0, "requests": 1000, "p50_ms": p50, "p95_ms": p95});
        let summary = json!({"engine": {"latency_drift": {
            "window_s": 900.0, "first": window(0.0, 2.0, 10.0), "last": window(2700.0, 3.0, 25.0),
            "p95_ratio": 2.5, "p95_diff_ms": 15.0, "p50_ratio": 1.5, "p50_diff_ms": 1.0}}});
        let table = latency_drift(&summary).expect("a drift table");
        assert_eq!(
            table.rows[0][1..3],
            [
                "0 s – 15m 00s (1000 requests)",
                "45m 00s – 1h 00m 00s (1000 requests)"
            ]
        );
        assert_eq!(
            table.rows[2],
            ["p95", "10 ms", "25 ms", "2.50×", "+15.000 ms"]
        );
        for absent in [
            json!({}),
            json!({"engine": {"latency_drift": null}}),
            json!({"engine": {"latency_drift": 3}}),
        ] {
            assert!(latency_drift(&absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn generator_table_flags_the_exceeded_limit() {
        let summary = json!({"engine": {"generator": {
            "late_percent": 7.5, "dropped_percent": 0.0, "cpu_percent_of_cores": null,
            "limits": {"max_late_percent": 5.0, "max_dropped_percent": 0.1, "max_cpu_percent": 90.0},
            "overloaded": true, "reasons": ["generator overloaded: ..."]}}});
        let table = generator(&summary).expect("a generator table");
        let results: Vec<&str> = table.rows.iter().map(|r| r[3].as_str()).collect();
        assert_eq!(results, ["OVERLOADED", "ok", "not measured"]);
        assert!(generator(&json!({"engine": {}})).is_none());
    }

    #[test]
    fn key_table_shows_races_and_depths() {
        let share = |key: &str, depths: Vec<u64>| crate::input::keys::KeyShare {
            key: key.into(),
            requests: 10,
            share_percent: 50.0,
            rate_limited: 2,
            retry_after_violations: 1,
            retry_after_races: 6,
            retry_window_depths: depths,
            faults: 2,
            pooled: false,
        };
        let fairness = KeyFairness {
            keys: vec![share("k1", vec![6, 0, 1, 0, 0, 0]), share("k2", vec![])],
            jain_index: Some(1.0),
            max_min_ratio: Some(1.0),
        };
        let (table, _) = keys(&fairness);
        assert!(table.columns[5].starts_with("Retry-After races"));
        assert_eq!(table.rows[0][4..7], ["1", "6", "6 / 0 / 1 / 0 / 0 / 0"]);
        assert_eq!(table.rows[1][6], "–");
    }

    #[test]
    fn behaviour_rows_mark_inconclusive_verdicts_as_warnings() {
        let verdict = |outcome: &str| crate::input::BehaviourVerdict {
            check: "recovery".into(),
            subject: Some("k2 down".into()),
            measured: None,
            limit: 5000.0,
            unit: "ms".into(),
            outcome: outcome.into(),
            detail: "baseline p95 ranged 8-57 ms over 10 s".into(),
        };
        let rows = behaviour(&[verdict("inconclusive"), verdict("skipped"), verdict("fail")]);
        let shown: Vec<(&str, &str)> = rows.iter().map(|r| (r.outcome.as_str(), r.class)).collect();
        assert_eq!(
            shown,
            [
                ("INCONCLUSIVE", "warn"),
                ("SKIPPED", "neutral"),
                ("FAIL", "fail")
            ]
        );
    }

    #[test]
    fn verdict_classes() {
        for (verdict, class) in [
            ("PASS", "pass"),
            ("LEAK", "fail"),
            ("CRASHED", "crashed"),
            ("INCONCLUSIVE", "warn"),
            ("PENDING", "neutral"),
        ] {
            assert_eq!(verdict_class(verdict), class);
        }
    }
}
