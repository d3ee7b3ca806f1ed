//! Which charts a report shows, built from a [`ReportInput`] as pure [`TimeChart`] / [`CategoryChart`]
//! descriptions (rendering to SVG happens in [`super::render_html`]).

use load_stats::summary::Summary;
use load_stats::StatusClass;
use sut_monitor::leak::{LeakReport, Metric};
use sut_monitor::monitor::{Phase, Sample};

use crate::charts::{
    palette, Band, BandKind, CategoryChart, CategoryStyle, SecondaryAxis, Series, TimeChart,
};
use crate::format;
use crate::input::ReportInput;

const MIB: f64 = 1024.0 * 1024.0;

/// A chart ready to render, with the sentence printed under it.
#[derive(Debug, Clone)]
pub enum Chart {
    /// Over time.
    Time(TimeChart),
    /// Over categories.
    Category(CategoryChart),
}

/// A titled group of charts (a report section).
#[derive(Debug, Clone)]
pub struct ChartGroup {
    /// Section title.
    pub title: String,
    /// Anchor id.
    pub id: String,
    /// Charts with their captions.
    pub charts: Vec<(Chart, String)>,
    /// Shown instead when the group has no data.
    pub empty_note: Option<String>,
}

/// Every chart group of the report, in page order.
pub fn chart_groups(input: &ReportInput, leak: Option<&LeakReport>) -> Vec<ChartGroup> {
    let ctx = Context::new(input);
    vec![
        group(
            "Load and latency",
            "load",
            ctx.load_charts(),
            "No interval history: load and latency over time are not available.",
        ),
        group("Errors", "error-charts", ctx.error_charts(), "No failures."),
        group(
            "Streaming",
            "streaming-charts",
            streaming_charts(&input.summary),
            "No streamed requests in this run.",
        ),
        group(
            "Proxy resources",
            "resources",
            ctx.resource_charts(leak),
            "No resources.csv: the proxy was not monitored.",
        ),
        group(
            "Load generator (harness) itself",
            "harness",
            ctx.harness_charts(),
            "No resources.csv: the harness's own usage was not recorded.",
        ),
    ]
}

fn group(title: &str, id: &str, charts: Vec<(Chart, String)>, empty: &str) -> ChartGroup {
    let charts: Vec<_> = charts
        .into_iter()
        .filter(|(c, _)| !chart_is_empty(c))
        .collect();
    let empty_note = charts.is_empty().then(|| empty.to_owned());
    ChartGroup {
        title: title.to_owned(),
        id: id.to_owned(),
        charts,
        empty_note,
    }
}

fn chart_is_empty(chart: &Chart) -> bool {
    match chart {
        Chart::Time(c) => c.is_empty(),
        Chart::Category(c) => c.is_empty(),
    }
}

/// What every time chart shares: the x range and the fault bands.
struct Context<'a> {
    input: &'a ReportInput,
    x_range: (f64, f64),
    faults: Vec<Band>,
}

