//! `harness compare <baseline> <current>`: deltas between two `summary.json` files, judged against a
//! [`RegressionBudget`].
//!
//! Why over JSON values rather than the typed `Summary`: the baseline is often last week's file, written by an
//! older harness. Every figure is looked up by path; a figure missing on either side is shown as `n/a` and never
//! judged, instead of refusing the whole comparison. [`compare`] takes typed summaries for callers that have
//! them; [`compare_files`] reads files leniently.
//!
//! Which way is better is a property of each metric (`Higher` throughput, `Lower` latency); the direction column
//! says better/worse with a 1 % dead band so noise does not flap, while regression decisions use the budget only.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use load_stats::summary::Summary;

use crate::error::ReportError;
use crate::format::{self, NOT_AVAILABLE};

/// How much worse the current run may be than the baseline. Percentages are relative to the baseline; `false`
/// in TOML (or `None`) turns a check off (the metric is still shown).
///
/// ```toml
/// throughput_drop_percent = 10
/// p95_increase_percent = 10
/// p99_increase_percent = false        # shown, not judged
/// error_percent_increase_points = 0.5 # errors excl. 429, absolute percentage points
/// rss_slope_increase_percent = 50
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressionBudget {
    /// Max drop of requests per second, percent (default 10).
    #[serde(deserialize_with = "number_or_off")]
    pub throughput_drop_percent: Option<f64>,
    /// Max rise of the median, percent (default off: medians move with upstream latency noise).
    #[serde(deserialize_with = "number_or_off")]
    pub p50_increase_percent: Option<f64>,
    /// Max rise of p95, percent (default 10).
    #[serde(deserialize_with = "number_or_off")]
    pub p95_increase_percent: Option<f64>,
    /// Max rise of p99, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub p99_increase_percent: Option<f64>,
    /// Max rise of the error percentage excluding 429, in percentage points (default 0.5).
    #[serde(deserialize_with = "number_or_off")]
    pub error_percent_increase_points: Option<f64>,
    /// Max rise of streaming time-to-first-token p95 per request name, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub ttft_p95_increase_percent: Option<f64>,
    /// Max rise of the steady-state RSS slope, percent (default 50).
    #[serde(deserialize_with = "number_or_off")]
    pub rss_slope_increase_percent: Option<f64>,
    /// RSS slopes at or below this many MiB per hour are never a regression (noise floor; default 1).
    pub rss_slope_floor_mib_per_hour: f64,
    /// Max rise of the peak RSS, percent (default 20).
    #[serde(deserialize_with = "number_or_off")]
    pub rss_peak_increase_percent: Option<f64>,
    /// Whether a worse overall verdict (e.g. PASS → LEAK) counts as a regression (default true).
    pub verdict_must_not_worsen: bool,
}

impl Default for RegressionBudget {
    fn default() -> Self {
        Self {
            throughput_drop_percent: Some(10.0),
            p50_increase_percent: None,
            p95_increase_percent: Some(10.0),
            p99_increase_percent: Some(20.0),
            error_percent_increase_points: Some(0.5),
            ttft_p95_increase_percent: Some(20.0),
            rss_slope_increase_percent: Some(50.0),
            rss_slope_floor_mib_per_hour: 1.0,
            rss_peak_increase_percent: Some(20.0),
            verdict_must_not_worsen: true,
        }
    }
}

fn number_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrOff {
        Number(f64),
        Flag(bool),
    }
    match NumberOrOff::deserialize(d)? {
        NumberOrOff::Number(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
        NumberOrOff::Number(n) => Err(serde::de::Error::custom(format!(
            "{n} must be a non-negative number"
        ))),
        NumberOrOff::Flag(false) => Ok(None),
        NumberOrOff::Flag(true) => Err(serde::de::Error::custom(
            "use a number, or `false` to turn the check off",
        )),
    }
}

impl RegressionBudget {
    /// Parses a budget TOML; `origin` (the file name) prefixes errors, which carry line and column.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, ReportError> {
        toml::from_str(text)
            .map_err(|e| ReportError::invalid(origin, format!("invalid regression budget: {e}")))
    }

    /// Reads a budget TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ReportError> {
        Self::from_toml_str(&ReportError::read_to_string(path)?, path)
    }
}

/// Whether a higher value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput.
    Higher,
    /// Latency, errors, memory.
    Lower,
}

/// Which way the current run moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Moved the good way by more than the dead band.
    Better,
    /// Moved the bad way by more than the dead band.
    Worse,
    /// Within the dead band.
    Same,
    /// A side is missing.
    NotAvailable,
}

