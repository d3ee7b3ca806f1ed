//! Charts drawn with plotters into inline SVG strings.
//!
//! Why SVG from Rust rather than a JavaScript charting library: the report must open offline from a CI artifact
//! years later; an SVG needs no script, no CDN and no vendored bundle, and prints. Two shapes cover every chart:
//! - [`TimeChart`]: lines over "seconds since the run start", an optional right-hand axis, and shaded
//!   [`Band`]s (fault windows on every chart, warm-up/drain phases on resource charts);
//! - [`CategoryChart`]: bars or lines over named categories (errors by class, latency by percentile).
//!
//! Charts are pure descriptions until [`TimeChart::render_svg`] / [`CategoryChart::render_svg`]; the HTML view
//! builds the descriptions from a [`crate::ReportInput`].

use plotters::chart::DualCoordChartContext;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Width of every chart, pixels (the SVG scales to the page width).
pub const WIDTH: u32 = 1100;
/// Height of every chart, pixels.
pub const HEIGHT: u32 = 330;

/// The report's colours, chosen to stay apart for colour-blind readers (Tableau 10).
pub mod palette {
    use plotters::style::RGBColor;
    /// Throughput, p50, RSS.
    pub const BLUE: RGBColor = RGBColor(31, 119, 180);
    /// p95, users, 429s.
    pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
    /// Success-ish series, threads.
    pub const GREEN: RGBColor = RGBColor(44, 160, 44);
    /// Failures, p99, fault windows.
    pub const RED: RGBColor = RGBColor(214, 39, 40);
    /// Transport errors, trend lines.
    pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
    /// Secondary series.
    pub const BROWN: RGBColor = RGBColor(140, 86, 75);
    /// Neutral.
    pub const GREY: RGBColor = RGBColor(110, 110, 110);
    /// Extra series.
    pub const TEAL: RGBColor = RGBColor(23, 190, 207);
}

/// A chart could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("chart `{title}`: {problem}")]
pub struct ChartError {
    /// The chart's title.
    pub title: String,
    /// Plotters' message.
    pub problem: String,
}

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (with unit where the axis has none).
    pub label: String,
    /// Line colour.
    pub color: RGBColor,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
    /// Dashed (fitted lines, limits).
    pub dashed: bool,
}

impl Series {
    /// A solid line.
    pub fn line(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            color,
            points,
            dashed: false,
        }
    }

    /// A dashed line.
    pub fn dashed(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            color,
            points,
            dashed: true,
        }
    }
}

/// What a shaded band marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandKind {
    /// An injected fault (red).
    Fault,
    /// Warm-up phase (blue).
    WarmUp,
    /// Drain phase (grey).
    Drain,
}

impl BandKind {
    fn fill(self) -> RGBAColor {
        match self {
            BandKind::Fault => palette::RED.mix(0.13),
            BandKind::WarmUp => palette::BLUE.mix(0.08),
            BandKind::Drain => palette::GREY.mix(0.13),
        }
    }
}

/// A shaded x interval with a label at its top.
#[derive(Debug, Clone)]
pub struct Band {
    /// Start (x units).
    pub start: f64,
    /// End (x units).
    pub end: f64,
    /// Text shown at the top of the band.
    pub label: String,
    /// Colour and meaning.
    pub kind: BandKind,
}

/// A right-hand axis with its own lines.
#[derive(Debug, Clone)]
pub struct SecondaryAxis {
    /// Axis description with unit.
    pub label: String,
    /// Lines drawn against it.
    pub series: Vec<Series>,
}

/// Lines over time, seconds since the run start.
#[derive(Debug, Clone)]
pub struct TimeChart {
    /// Caption.
    pub title: String,
    /// Left axis description with unit.
    pub y_label: String,
    /// Lines against the left axis.
    pub series: Vec<Series>,
    /// Optional right axis.
    pub secondary: Option<SecondaryAxis>,
    /// Shaded intervals, drawn under the lines.
    pub bands: Vec<Band>,
    /// The x range shown (the same on every time chart of a report so they line up).
    pub x_range: (f64, f64),
    /// Start the left axis at zero (rates, latencies) rather than near the data (memory, to show slopes).
    pub y_from_zero: bool,
}

type Svg<'a> = SVGBackend<'a>;
type Plane = Cartesian2d<RangedCoordf64, RangedCoordf64>;

fn chart_error(title: &str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> ChartError + '_ {
    move |e| ChartError {
        title: title.to_owned(),
        problem: e.to_string(),
    }
}

