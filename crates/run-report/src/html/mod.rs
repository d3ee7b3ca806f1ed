//! The self-contained HTML report: a minijinja template (embedded with `include_str!`) over a view model of
//! pre-formatted figures ([`view`]) and inline SVG charts ([`time_charts`] → [`crate::charts`]).
//!
//! Self-contained means: no script, no external stylesheet, font or image — the file opens offline from a CI
//! artifact and prints. Values are HTML-escaped by the template engine; only the SVG produced here is inserted raw.

pub mod time_charts;
pub mod view;

use minijinja::Environment;
use serde::Serialize;

use sut_monitor::leak::LeakReport;

use crate::input::ReportInput;
use crate::leak_judging::LeakJudging;
use time_charts::{chart_groups, Chart};

const TEMPLATE: &str = include_str!("../../templates/report.html.j2");

/// Everything the template reads.
#[derive(Serialize)]
struct Page<'a> {
    title: String,
    verdict: &'a str,
    verdict_class: &'static str,
    exit_code: i32,
    reasons: &'a [String],
    /// The resource verdict that did not count toward the exit code, for the banner.
    resource_note: Option<String>,
    started_at: String,
    duration: String,
    seed: Option<String>,
    source: String,
    cards: Vec<view::Card>,
    notes: Vec<String>,
    thresholds: Vec<view::ThresholdRow>,
    thresholds_passed: bool,
    resource_verdict: Option<view::ResourceVerdict>,
    behaviour: Vec<view::BehaviourRow>,
    latency_drift: Option<view::Table>,
    load_generator: Option<view::Table>,
    groups: Vec<GroupView>,
    requests: view::Table,
    failure_classes: view::Table,
    errors: Vec<view::ErrorView>,
    streaming: view::Table,
    keys_table: Option<&'a view::Table>,
    keys_sentence: Option<&'a str>,
    config_json: String,
    engine_json: Option<String>,
    leak_json: Option<String>,
    schema_version: u32,
    generator: &'static str,
}