impl<'a> Context<'a> {
    fn new(input: &'a ReportInput) -> Self {
        let history = input
            .history
            .iter()
            .map(|h| h.timestamp as f64 - input.started_unix);
        let samples = input.resources.iter().map(|s| input.sample_secs(s));
        let ends = [0.0, input.summary.duration_secs];
        let (lo, hi) = history
            .chain(samples)
            .chain(ends)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), t| {
                (lo.min(t), hi.max(t))
            });
        let faults = input
            .timeline
            .iter()
            .map(|w| Band {
                start: w.start_s,
                end: w.end_s.unwrap_or(hi).min(hi),
                label: w.label.clone(),
                kind: BandKind::Fault,
            })
            .collect();
        Self {
            input,
            x_range: (lo, hi),
            faults,
        }
    }

    fn chart(&self, title: &str, y_label: &str, series: Vec<Series>) -> TimeChart {
        TimeChart {
            title: title.to_owned(),
            y_label: y_label.to_owned(),
            series,
            secondary: None,
            bands: self.faults.clone(),
            x_range: self.x_range,
            y_from_zero: true,
        }
    }

    fn history_series(
        &self,
        label: &str,
        color: plotters::style::RGBColor,
        value: impl Fn(&crate::input::HistoryPoint) -> Option<f64>,
    ) -> Series {
        let start = self.input.started_unix;
        let points = self
            .input
            .history
            .iter()
            .filter_map(|h| value(h).map(|v| (h.timestamp as f64 - start, v)))
            .collect();
        Series::line(label, color, points)
    }

    fn sample_series(
        &self,
        label: &str,
        color: plotters::style::RGBColor,
        value: impl Fn(&Sample) -> f64,
    ) -> Series {
        let points = self
            .input
            .resources
            .iter()
            .map(|s| (self.input.sample_secs(s), value(s)))
            .collect();
        Series::line(label, color, points)
    }

    fn load_charts(&self) -> Vec<(Chart, String)> {
        let mut throughput = self.chart(
            "Throughput and users",
            "requests per second",
            vec![self.history_series("req/s", palette::BLUE, |h| Some(h.requests_per_sec))],
        );
        throughput.secondary = Some(SecondaryAxis {
            label: "users / in flight".into(),
            series: vec![self.history_series("users", palette::ORANGE, |h| Some(h.users as f64))],
        });
        let latency = self.chart(
            "Latency per 1 s interval",
            "milliseconds",
            vec![
                self.history_series("p50", palette::BLUE, |h| h.p50_ms),
                self.history_series("p95", palette::ORANGE, |h| h.p95_ms),
                self.history_series("p99", palette::RED, |h| h.p99_ms),
            ],
        );
        vec![
            (Chart::Time(throughput), "Requests finished per second (left) and active users or in-flight requests (right). Red bands: fault windows.".into()),
            (Chart::Time(latency), "Percentiles of the requests finished in each interval (not run-so-far). Red bands: fault windows.".into()),
        ]
    }

    fn error_charts(&self) -> Vec<(Chart, String)> {
        let failures = self.chart(
            "Failures per second (all classes, 429 included)",
            "failures per second",
            vec![self.history_series("failures/s", palette::RED, |h| Some(h.failures_per_sec))],
        );
        let has_failures = self.input.history.iter().any(|h| h.failures_per_sec > 0.0);
        let mut charts = Vec::new();
        if has_failures {
            charts.push((Chart::Time(failures), "All failures per interval; the class split over time is not recorded in the history CSV, see the bars below for the run's split.".into()));
        }
        if let Some(bars) = failure_class_bars(&self.input.summary) {
            charts.push((Chart::Category(bars), "Failures of the whole run by class. 429 (rate limited, orange) is kept apart: it is excluded from the users' error rate.".into()));
        }
        charts
    }

    fn resource_charts(&self, leak: Option<&LeakReport>) -> Vec<(Chart, String)> {
        let bands: Vec<Band> = phase_bands(self.input)
            .into_iter()
            .chain(self.faults.clone())
            .collect();
        let with_phases = |mut c: TimeChart| {
            c.bands = bands.clone();
            c
        };
        let mut memory = with_phases(self.chart(
            "Proxy memory",
            "MiB",
            vec![
                self.sample_series("RSS", palette::BLUE, |s| s.rss_bytes as f64 / MIB),
                self.sample_series("RssAnon (heap)", palette::GREEN, |s| {
                    s.rss_anon_bytes as f64 / MIB
                }),
            ],
        ));
        memory.y_from_zero = false;
        let (trend, trend_caption) = rss_trend(self.input, leak);
        memory.series.extend(trend);
        let cpu = with_phases(self.chart(
            "Proxy CPU",
            "% of one core",
            vec![self.sample_series("CPU", palette::BLUE, |s| s.cpu_percent)],
        ));
        let counts = with_phases(self.chart(
            "Proxy file descriptors and threads",
            "count",
            vec![
                self.sample_series("open fds", palette::BLUE, |s| s.fds as f64),
                self.sample_series("threads", palette::GREEN, |s| s.threads as f64),
            ],
        ));
        let sockets = with_phases(self.chart(
            "Proxy TCP sockets",
            "sockets",
            vec![
                self.sample_series("all owned", palette::BLUE, |s| s.tcp_sockets as f64),
                self.sample_series("ESTABLISHED", palette::GREEN, |s| s.tcp_established as f64),
                self.sample_series("CLOSE_WAIT", palette::RED, |s| s.tcp_close_wait as f64),
            ],
        ));
        vec![
            (Chart::Time(memory), format!("Resident memory of the proxy's process tree. {trend_caption} Blue band: warm-up (not judged); grey band: drain.")),
            (Chart::Time(cpu), "CPU of the proxy's process tree between samples, percent of one core.".into()),
            (Chart::Time(counts), "Open file descriptors and threads summed over the proxy's process tree.".into()),
            (Chart::Time(sockets), "TCP sockets owned by the proxy; a rising CLOSE_WAIT line is the classic socket leak.".into()),
        ]
    }

    fn harness_charts(&self) -> Vec<(Chart, String)> {
        let mut chart = self.chart(
            "Harness RSS and CPU",
            "MiB",
            vec![self.sample_series("harness RSS", palette::BROWN, |s| {
                s.harness_rss_bytes as f64 / MIB
            })],
        );
        chart.secondary = Some(SecondaryAxis {
            label: "% of one core".into(),
            series: vec![
                self.sample_series("harness CPU", palette::TEAL, |s| s.harness_cpu_percent),
                self.sample_series("monitor CPU", palette::GREY, |s| s.monitor_cpu_percent),
            ],
        });
        vec![(Chart::Time(chart), "The load generator's own memory and CPU: a saturated generator (CPU near 100 % of its cores) measures itself, not the proxy.".into())]
    }
}