impl Direction {
    /// `better`, `worse`, `same`, `n/a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Better => "better",
            Direction::Worse => "worse",
            Direction::Same => "same",
            Direction::NotAvailable => NOT_AVAILABLE,
        }
    }
}

/// How a metric's budget is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Relative change, percent of the baseline.
    Percent(f64),
    /// Absolute change in percentage points.
    Points(f64),
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    /// What (`p95 latency`, `TTFT p95 · chat stream`).
    pub metric: String,
    /// Unit of the values (`ms`, `req/s`, `%`, `bytes`, `bytes/h`).
    pub unit: String,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// Current value.
    pub current: Option<f64>,
    /// Which way is better.
    pub better: Better,
    /// Which way it moved.
    pub direction: Direction,
    /// The budget that applies, if any.
    pub budget: Option<Budget>,
    /// Whether the budget was exceeded.
    pub regressed: bool,
}

impl Delta {
    /// Change relative to the baseline, percent (`None` when a side is missing or the baseline is 0).
    pub fn change_percent(&self) -> Option<f64> {
        let (b, c) = (self.baseline?, self.current?);
        (b != 0.0).then(|| 100.0 * (c - b) / b.abs())
    }

    /// Absolute change (`current - baseline`).
    pub fn change(&self) -> Option<f64> {
        Some(self.current? - self.baseline?)
    }

    fn change_text(&self) -> String {
        match self.budget {
            Some(Budget::Points(_)) => self
                .change()
                .map_or(NOT_AVAILABLE.into(), |d| format!("{d:+.2} pp")),
            _ => match (self.change_percent(), self.change()) {
                (Some(p), _) => format!("{p:+.1} %"),
                (None, Some(0.0)) => "±0".into(),
                (None, Some(d)) => format!("{d:+} (from 0)"),
                (None, None) => NOT_AVAILABLE.into(),
            },
        }
    }

    fn budget_text(&self) -> String {
        let sign = if self.better == Better::Higher {
            "-"
        } else {
            "+"
        };
        match self.budget {
            None => "-".into(),
            Some(Budget::Percent(p)) => format!("{sign}{} %", format::significant(p)),
            Some(Budget::Points(p)) => format!("{sign}{} pp", format::significant(p)),
        }
    }

    fn result_text(&self) -> &'static str {
        match (self.regressed, self.budget, self.direction) {
            (true, _, _) => "REGRESSED",
            (false, _, Direction::NotAvailable) => NOT_AVAILABLE,
            (false, Some(_), _) => "ok",
            (false, None, _) => "-",
        }
    }
}

/// The overall verdicts of both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictChange {
    /// Baseline verdict (`n/a` when absent).
    pub baseline: String,
    /// Current verdict.
    pub current: String,
    /// Whether the verdict got worse and the budget forbids it.
    pub regressed: bool,
}

impl VerdictChange {
    /// Better/worse by severity (PASS < INCONCLUSIVE < FAIL/LEAK/GROWTH/INVALID < CRASHED); `n/a` when absent.
    pub fn direction(&self) -> Direction {
        if self.baseline == NOT_AVAILABLE || self.current == NOT_AVAILABLE {
            return Direction::NotAvailable;
        }
        match severity(&self.current).cmp(&severity(&self.baseline)) {
            std::cmp::Ordering::Less => Direction::Better,
            std::cmp::Ordering::Equal => Direction::Same,
            std::cmp::Ordering::Greater => Direction::Worse,
        }
    }
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Figures in report order.
    pub deltas: Vec<Delta>,
    /// Overall verdicts.
    pub verdict: VerdictChange,
}

impl Comparison {
    /// True when any budget was exceeded (the exit code of `harness compare` is then 1).
    pub fn regressed(&self) -> bool {
        self.verdict.regressed || self.deltas.iter().any(|d| d.regressed)
    }

    fn rows(&self) -> Vec<[String; 7]> {
        let verdict = [
            "verdict".to_owned(),
            self.verdict.baseline.clone(),
            self.verdict.current.clone(),
            "-".into(),
            self.verdict.direction().as_str().into(),
            "no worse".into(),
            if self.verdict.regressed {
                "REGRESSED"
            } else {
                "ok"
            }
            .into(),
        ];
        let figures = self.deltas.iter().map(|d| {
            [
                d.metric.clone(),
                format::with_unit(d.baseline, &d.unit),
                format::with_unit(d.current, &d.unit),
                d.change_text(),
                d.direction.as_str().into(),
                d.budget_text(),
                d.result_text().into(),
            ]
        });
        std::iter::once(verdict).chain(figures).collect()
    }

