//! The live progress line: elapsed/total, users, req/s, p50/p95/p99, errors by class.
//!
//! On a terminal it is an indicatif line redrawn every interval; elsewhere (CI logs) a plain line every
//! [`PLAIN_EVERY`] intervals, so logs stay readable.

use load_stats::{HistoryRow, StatusClass};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

/// Intervals between two plain (non-terminal) progress lines.
const PLAIN_EVERY: u64 = 10;

/// Live progress output.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: Duration,
    errors: BTreeMap<StatusClass, u64>,
    ticks: u64,
    resources: Option<String>,
}

/// Engine counters shown beside the interval figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveCounters {
    /// Active users (closed) or requests in flight (open).
    pub users: u32,
    /// Sends late for the generator's own reasons so far (open model).
    pub late: u64,
    /// Sends that waited for a free in-flight slot so far (open model: `max_in_flight` reached).
    pub slot_late: u64,
}

impl Progress {
    /// A progress line for a run of `total`; `quiet` disables it.
    pub fn new(total: Duration, quiet: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(total.as_secs().max(1));
            let style = indicatif::ProgressStyle::with_template("{bar:20} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            plain: !quiet && !terminal,
            total,
            errors: BTreeMap::new(),
            ticks: 0,
            resources: None,
        }
    }

    /// The proxy's latest resource figures (shown at the end of the line).
    pub fn set_resources(&mut self, text: Option<String>) {
        self.resources = text;
    }

    /// Shows one closed interval.
    pub fn update(&mut self, elapsed: Duration, row: &HistoryRow, live: LiveCounters) {
        for (class, n) in &row.failures_by_class {
            *self.errors.entry(*class).or_default() += n;
        }
        self.ticks += 1;
        let mut line = line(elapsed, self.total, row, live, &self.errors);
        if let Some(r) = &self.resources {
            line.push_str(" | ");
            line.push_str(r);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_secs());
            bar.set_message(line);
        } else if self.plain && self.ticks.is_multiple_of(PLAIN_EVERY) {
            eprintln!("{line}");
        }
    }

    /// Removes the live line (before the final report is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One progress line (pure).
pub fn line(
    elapsed: Duration,
    total: Duration,
    row: &HistoryRow,
    live: LiveCounters,
    errors: &BTreeMap<StatusClass, u64>,
) -> String {
    let pct = match &row.percentiles {
        Some(p) => format!("p50 {:.1} p95 {:.1} p99 {:.1} ms", p.p50, p.p95, p.p99),
        None => "p50 - p95 - p99 - ms".to_string(),
    };
    let errs = if errors.is_empty() {
        "errors 0".to_string()
    } else {
        let parts: Vec<String> = errors
            .iter()
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        format!("errors {}", parts.join(", "))
    };
    let mut late = String::new();
    if live.late > 0 {
        late.push_str(&format!(" | late {}", live.late));
    }
    if live.slot_late > 0 {
        late.push_str(&format!(" | waited for a slot {}", live.slot_late));
    }
    format!(
        "{:>4}s/{}s | users {} | {:.1} req/s | {pct} | {errs}{late}",
        elapsed.as_secs(),
        total.as_secs(),
        live.users,
        row.requests_per_sec
    )
}