#[derive(Debug, Serialize)]
struct ChartView {
    id: String,
    svg: String,
    caption: String,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupView {
    title: String,
    id: String,
    charts: Vec<ChartView>,
    empty_note: Option<String>,
}

/// File name of the report inside a results directory.
pub const REPORT_FILE: &str = "report.html";

/// `harness report` in one call: loads `source` (a results directory or a `summary.json`), renders, and writes
/// to `out` (default `<results dir>/report.html`). Returns the path written.
pub fn write_report(
    source: &std::path::Path,
    out: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, crate::ReportError> {
    let input = ReportInput::load(source)?;
    let path = out.map_or_else(|| input.dir.join(REPORT_FILE), std::path::Path::to_path_buf);
    std::fs::write(&path, render_html(&input)).map_err(|source| crate::ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Renders the whole report as one HTML document.
pub fn render_html(input: &ReportInput) -> String {
    let summary = &input.summary;
    let mut notes = input.notes.clone();
    let leak = parse_leak_report(&summary.leak_report, &mut notes);
    let groups = render_groups(input, leak.as_ref());
    let keys = input.keys.as_ref().map(view::keys);
    let title = view::scenario_name(&summary.config).unwrap_or_else(|| "load test".to_owned());
    let judging = LeakJudging::from_config(&summary.config);
    let page = Page {
        verdict_class: view::verdict_class(&summary.verdict),
        title,
        verdict: &summary.verdict,
        exit_code: summary.exit_code,
        reasons: &summary.verdict_reasons,
        resource_note: leak
            .as_ref()
            .and_then(|l| view::banner_resource_note(l, judging)),
        started_at: crate::format::timestamp(&summary.started_at),
        duration: crate::format::duration_secs(summary.duration_secs),
        seed: view::seed(&summary.config),
        source: input.dir.display().to_string(),
        cards: view::cards(input),
        notes,
        thresholds: view::thresholds(summary),
        thresholds_passed: summary.thresholds_passed,
        resource_verdict: leak.as_ref().map(|l| view::resource_verdict(l, judging)),
        behaviour: view::behaviour(&input.behaviour),
        latency_drift: view::latency_drift(&input.raw_summary),
        load_generator: view::generator(&input.raw_summary),
        groups,
        requests: view::request_table(summary),
        failure_classes: view::failure_classes(summary),
        errors: view::errors(summary, input.started_unix),
        streaming: view::streaming(summary),
        keys_table: keys.as_ref().map(|k| &k.0),
        keys_sentence: keys.as_ref().map(|k| k.1.as_str()),
        config_json: pretty(&summary.config),
        engine_json: (!summary.engine.is_null()).then(|| pretty(&summary.engine)),
        leak_json: (leak.is_none() && !summary.leak_report.is_null())
            .then(|| pretty(&summary.leak_report)),
        schema_version: summary.schema_version,
        generator: concat!("run-report ", env!("CARGO_PKG_VERSION")),
    };
    let ctx = minijinja::Value::from(minijinja::value::Serde(&page));
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.render_str(TEMPLATE, ctx)
        .unwrap_or_else(|e| fallback_page(&e))
}

fn render_groups(input: &ReportInput, leak: Option<&LeakReport>) -> Vec<GroupView> {
    let mut next_id = 0;
    chart_groups(input, leak)
        .into_iter()
        .map(|group| GroupView {
            title: group.title,
            id: group.id,
            empty_note: group.empty_note,
            charts: group
                .charts
                .into_iter()
                .map(|(chart, caption)| {
                    next_id += 1;
                    let rendered = match &chart {
                        Chart::Time(c) => c.render_svg(),
                        Chart::Category(c) => c.render_svg(),
                    };
                    let (svg, error) = match rendered {
                        Ok(svg) => (svg, None),
                        Err(e) => (String::new(), Some(e.to_string())),
                    };
                    ChartView {
                        id: format!("chart-{next_id}"),
                        svg,
                        caption,
                        error,
                    }
                })
                .collect(),
        })
        .collect()
}

/// The typed leak report, or a note when it is absent or of an unknown shape (shown raw then).
fn parse_leak_report(value: &serde_json::Value, notes: &mut Vec<String>) -> Option<LeakReport> {
    if value.is_null() {
        notes.push("summary.json has no leak_report: no resource verdict (the run was not monitored or not judged).".into());
        return None;
    }
    match serde_json::from_value(value.clone()) {
        Ok(report) => Some(report),
        Err(e) => {
            notes.push(format!(
                "summary.json leak_report has an unexpected shape ({e}); shown raw below."
            ));
            None
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A minimal page when the template itself fails (a bug, never input-dependent; still no panic).
fn fallback_page(error: &minijinja::Error) -> String {
    let text = error.to_string().replace('&', "&amp;").replace('<', "&lt;");
    format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>report error</title></head><body><h1>Report template error</h1><pre>{text}</pre></body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use load_stats::summary::Summary;
    use load_stats::RunStats;

    fn input(summary: Summary) -> ReportInput {
        ReportInput {
            raw_summary: serde_json::to_value(&summary).unwrap(),
            summary,
            started_unix: 0.0,
            history: Vec::new(),
            resources: Vec::new(),
            timeline: Vec::new(),
            keys: None,
            behaviour: Vec::new(),
            notes: Vec::new(),
            dir: std::path::PathBuf::from("results"),
        }
    }

    #[test]
    fn an_empty_run_renders_every_section_without_charts_or_errors() {
        let summary = Summary::from_run(
            &RunStats::new(std::time::UNIX_EPOCH),
            serde_json::Value::Null,
            Vec::new(),
        );
        let html = render_html(&input(summary));
        assert!(
            html.contains("<header class=\"banner neutral\""),
            "PENDING is neutral"
        );
        for text in [
            "No thresholds were configured.",
            "No failures.",
            "not recorded",
            "No interval history",
        ] {
            assert!(html.contains(text), "missing `{text}`");
        }
        assert!(!html.contains("<svg") && !html.contains("Chart could not be drawn"));
    }

    #[test]
    fn banner_class_follows_the_verdict_and_text_is_escaped() {
        let mut summary = Summary::from_run(
            &RunStats::new(std::time::UNIX_EPOCH),
            serde_json::json!({"name": "<script>x</script>"}),
            Vec::new(),
        );
        summary.verdict = "CRASHED".into();
        summary.verdict_reasons = vec!["proxy exited with <signal 9> & core".into()];
        let html = render_html(&input(summary));
        assert!(html.contains("<header class=\"banner crashed\""));
        assert!(html.contains("proxy exited with &lt;signal 9&gt; &amp; core"));
        assert!(!html.contains("<script>x"), "scenario name escaped");
    }

    #[test]
    fn latency_drift_is_shown_only_when_the_run_has_it() {
        let summary = Summary::from_run(
            &RunStats::new(std::time::UNIX_EPOCH),
            serde_json::Value::Null,
            Vec::new(),
        );
        let mut with_drift = input(summary);
        assert!(!render_html(&with_drift).contains("Latency drift"));
        let window = serde_json::json!({"start_s": 0.0, "end_s": 60.0, "requests": 10, "p50_ms": 1.0, "p95_ms": 2.0});
        with_drift.raw_summary["engine"] = serde_json::json!({"latency_drift": {
            "window_s": 60.0, "first": window, "last": window,
            "p95_ratio": 1.0, "p95_diff_ms": 0.0, "p50_ratio": 1.0, "p50_diff_ms": 0.0}});
        let html = render_html(&with_drift);
        assert!(
            html.contains("<h3>Latency drift") && html.contains("1.00×"),
            "drift table"
        );
    }
}