/// The y range of the given lines: from zero (or the data's minimum) to a little above the maximum.
fn y_range(series: &[Series], from_zero: bool) -> (f64, f64) {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !min.is_finite() {
        return (0.0, 1.0);
    }
    let low = if from_zero {
        min.min(0.0)
    } else {
        min - (max - min).max(max.abs() * 0.02) * 0.15
    };
    let high = if max > low {
        max + (max - low) * 0.12
    } else {
        low + 1.0
    };
    (low, high)
}

impl TimeChart {
    /// True when no line has a point (the chart is then not worth drawing).
    pub fn is_empty(&self) -> bool {
        let secondary = self.secondary.iter().flat_map(|s| &s.series);
        self.series
            .iter()
            .chain(secondary)
            .all(|s| s.points.is_empty())
    }

    /// Draws the chart as one `<svg>` element.
    pub fn render_svg(&self) -> Result<String, ChartError> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root).map_err(chart_error(&self.title))?;
            root.present().map_err(chart_error(&self.title))?;
        }
        Ok(svg)
    }

    /// The chart in display units: x in seconds, minutes or hours (by the span), long series decimated.
    fn prepared(&self) -> (TimeChart, &'static str) {
        let (divisor, x_desc) = time_unit(self.x_range.1 - self.x_range.0);
        let scale = |series: &Series| Series {
            points: decimate(&series.points, MAX_POINTS)
                .into_iter()
                .map(|(x, y)| (x / divisor, y))
                .collect(),
            ..series.clone()
        };
        let chart = TimeChart {
            series: self.series.iter().map(scale).collect(),
            secondary: self.secondary.as_ref().map(|a| SecondaryAxis {
                label: a.label.clone(),
                series: a.series.iter().map(scale).collect(),
            }),
            bands: self
                .bands
                .iter()
                .map(|b| Band {
                    start: b.start / divisor,
                    end: b.end / divisor,
                    ..b.clone()
                })
                .collect(),
            x_range: (self.x_range.0 / divisor, self.x_range.1 / divisor),
            ..self.clone()
        };
        (chart, x_desc)
    }

    fn draw(
        &self,
        root: &DrawingArea<Svg<'_>, plotters::coord::Shift>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        let (chart, x_desc) = self.prepared();
        chart.draw_prepared(root, x_desc)
    }

    fn draw_prepared(
        &self,
        root: &DrawingArea<Svg<'_>, plotters::coord::Shift>,
        x_desc: &str,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        root.fill(&WHITE)?;
        let (x0, x1) = if self.x_range.1 > self.x_range.0 {
            self.x_range
        } else {
            (self.x_range.0, self.x_range.0 + 1.0)
        };
        let (y0, y1) = y_range(&self.series, self.y_from_zero);
        let secondary_series = self.secondary.as_ref().map_or(&[][..], |s| &s.series[..]);
        let (s0, s1) = y_range(secondary_series, true);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20).into_font().color(&BLACK))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(78)
            .right_y_label_area_size(78)
            .build_cartesian_2d(x0..x1, y0..y1)?
            .set_secondary_coord(x0..x1, s0..s1);
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(&self.y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 13))
            .y_label_formatter(&|v| crate::format::significant(*v))
            .x_label_formatter(&|v| crate::format::significant(*v))
            .draw()?;
        draw_bands(&mut chart, &self.bands, (y0, y1))?;
        for series in &self.series {
            draw_line(&mut chart, series)?;
        }
        if let Some(axis) = &self.secondary {
            chart
                .configure_secondary_axes()
                .y_desc(&axis.label)
                .axis_desc_style(("sans-serif", 15))
                .label_style(("sans-serif", 13))
                .y_label_formatter(&|v| crate::format::significant(*v))
                .draw()?;
            for series in &axis.series {
                let style = ShapeStyle::from(series.color).stroke_width(2);
                chart
                    .draw_secondary_series(LineSeries::new(series.points.iter().copied(), style))?
                    .label(format!("{} (right axis)", series.label))
                    .legend(legend_swatch(series.color));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .draw()
    }
}

/// Most points drawn per line: enough for a 1100 px wide chart, small enough that an 8-hour soak sampled every
/// second stays a light SVG.
pub const MAX_POINTS: usize = 1600;

/// The x unit for a time span in seconds: (divisor, axis description).
pub fn time_unit(span_secs: f64) -> (f64, &'static str) {
    match span_secs {
        s if s > 3.0 * 3600.0 => (3600.0, "hours since start"),
        s if s > 20.0 * 60.0 => (60.0, "minutes since start"),
        _ => (1.0, "seconds since start"),
    }
}

