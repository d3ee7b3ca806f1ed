//! # run-report — reports people look at
//!
//! A nightly soak is read by a person the next morning, usually from a CI artifact and offline. This crate turns a
//! finished run's results directory into:
//! - one self-contained HTML file with charts and tables ([`render_html`] over a [`ReportInput`]): no network
//!   needed to open it, charts drawn with plotters to inline SVG, laid out by a minijinja template;
//! - a baseline comparison of two runs, or of two suite directories run by run, with a regression budget over
//!   load and proxy-behaviour figures ([`compare_paths`], [`compare()`]), printable as a terminal table or as
//!   markdown for a PR comment;
//! - JUnit XML ([`junit::render`]) so CI systems show each threshold and verdict as a test case.
//!
//! ## Layout
//! - [`input`]: reading a results directory (`summary.json`, `<prefix>_stats_history.csv`, `resources.csv`,
//!   `timeline.csv`, `ledger.json`), tolerant of absent optional files.
//! - [`charts`]: plotters → SVG time charts (fault windows and phases shaded) and category charts.
//! - [`html`]: the view model and the embedded template.
//! - [`mod@compare`]: deltas, directions, the [`compare::RegressionBudget`], suites.
//! - [`junit`]: the JUnit XML renderer (one run, or a whole suite).
//! - [`suite`]: a suite directory's index (`suite.json`, `report.html`).
//! - [`leak_judging`]: whether resource verdicts counted (`judge_leaks`), and how every renderer says so.
//! - [`mod@format`]: number formatting with units, shared by all renderers.
//! - `browser` (feature `test-support`): headless Chromium as the check that a report really renders, for tests.

#[cfg(feature = "test-support")]
pub mod browser;
pub mod charts;
pub mod compare;
pub mod error;
pub mod format;
pub mod html;
pub mod input;
pub mod junit;
pub mod leak_judging;
pub mod suite;

pub use compare::{
    compare, compare_files, compare_paths, CompareOutcome, Comparison, RegressionBudget,
    SuiteComparison,
};
pub use error::ReportError;
pub use html::{render_html, write_report};
pub use input::ReportInput;
