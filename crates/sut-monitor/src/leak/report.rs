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
        writeln!(
            out,
            "{:<12} {:<13} {:>14} {:>27} {:>14} {:>8} {:>14} {:>12}",
            "metric",
            "verdict",
            "slope",
            "confidence interval",
            "limit",
            "p",
            "final quarter",
            "peak"
        )?;
        let total = if self.replicas.is_empty() {
            ""
        } else {
            " (total)"
        };
        for m in &self.metrics {
            write_row(out, m, total)?;
        }
        for replica in &self.replicas {
            let name = format!(" ({})", replica.replica);
            for m in &replica.report.metrics {
                write_row(out, m, &name)?;
            }
        }
        for reason in &self.reasons {
            writeln!(out, "  - {reason}")?;
        }
        Ok(())
    }
}

fn write_row(out: &mut impl Write, m: &MetricReport, replica: &str) -> io::Result<()> {
    let unit = Unit::of(m.metric);
    let name = format!("{}{replica}", m.metric.name());
    let peak = unit.amount(m.peak.peak);
    let Some(n) = &m.trend.numbers else {
        let verdict = m.verdict.as_str();
        return writeln!(
            out,
            "{name:<12} {verdict:<13} {:>14} {:>27} {:>14} {:>8} {:>14} {peak:>12}",
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
        "{name:<12} {:<13} {:>14} {:>27} {:>14} {:>8.1e} {:>14} {peak:>12}",
        m.verdict.as_str(),
        unit.rate(n.slope_per_hour),
        ci,
        unit.rate(n.limit_per_hour),
        n.p_value,
        unit.rate(n.final_quarter_slope_per_hour),
    )
}