/// Min/max decimation to at most `max_points` points: each bucket keeps its lowest and highest point, in x
/// order, so spikes and dips survive (averaging would hide exactly what a person looks for).
pub fn decimate(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points || max_points < 2 {
        return points.to_vec();
    }
    let bucket = points.len().div_ceil(max_points / 2);
    let mut out = Vec::with_capacity(max_points);
    for chunk in points.chunks(bucket) {
        let min = chunk.iter().min_by(|a, b| a.1.total_cmp(&b.1)).copied();
        let max = chunk.iter().max_by(|a, b| a.1.total_cmp(&b.1)).copied();
        if let (Some(min), Some(max)) = (min, max) {
            let (first, second) = if min.0 <= max.0 {
                (min, max)
            } else {
                (max, min)
            };
            out.push(first);
            if second != first {
                out.push(second);
            }
        }
    }
    out
}

fn legend_swatch(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| {
        PathElement::new(
            vec![(x, y), (x + 18, y)],
            ShapeStyle::from(color).stroke_width(3),
        )
    }
}

fn draw_line<'a>(
    chart: &mut DualCoordChartContext<'a, Svg<'a>, Plane, Plane>,
    series: &Series,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let points = series.points.iter().copied();
    let anno = if series.dashed {
        let style = ShapeStyle::from(series.color).stroke_width(3);
        chart.draw_series(DashedLineSeries::new(points, 10, 6, style))?
    } else {
        let style = ShapeStyle::from(series.color).stroke_width(2);
        chart.draw_series(LineSeries::new(points, style))?
    };
    anno.label(series.label.as_str())
        .legend(legend_swatch(series.color));
    Ok(())
}

fn draw_bands<'a>(
    chart: &mut DualCoordChartContext<'a, Svg<'a>, Plane, Plane>,
    bands: &[Band],
    (y0, y1): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let label_style = TextStyle::from(("sans-serif", 13).into_font()).color(&palette::GREY);
    for band in bands {
        let fill = band.kind.fill().filled();
        chart.draw_series(std::iter::once(Rectangle::new(
            [(band.start, y0), (band.end, y1)],
            fill,
        )))?;
        let at = (band.start, y0 + (y1 - y0) * 0.06);
        let text_style = match band.kind {
            BandKind::Fault => label_style.clone().color(&palette::RED),
            _ => label_style.clone(),
        };
        chart.draw_series(std::iter::once(Text::new(
            format!(" {}", band.label),
            at,
            text_style,
        )))?;
    }
    Ok(())
}

/// How a category chart draws its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryStyle {
    /// One bar per category (only the first series is drawn; colours per bar come from `bar_colors`).
    Bars,
    /// One line per series across the categories.
    Lines,
}

/// Values over named categories.
#[derive(Debug, Clone)]
pub struct CategoryChart {
    /// Caption.
    pub title: String,
    /// Y axis description with unit.
    pub y_label: String,
    /// X axis description.
    pub x_label: String,
    /// Category names, in x order.
    pub categories: Vec<String>,
    /// Series; point `x` is the category index.
    pub series: Vec<Series>,
    /// Bars or lines.
    pub style: CategoryStyle,
    /// For bars: one colour per category (falls back to the series colour).
    pub bar_colors: Vec<RGBColor>,
}