/// Contiguous warm-up and drain spans of the resource samples.
fn phase_bands(input: &ReportInput) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    for sample in &input.resources {
        let t = input.sample_secs(sample);
        let kind = match sample.phase {
            Phase::WarmUp => BandKind::WarmUp,
            Phase::Drain => BandKind::Drain,
            Phase::Steady => continue,
        };
        match bands.last_mut() {
            Some(last) if last.kind == kind && (t - last.end) <= 2.0 * sample_interval(input) => {
                last.end = t
            }
            _ => bands.push(Band {
                start: t,
                end: t,
                label: if kind == BandKind::WarmUp {
                    "warm-up"
                } else {
                    "drain"
                }
                .into(),
                kind,
            }),
        }
    }
    bands
}

fn sample_interval(input: &ReportInput) -> f64 {
    let r = &input.resources;
    if r.len() < 2 {
        return 1.0;
    }
    (r[r.len() - 1].t_secs - r[0].t_secs) / (r.len() - 1) as f64
}

/// The fitted RSS trend over the steady window: the leak report's Theil–Sen slope when present (intercept =
/// median of `y - slope·t`, as Theil–Sen defines it), else a Theil–Sen fit computed here.
fn rss_trend(input: &ReportInput, leak: Option<&LeakReport>) -> (Option<Series>, String) {
    let steady: Vec<(f64, f64)> = input
        .resources
        .iter()
        .filter(|s| s.phase == Phase::Steady)
        .map(|s| (input.sample_secs(s), s.rss_bytes as f64 / MIB))
        .collect();
    if steady.len() < 3 {
        return (None, "Too few steady samples for a trend line.".into());
    }
    let reported = leak.and_then(|l| l.metric(Metric::Rss)).and_then(|m| {
        m.trend
            .numbers
            .as_ref()
            .map(|n| (n.slope_per_hour, m.verdict))
    });
    let (slope_per_sec, source) = match reported {
        Some((per_hour, verdict)) => (
            per_hour / MIB / 3600.0,
            format!(
                "Dashed: fitted trend {}/h from the leak analysis (RSS verdict {verdict}).",
                format::bytes(per_hour)
            ),
        ),
        None => {
            let slope = theil_sen_slope(&steady);
            (slope, format!("Dashed: Theil–Sen trend {}/h computed for this report (no leak analysis in summary.json).", format::bytes(slope * 3600.0 * MIB)))
        }
    };
    let mut offsets: Vec<f64> = steady.iter().map(|(t, y)| y - slope_per_sec * t).collect();
    offsets.sort_by(f64::total_cmp);
    let intercept = offsets[offsets.len() / 2];
    let (t0, t1) = (steady[0].0, steady[steady.len() - 1].0);
    let line = vec![
        (t0, intercept + slope_per_sec * t0),
        (t1, intercept + slope_per_sec * t1),
    ];
    (
        Some(Series::dashed("RSS trend (steady)", palette::PURPLE, line)),
        source,
    )
}

