//! The human verdict table (what `watch` and `harness run` print at the end).

use std::io::{self, Write};

use super::trend::Unit;
use super::{LeakReport, MetricReport};

impl LeakReport {
    /// Writes the verdict table: overall verdict, one row per metric with its numbers (with several replicas: the
    /// total's rows, then each replica's, the replica named after the metric), then the reasons.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let s = &self.sampling;
        writeln!(
            out,
            "Resource verdict: {}  (steady {:.0} s, {} samples every {:.1} s, max gap {:.1} s, monitor cost {:.2} % of a core)",
            self.verdict, s.steady_secs, s.samples, s.interval_secs, s.max_gap_secs, s.monitor_cpu_percent
        )?;
        let total = if self.replicas.is_empty() {
            String::new()
        } else {
            " (total)".to_string()
        };
        let rows: Vec<(&MetricReport, String)> = self
            .metrics
            .iter()
            .map(|m| (m, format!("{}{total}", m.metric.name())))
            .chain(self.replicas.iter().flat_map(|replica| {
                replica
                    .report
                    .metrics
                    .iter()
                    .map(move |m| (m, format!("{} ({})", m.metric.name(), replica.replica)))
            }))
            .collect();
        let width = rows
            .iter()
            .map(|(_, name)| name.len())
            .max()
            .unwrap_or(0)
            .max(12);
        writeln!(
            out,
            "{:<width$} {:<13} {:>14} {:>27} {:>14} {:>8} {:>14} {:>12}",
            "metric",
            "verdict",
            "slope",
            "confidence interval",
            "limit",
            "p",
            "final quarter",
            "peak"
        )?;
        for (m, name) in &rows {
            write_row(out, m, name, width)?;
        }
        for reason in &self.reasons {
            writeln!(out, "  - {reason}")?;
        }
        Ok(())
    }
}

fn write_row(out: &mut impl Write, m: &MetricReport, name: &str, width: usize) -> io::Result<()> {
    let unit = Unit::of(m.metric);
    let peak = unit.amount(m.peak.peak);
    let Some(n) = &m.trend.numbers else {
        let verdict = m.verdict.as_str();
        return writeln!(
            out,
            "{name:<width$} {verdict:<13} {:>14} {:>27} {:>14} {:>8} {:>14} {peak:>12}",
            "-", "-", "-", "-", "-"
        );
    };
    let ci = format!(
        "{} .. {}",
        unit.rate(n.slope_ci_per_hour[0]),
        unit.rate(n.slope_ci_per_hour[1])
    );
    writeln!(
        out,
        "{name:<width$} {:<13} {:>14} {:>27} {:>14} {:>8.1e} {:>14} {peak:>12}",
        m.verdict.as_str(),
        unit.rate(n.slope_per_hour),
        ci,
        unit.rate(n.limit_per_hour),
        n.p_value,
        unit.rate(n.final_quarter_slope_per_hour),
    )
}
