//! A [`Comparison`] as a fixed-width terminal table or a GitHub-flavoured markdown table, each followed by the
//! rows that were not compared (with why) and a one-line conclusion.

use std::fmt::Write as _;

use super::delta::{CheckChange, Direction};
use super::Comparison;
use crate::format::{self, NOT_AVAILABLE};

const HEADER: [&str; 7] = [
    "metric",
    "baseline",
    "current",
    "change",
    "direction",
    "budget",
    "result",
];

type Row = [String; 7];

impl CheckChange {
    fn row(&self) -> Row {
        let outcome = |o: &Option<String>| o.clone().unwrap_or_else(|| NOT_AVAILABLE.into());
        let result = match (self.regressed, &self.not_compared, self.direction()) {
            (true, _, _) => "REGRESSED",
            (false, Some(_), _) => "not compared",
            (false, None, Direction::NotAvailable) => NOT_AVAILABLE,
            (false, None, _) => "ok",
        };
        [
            self.check.clone(),
            outcome(&self.baseline),
            outcome(&self.current),
            "-".into(),
            self.direction().as_str().into(),
            self.rule.into(),
            result.into(),
        ]
    }
}

impl Comparison {
    fn rows(&self) -> Vec<Row> {
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
        let checks = self.checks.iter().map(CheckChange::row);
        std::iter::once(verdict)
            .chain(figures)
            .chain(checks)
            .collect()
    }

    /// A fixed-width table for the terminal, the rows not compared with why, and a closing one-line conclusion.
    pub fn to_table(&self) -> String {
        let mut out = text_table(&self.rows());
        let not_compared = self.not_compared();
        if !not_compared.is_empty() {
            let _ = writeln!(out, "Not compared:");
            for line in not_compared {
                let _ = writeln!(out, "  - {line}");
            }
        }
        let _ = writeln!(out, "{}", self.conclusion());
        out
    }

    /// A GitHub-flavoured markdown table for a PR comment.
    pub fn to_markdown(&self) -> String {
        format!(
            "### Load test: comparison with baseline\n\n{}",
            self.markdown_body()
        )
    }

    /// The markdown without its title: conclusion, table, rows not compared.
    pub(super) fn markdown_body(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", self.conclusion());
        let _ = writeln!(out, "| {} |", HEADER.join(" | "));
        let _ = writeln!(out, "|:--|--:|--:|--:|:--|--:|:--|");
        for row in self.rows() {
            let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
            let mut line = cells.join(" | ");
            if row[6] == "REGRESSED" {
                line = line.replace("REGRESSED", "❌ **REGRESSED**");
            }
            let _ = writeln!(out, "| {line} |");
        }
        let not_compared = self.not_compared();
        if !not_compared.is_empty() {
            let _ = writeln!(out, "\nNot compared:\n");
            for line in not_compared {
                let _ = writeln!(out, "- {}", escape(&line));
            }
        }
        out
    }
}

/// `|` would end a markdown table cell.
pub(super) fn escape(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// Header and rows, columns padded to the widest cell; the first column left-aligned, the others right-aligned.
fn text_table(rows: &[Row]) -> String {
    let header = HEADER.map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
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
    out
}
