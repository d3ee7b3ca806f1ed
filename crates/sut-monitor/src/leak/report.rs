//! The human verdict table (what `watch` and `harness run` print at the end).

use std::io::{self, Write};

use super::trend::Unit;
use super::{LeakReport, MetricReport};

impl LeakReport {
    /// Writes the verdict table: overall verdict and reasons, then one row per metric with its numbers.
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
        for m in &self.metrics {
            write_row(out, m)?;
        }
        for reason in &self.reasons {
            writeln!(out, "  - {reason}")?;
        }
        Ok(())
    }
}

fn write_row(out: &mut impl Write, m: &MetricReport) -> io::Result<()> {
    let unit = Unit::of(m.metric);
    let peak = unit.amount(m.peak.peak);
    let Some(n) = &m.trend.numbers else {
        let (name, verdict) = (m.metric.name(), m.verdict.as_str());
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
        "{:<12} {:<13} {:>14} {:>27} {:>14} {:>8.1e} {:>14} {peak:>12}",
        m.metric.name(),
        m.verdict.as_str(),
        unit.rate(n.slope_per_hour),
        ci,
        unit.rate(n.limit_per_hour),
        n.p_value,
        unit.rate(n.final_quarter_slope_per_hour),
    )
}