impl CategoryChart {
    /// True when there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() || self.series.iter().all(|s| s.points.is_empty())
    }

    /// Draws the chart as one `<svg>` element.
    pub fn render_svg(&self) -> Result<String, ChartError> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root).map_err(chart_error(&self.title))?;
            root.present().map_err(chart_error(&self.title))?;
        }
        Ok(svg)
    }

    fn draw(
        &self,
        root: &DrawingArea<Svg<'_>, plotters::coord::Shift>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        root.fill(&WHITE)?;
        let n = self.categories.len().max(1) as f64;
        let (y0, y1) = y_range(&self.series, true);
        let categories = self.categories.clone();
        let label_of = move |v: &f64| {
            let i = v.round();
            let exact = (v - i).abs() < 1e-6 && i >= 0.0;
            exact
                .then(|| categories.get(i as usize).cloned())
                .flatten()
                .unwrap_or_default()
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20).into_font().color(&BLACK))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(78)
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)?;
        chart
            .configure_mesh()
            .x_labels(self.categories.len().max(1))
            .x_label_formatter(&label_of)
            .disable_x_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 13))
            .y_label_formatter(&|v| crate::format::significant(*v))
            .draw()?;
        match self.style {
            CategoryStyle::Bars => self.draw_bars(&mut chart),
            CategoryStyle::Lines => self.draw_lines(&mut chart),
        }
    }

    fn draw_bars<'a>(
        &self,
        chart: &mut ChartContext<'a, Svg<'a>, Plane>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        let Some(series) = self.series.first() else {
            return Ok(());
        };
        let value_style = TextStyle::from(("sans-serif", 14).into_font()).color(&BLACK);
        for &(x, y) in &series.points {
            let color = self
                .bar_colors
                .get(x.round() as usize)
                .copied()
                .unwrap_or(series.color);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.32, 0.0), (x + 0.32, y)],
                color.filled(),
            )))?;
            let text = Text::new(
                crate::format::significant(y),
                (x - 0.1, y),
                value_style.clone(),
            );
            chart.draw_series(std::iter::once(text))?;
        }
        Ok(())
    }

    fn draw_lines<'a>(
        &self,
        chart: &mut ChartContext<'a, Svg<'a>, Plane>,
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
        for series in &self.series {
            let style = ShapeStyle::from(series.color).stroke_width(2);
            let points = series.points.iter().copied();
            let anno = if series.dashed {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?
            } else {
                chart.draw_series(LineSeries::new(points, style).point_size(3))?
            };
            anno.label(series.label.as_str())
                .legend(legend_swatch(series.color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .draw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(bands: Vec<Band>) -> TimeChart {
        TimeChart {
            title: "Throughput".into(),
            y_label: "req/s".into(),
            series: vec![Series::line(
                "req/s",
                palette::BLUE,
                vec![(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)],
            )],
            secondary: Some(SecondaryAxis {
                label: "users".into(),
                series: vec![Series::line(
                    "users",
                    palette::ORANGE,
                    vec![(0.0, 5.0), (2.0, 5.0)],
                )],
            }),
            bands,
            x_range: (0.0, 2.0),
            y_from_zero: true,
        }
    }

    #[test]
    fn time_chart_svg_has_lines_legend_and_bands() {
        let svg = chart(vec![Band {
            start: 0.5,
            end: 1.5,
            label: "k2 429".into(),
            kind: BandKind::Fault,
        }])
        .render_svg()
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50]);
        assert!(svg.matches("<polyline").count() >= 2, "both lines drawn");
        assert!(svg.contains("k2 429") && svg.contains("users (right axis)"));
        assert!(svg.contains("opacity=\"0.13\""), "fault band shaded");
    }

    #[test]
    fn decimation_is_bounded_ordered_and_keeps_spikes() {
        let mut points: Vec<(f64, f64)> = (0..28_800).map(|i| (i as f64, (i % 7) as f64)).collect();
        points[12_345].1 = 1000.0;
        let out = decimate(&points, MAX_POINTS);
        assert!(out.len() <= MAX_POINTS, "{}", out.len());
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert!(out.contains(&(12_345.0, 1000.0)), "spike kept");
        assert_eq!(decimate(&points[..10], MAX_POINTS), points[..10].to_vec());
    }

    #[test]
    fn time_unit_table() {
        for (span, desc) in [
            (60.0, "seconds since start"),
            (1200.0, "seconds since start"),
            (3600.0, "minutes since start"),
            (8.0 * 3600.0, "hours since start"),
        ] {
            assert_eq!(time_unit(span).1, desc, "{span}");
        }
    }

    #[test]
    fn long_runs_are_drawn_in_hours_and_light() {
        let points: Vec<(f64, f64)> = (0..28_800)
            .map(|i| (i as f64, 40.0 + (i as f64).sin()))
            .collect();
        let mut long = chart(vec![Band {
            start: 3600.0,
            end: 7200.0,
            label: "fault".into(),
            kind: BandKind::Fault,
        }]);
        long.series = vec![Series::line("rss", palette::BLUE, points)];
        long.secondary = None;
        long.x_range = (0.0, 28_800.0);
        let svg = long.render_svg().unwrap();
        assert!(svg.contains("hours since start"));
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
    }

    #[test]
    fn y_range_table() {
        let s = |v: &[f64]| {
            vec![Series::line(
                "x",
                palette::BLUE,
                v.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect(),
            )]
        };
        for (values, from_zero, low_max, high_min) in [
            (vec![], true, 0.0, 0.5),
            (vec![5.0, 10.0], true, 0.0, 10.0),
            (vec![100.0, 110.0], false, 100.0, 110.0),
            (vec![0.0, 0.0], true, 0.0, 0.5),
        ] {
            let (lo, hi) = y_range(&s(&values), from_zero);
            assert!(lo <= low_max && hi > high_min, "{values:?}: {lo}..{hi}");
        }
    }

    #[test]
    fn empty_charts_are_detected() {
        let mut c = chart(Vec::new());
        assert!(!c.is_empty());
        c.series[0].points.clear();
        c.secondary = None;
        assert!(c.is_empty());
    }
}
