//! Load figures of two runs: throughput, latency percentiles, error rates, streaming TTFT and cut streams per
//! streamed request name, and the proxy's memory (steady RSS slope and peak from the leak report).

use serde_json::Value;

use super::budget::RegressionBudget;
use super::delta::{judge, Better, Budget, Delta};

/// Every load figure in report order.
pub(super) fn load_deltas(
    baseline: &Value,
    current: &Value,
    budget: &RegressionBudget,
) -> Vec<Delta> {
    let pct = |b: Option<f64>| b.map(Budget::Percent);
    let aggregate = [
        (
            "throughput",
            "req/s",
            "/aggregate/requests_per_sec",
            Better::Higher,
            pct(budget.throughput_drop_percent),
        ),
        (
            "p50 latency",
            "ms",
            "/aggregate/latency/percentiles/p50",
            Better::Lower,
            pct(budget.p50_increase_percent),
        ),
        (
            "p95 latency",
            "ms",
            "/aggregate/latency/percentiles/p95",
            Better::Lower,
            pct(budget.p95_increase_percent),
        ),
        (
            "p99 latency",
            "ms",
            "/aggregate/latency/percentiles/p99",
            Better::Lower,
            pct(budget.p99_increase_percent),
        ),
        (
            "errors excl. 429",
            "%",
            "/aggregate/error_percent_excluding_429",
            Better::Lower,
            budget.error_percent_increase_points.map(Budget::Points),
        ),
        (
            "errors incl. 429",
            "%",
            "/aggregate/error_percent",
            Better::Lower,
            None,
        ),
    ];
    let mut deltas: Vec<Delta> = aggregate
        .into_iter()
        .map(|(metric, unit, pointer, better, budget)| {
            let at = |v: &Value| v.pointer(pointer).and_then(Value::as_f64);
            judge(
                metric.to_owned(),
                unit,
                at(baseline),
                at(current),
                better,
                budget,
            )
        })
        .collect();
    deltas.extend(streaming_deltas(baseline, current, budget));
    deltas.extend(rss_deltas(baseline, current, budget));
    deltas
}

fn named<'a>(list: Option<&'a Value>, key: &str, name: &str) -> Option<&'a Value> {
    list?
        .as_array()?
        .iter()
        .find(|item| item.get(key).and_then(Value::as_str) == Some(name))
}

fn streaming_deltas(baseline: &Value, current: &Value, budget: &RegressionBudget) -> Vec<Delta> {
    let names = |v: &Value| -> Vec<String> {
        v.get("streaming")
            .and_then(Value::as_array)
            .map_or(Vec::new(), |a| {
                a.iter()
                    .filter_map(|s| s.get("name")?.as_str().map(String::from))
                    .collect()
            })
    };
    let mut all = names(baseline);
    all.extend(
        names(current)
            .into_iter()
            .filter(|n| !all.contains(n))
            .collect::<Vec<_>>(),
    );
    let mut deltas = Vec::new();
    for name in all {
        let stream = |v: &'_ Value| {
            named(v.get("streaming"), "name", &name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (b, c) = (stream(baseline), stream(current));
        let ttft = |s: &Value| s.pointer("/ttft/percentiles/p95").and_then(Value::as_f64);
        let cut = |s: &Value| {
            let streams = s.get("streams")?.as_f64()?;
            let cut = s.get("cut")?.as_f64()?;
            (streams > 0.0).then(|| 100.0 * cut / streams)
        };
        let budget_ttft = budget.ttft_p95_increase_percent.map(Budget::Percent);
        deltas.push(judge(
            format!("TTFT p95 · {name}"),
            "ms",
            ttft(&b),
            ttft(&c),
            Better::Lower,
            budget_ttft,
        ));
        deltas.push(judge(
            format!("streams cut · {name}"),
            "%",
            cut(&b),
            cut(&c),
            Better::Lower,
            None,
        ));
    }
    deltas
}

fn rss_deltas(baseline: &Value, current: &Value, budget: &RegressionBudget) -> Vec<Delta> {
    let rss = |v: &Value| {
        named(v.pointer("/leak_report/metrics"), "metric", "rss")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (b, c) = (rss(baseline), rss(current));
    let slope = |m: &Value| {
        m.pointer("/trend/numbers/slope_per_hour")
            .and_then(Value::as_f64)
    };
    let peak = |m: &Value| m.pointer("/peak/peak").and_then(Value::as_f64);
    let mut slope_delta = judge(
        "RSS slope (steady)".into(),
        "bytes/h",
        slope(&b),
        slope(&c),
        Better::Lower,
        budget.rss_slope_increase_percent.map(Budget::Percent),
    );
    let floor = budget.rss_slope_floor_mib_per_hour * 1024.0 * 1024.0;
    if slope_delta.current.is_some_and(|s| s <= floor) {
        slope_delta.regressed = false;
    }
    let peak_delta = judge(
        "RSS peak".into(),
        "bytes",
        peak(&b),
        peak(&c),
        Better::Lower,
        budget.rss_peak_increase_percent.map(Budget::Percent),
    );
    vec![slope_delta, peak_delta]
}