    /// A fixed-width table for the terminal, with a closing one-line conclusion.
    pub fn to_table(&self) -> String {
        let header = HEADER.map(String::from);
        let rows = self.rows();
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        let _ = writeln!(out, "{}", self.conclusion());
        out
    }

    /// A GitHub-flavoured markdown table for a PR comment.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### Load test: comparison with baseline\n\n");
        let _ = writeln!(out, "**{}**\n", self.conclusion());
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|:--|--:|--:|--:|:--|--:|:--|");
        for row in self.rows() {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let mut line = cells.join(" | ");
            if row[6] == "REGRESSED" {
                line = line.replace("REGRESSED", "❌ **REGRESSED**");
            }
            let _ = writeln!(out, "| {line} |");
        }
        out
    }

    fn conclusion(&self) -> String {
        let regressed: Vec<&str> = self
            .deltas
            .iter()
            .filter(|d| d.regressed)
            .map(|d| d.metric.as_str())
            .collect();
        match (self.regressed(), self.verdict.regressed) {
            (false, _) => "No regression beyond the budget.".into(),
            (true, true) if regressed.is_empty() => format!(
                "REGRESSION: verdict {} → {}.",
                self.verdict.baseline, self.verdict.current
            ),
            (true, verdict) => format!(
                "REGRESSION: {}{}.",
                regressed.join(", "),
                if verdict {
                    format!(
                        "; verdict {} → {}",
                        self.verdict.baseline, self.verdict.current
                    )
                } else {
                    String::new()
                }
            ),
        }
    }
}

const HEADER: [&str; 7] = [
    "metric",
    "baseline",
    "current",
    "change",
    "direction",
    "budget",
    "result",
];

/// Compares two typed summaries.
pub fn compare(baseline: &Summary, current: &Summary, budget: &RegressionBudget) -> Comparison {
    let to_value = |s: &Summary| serde_json::to_value(s).unwrap_or(Value::Null);
    compare_json(&to_value(baseline), &to_value(current), budget)
}

/// Reads two `summary.json` files leniently (missing fields become `n/a`) and compares them.
pub fn compare_files(
    baseline: &Path,
    current: &Path,
    budget: &RegressionBudget,
) -> Result<Comparison, ReportError> {
    Ok(compare_json(
        &load_summary_json(baseline)?,
        &load_summary_json(current)?,
        budget,
    ))
}

/// Reads a `summary.json` as JSON; errors when it is unreadable, not JSON, or clearly not a run summary.
pub fn load_summary_json(path: &Path) -> Result<Value, ReportError> {
    let text = ReportError::read_to_string(path)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ReportError::invalid(path, format!("not JSON: {e}")))?;
    if !value.get("aggregate").is_some_and(Value::is_object) {
        return Err(ReportError::invalid(
            path,
            "not a summary.json: no `aggregate` object",
        ));
    }
    Ok(value)
}

/// Compares two summaries given as JSON values.
pub fn compare_json(baseline: &Value, current: &Value, budget: &RegressionBudget) -> Comparison {
    let pct = |b: Option<f64>| b.map(Budget::Percent);
    let mut deltas = vec![
        figure(
            baseline,
            current,
            "throughput",
            "req/s",
            "/aggregate/requests_per_sec",
            Better::Higher,
            pct(budget.throughput_drop_percent),
        ),
        figure(
            baseline,
            current,
            "p50 latency",
            "ms",
            "/aggregate/latency/percentiles/p50",
            Better::Lower,
            pct(budget.p50_increase_percent),
        ),
        figure(
            baseline,
            current,
            "p95 latency",
            "ms",
            "/aggregate/latency/percentiles/p95",
            Better::Lower,
            pct(budget.p95_increase_percent),
        ),
        figure(
            baseline,
            current,
            "p99 latency",
            "ms",
            "/aggregate/latency/percentiles/p99",
            Better::Lower,
            pct(budget.p99_increase_percent),
        ),
        figure(
            baseline,
            current,
            "errors excl. 429",
            "%",
            "/aggregate/error_percent_excluding_429",
            Better::Lower,
            budget.error_percent_increase_points.map(Budget::Points),
        ),
        figure(
            baseline,
            current,
            "errors incl. 429",
            "%",
            "/aggregate/error_percent",
            Better::Lower,
            None,
        ),
    ];
    deltas.extend(streaming_deltas(baseline, current, budget));
    deltas.extend(rss_deltas(baseline, current, budget));
    Comparison {
        deltas,
        verdict: verdict_change(baseline, current, budget),
    }
}