/// Median of pairwise slopes over at most 300 evenly picked points (O(n²) bounded).
pub fn theil_sen_slope(points: &[(f64, f64)]) -> f64 {
    let step = points.len().div_ceil(300).max(1);
    let picked: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
    let mut slopes = Vec::new();
    for (i, a) in picked.iter().enumerate() {
        for b in &picked[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    if slopes.is_empty() {
        return 0.0;
    }
    slopes.sort_by(f64::total_cmp);
    slopes[slopes.len() / 2]
}

fn failure_class_bars(summary: &Summary) -> Option<CategoryChart> {
    if summary.failures_by_class.values().all(|&n| n == 0) {
        return None;
    }
    let entries: Vec<(&StatusClass, &u64)> = summary.failures_by_class.iter().collect();
    let colors = entries
        .iter()
        .map(|(class, _)| match class {
            StatusClass::TooManyRequests => palette::ORANGE,
            StatusClass::ClientError | StatusClass::ServerError | StatusClass::InvalidStatus => {
                palette::RED
            }
            _ => palette::PURPLE,
        })
        .collect();
    Some(CategoryChart {
        title: "Failures by class".into(),
        y_label: "failures".into(),
        x_label: "status or transport class".into(),
        categories: entries.iter().map(|(c, _)| class_label(**c)).collect(),
        series: vec![Series::line(
            "failures",
            palette::RED,
            entries
                .iter()
                .enumerate()
                .map(|(i, (_, n))| (i as f64, **n as f64))
                .collect(),
        )],
        style: CategoryStyle::Bars,
        bar_colors: colors,
    })
}

/// `429 (rate limited)`, `5xx`, `timeout`, ...
pub fn class_label(class: StatusClass) -> String {
    match class {
        StatusClass::TooManyRequests => "429 (rate limited)".into(),
        other => other.as_str().into(),
    }
}

fn streaming_charts(summary: &Summary) -> Vec<(Chart, String)> {
    const LABELS: [&str; 9] = [
        "p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99.9",
    ];
    let colors = [
        palette::BLUE,
        palette::GREEN,
        palette::PURPLE,
        palette::BROWN,
        palette::TEAL,
    ];
    let mut series = Vec::new();
    for (i, stream) in summary.streaming.iter().enumerate() {
        let color = colors[i % colors.len()];
        let curve = |l: &Option<load_stats::summary::LatencySummary>| -> Vec<(f64, f64)> {
            l.as_ref()
                .map(|l| {
                    l.percentiles
                        .as_array()
                        .iter()
                        .take(LABELS.len())
                        .enumerate()
                        .map(|(x, v)| (x as f64, *v))
                        .collect()
                })
                .unwrap_or_default()
        };
        series.push(Series::line(
            format!("{} TTFT", stream.name),
            color,
            curve(&stream.ttft),
        ));
        series.push(Series::dashed(
            format!("{} TTFB", stream.name),
            color,
            curve(&stream.ttfb),
        ));
    }
    let chart = CategoryChart {
        title: "Streaming: time to first token and first byte".into(),
        y_label: "milliseconds".into(),
        x_label: "percentile".into(),
        categories: LABELS.iter().map(|s| s.to_string()).collect(),
        series,
        style: CategoryStyle::Lines,
        bar_colors: Vec::new(),
    };
    vec![(Chart::Category(chart), "Distribution over the whole run, per streamed request name: solid = first SSE data event (TTFT), dashed = first response byte (TTFB).".into())]
}