fn figure(
    baseline: &Value,
    current: &Value,
    metric: &str,
    unit: &str,
    pointer: &str,
    better: Better,
    budget: Option<Budget>,
) -> Delta {
    let at = |v: &Value| v.pointer(pointer).and_then(Value::as_f64);
    judge(
        metric.to_owned(),
        unit,
        at(baseline),
        at(current),
        better,
        budget,
    )
}

fn judge(
    metric: String,
    unit: &str,
    baseline: Option<f64>,
    current: Option<f64>,
    better: Better,
    budget: Option<Budget>,
) -> Delta {
    let mut delta = Delta {
        metric,
        unit: unit.to_owned(),
        baseline,
        current,
        better,
        direction: Direction::NotAvailable,
        budget,
        regressed: false,
    };
    let (Some(b), Some(c)) = (baseline, current) else {
        return delta;
    };
    // Worse is a positive number: growth for Lower-is-better, shrinkage for Higher-is-better.
    let worse_by = if better == Better::Lower {
        c - b
    } else {
        b - c
    };
    let worse_percent = if b != 0.0 {
        100.0 * worse_by / b.abs()
    } else if worse_by > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let (worse_amount, dead_band) = match budget {
        Some(Budget::Points(_)) => (worse_by, 0.01),
        _ => (worse_percent, 1.0),
    };
    delta.direction = match worse_amount {
        w if w > dead_band => Direction::Worse,
        w if w < -dead_band => Direction::Better,
        _ => Direction::Same,
    };
    delta.regressed = match budget {
        Some(Budget::Percent(limit)) => worse_percent > limit,
        Some(Budget::Points(limit)) => worse_by > limit,
        None => false,
    };
    delta
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

/// Badness of an overall verdict, for "did it get worse".
fn severity(verdict: &str) -> u8 {
    match verdict {
        "PASS" => 0,
        "INCONCLUSIVE" | "INTERRUPTED" | "PENDING" => 1,
        "FAIL" | "GROWTH" | "LEAK" | "INVALID" => 2,
        "CRASHED" => 3,
        _ => 1,
    }
}

fn verdict_change(baseline: &Value, current: &Value, budget: &RegressionBudget) -> VerdictChange {
    let verdict = |v: &Value| v.get("verdict").and_then(Value::as_str).map(String::from);
    let (b, c) = (verdict(baseline), verdict(current));
    let regressed = match (&b, &c) {
        (Some(b), Some(c)) => budget.verdict_must_not_worsen && severity(c) > severity(b),
        _ => false,
    };
    let text = |v: Option<String>| v.unwrap_or_else(|| NOT_AVAILABLE.into());
    VerdictChange {
        baseline: text(b),
        current: text(c),
        regressed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(rps: f64, p95: f64, errors: f64, verdict: &str, rss_slope: f64) -> Value {
        json!({
            "verdict": verdict,
            "aggregate": {"requests_per_sec": rps, "error_percent": errors + 1.0, "error_percent_excluding_429": errors,
                          "latency": {"percentiles": {"p50": 10.0, "p95": p95, "p99": 2.0 * p95}}},
            "streaming": [{"name": "chat", "streams": 100, "cut": 1, "ttft": {"percentiles": {"p95": 50.0}}}],
            "leak_report": {"metrics": [{"metric": "rss", "trend": {"numbers": {"slope_per_hour": rss_slope}}, "peak": {"peak": 4.0e7}}]}
        })
    }

    const MIB: f64 = 1048576.0;

    #[test]
    fn judge_table() {
        for (baseline, current, better, budget, direction, regressed) in [
            (
                100.0,
                95.0,
                Better::Higher,
                Some(Budget::Percent(10.0)),
                Direction::Worse,
                false,
            ),
            (
                100.0,
                85.0,
                Better::Higher,
                Some(Budget::Percent(10.0)),
                Direction::Worse,
                true,
            ),
            (
                100.0,
                130.0,
                Better::Higher,
                Some(Budget::Percent(10.0)),
                Direction::Better,
                false,
            ),
            (
                100.0,
                100.5,
                Better::Lower,
                Some(Budget::Percent(10.0)),
                Direction::Same,
                false,
            ),
            (
                100.0,
                111.0,
                Better::Lower,
                Some(Budget::Percent(10.0)),
                Direction::Worse,
                true,
            ),
            (100.0, 111.0, Better::Lower, None, Direction::Worse, false),
            (
                0.2,
                0.6,
                Better::Lower,
                Some(Budget::Points(0.5)),
                Direction::Worse,
                false,
            ),
            (
                0.2,
                0.8,
                Better::Lower,
                Some(Budget::Points(0.5)),
                Direction::Worse,
                true,
            ),
            (
                0.0,
                5.0,
                Better::Lower,
                Some(Budget::Percent(10.0)),
                Direction::Worse,
                true,
            ),
        ] {
            let d = judge(
                "x".into(),
                "ms",
                Some(baseline),
                Some(current),
                better,
                budget,
            );
            assert_eq!(
                (d.direction, d.regressed),
                (direction, regressed),
                "{baseline} -> {current} {better:?} {budget:?}"
            );
        }
    }

    #[test]
    fn within_budget_passes() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 0.5 * MIB),
            &summary(980.0, 105.0, 0.2, "PASS", 0.7 * MIB),
            &RegressionBudget::default(),
        );
        assert!(!c.regressed(), "{}", c.to_table());
        assert!(c.to_table().contains("No regression beyond the budget."));
        let p95 = c.deltas.iter().find(|d| d.metric == "p95 latency").unwrap();
        assert_eq!(
            (p95.direction, p95.change_percent().map(|p| p.round())),
            (Direction::Worse, Some(5.0))
        );
    }

    #[test]
    fn over_budget_fails_and_names_the_metrics() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 2.0 * MIB),
            &summary(850.0, 120.0, 0.1, "LEAK", 10.0 * MIB),
            &RegressionBudget::default(),
        );
        assert!(c.regressed());
        let regressed: Vec<&str> = c
            .deltas
            .iter()
            .filter(|d| d.regressed)
            .map(|d| d.metric.as_str())
            .collect();
        assert_eq!(
            regressed,
            ["throughput", "p95 latency", "RSS slope (steady)"]
        );
        assert!(c.verdict.regressed);
        assert_eq!(c.verdict.direction(), Direction::Worse);
        let table = c.to_table();
        assert!(
            table.contains(
                "REGRESSION: throughput, p95 latency, RSS slope (steady); verdict PASS → LEAK."
            ),
            "{table}"
        );
        let md = c.to_markdown();
        assert!(
            md.contains(
                "| p95 latency | 100 ms | 120 ms | +20.0 % | worse | +10 % | ❌ **REGRESSED** |"
            ),
            "{md}"
        );
    }

    #[test]
    fn rss_slope_below_the_floor_is_not_a_regression() {
        let c = compare_json(
            &summary(1000.0, 100.0, 0.1, "PASS", 0.1 * MIB),
            &summary(1000.0, 100.0, 0.1, "PASS", 0.9 * MIB),
            &RegressionBudget::default(),
        );
        let slope = c
            .deltas
            .iter()
            .find(|d| d.metric.starts_with("RSS slope"))
            .unwrap();
        assert_eq!(
            (slope.direction, slope.regressed),
            (Direction::Worse, false)
        );
    }

    #[test]
    fn missing_fields_are_not_available_not_a_crash() {
        let partial = json!({"aggregate": {"requests_per_sec": 900.0}});
        let c = compare_json(
            &partial,
            &summary(1000.0, 100.0, 0.1, "PASS", MIB),
            &RegressionBudget::default(),
        );
        assert!(!c.regressed());
        let p95 = c.deltas.iter().find(|d| d.metric == "p95 latency").unwrap();
        assert_eq!(
            (p95.baseline, p95.direction, p95.regressed),
            (None, Direction::NotAvailable, false)
        );
        assert_eq!(c.verdict.baseline, "n/a");
        let table = c.to_table();
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("p95 latency") && l.contains("n/a")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("TTFT p95 · chat") && l.contains("n/a")),
            "{table}"
        );
    }

    #[test]
    fn the_example_budget_file_is_the_default() {
        let text = include_str!("../regression-budget.example.toml");
        let budget =
            RegressionBudget::from_toml_str(text, Path::new("regression-budget.example.toml"))
                .unwrap();
        assert_eq!(budget, RegressionBudget::default());
    }

    #[test]
    fn budget_toml_defaults_overrides_off_and_errors() {
        let path = Path::new("budget.toml");
        let b = RegressionBudget::from_toml_str(
            "p95_increase_percent = 5\np99_increase_percent = false\n",
            path,
        )
        .unwrap();
        assert_eq!(
            (
                b.p95_increase_percent,
                b.p99_increase_percent,
                b.throughput_drop_percent
            ),
            (Some(5.0), None, Some(10.0))
        );
        for (text, expected) in [
            ("p95_increase = 5\n", "unknown field `p95_increase`"),
            ("p95_increase_percent = true\n", "budget.toml"),
            ("p95_increase_percent = -1\n", "budget.toml"),
        ] {
            let err = RegressionBudget::from_toml_str(text, path)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected) && err.starts_with("budget.toml"),
                "{text}: {err}"
            );
        }
    }
}
