//! One compared figure ([`Delta`]) and the rule that judges it against its [`Budget`]; the overall verdicts
//! ([`VerdictChange`]) and the behaviour checks' outcomes ([`CheckChange`]) of both runs.

use serde::Serialize;

use crate::format::{self, NOT_AVAILABLE};

/// Whether a higher value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput, fairness, masking.
    Higher,
    /// Latency, errors, memory, violations, recovery time.
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
    /// Absolute change in the metric's own unit (fairness index, violation count).
    Absolute(f64),
    /// Relative change, percent of the baseline, but never less than an absolute change in the metric's unit:
    /// for figures whose baseline is often near zero, where a percentage of it is noise.
    PercentAtLeast {
        /// Percent of the baseline.
        percent: f64,
        /// The smallest change that counts, in the metric's unit.
        at_least: f64,
    },
}

/// A change smaller than this (in the metric's unit) is "same" for absolute budgets.
const ABSOLUTE_DEAD_BAND: f64 = 0.01;
/// A change smaller than this (percent of the baseline) is "same" for relative budgets.
const PERCENT_DEAD_BAND: f64 = 1.0;
/// Floating-point slack so a change of exactly the budget is within it.
const EPSILON: f64 = 1e-9;

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    /// What (`p95 latency`, `TTFT p95 · chat stream`, `key fairness`).
    pub metric: String,
    /// Unit of the values (`ms`, `req/s`, `%`, `bytes`, `bytes/h`, `` for ratios and counts).
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
    /// Why this figure was not compared (absent or not judged on a side); such a figure is never a regression.
    pub not_compared: Option<String>,
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

    pub(super) fn change_text(&self) -> String {
        match self.budget {
            Some(Budget::Points(_)) => self
                .change()
                .map_or(NOT_AVAILABLE.into(), |d| format!("{d:+.2} pp")),
            Some(Budget::Absolute(_)) => self.change().map_or(NOT_AVAILABLE.into(), signed),
            _ => match (self.change_percent(), self.change()) {
                (Some(p), _) => format!("{p:+.1} %"),
                (None, Some(0.0)) => "±0".into(),
                (None, Some(d)) => format!("{d:+} (from 0)"),
                (None, None) => NOT_AVAILABLE.into(),
            },
        }
    }

    pub(super) fn budget_text(&self) -> String {
        let sign = if self.better == Better::Higher {
            "-"
        } else {
            "+"
        };
        match self.budget {
            None => "-".into(),
            Some(Budget::Percent(p)) => format!("{sign}{} %", format::significant(p)),
            Some(Budget::Points(p)) => format!("{sign}{} pp", format::significant(p)),
            Some(Budget::Absolute(a)) => format!("{sign}{}", format::significant(a)),
            Some(Budget::PercentAtLeast { percent, at_least }) => format!(
                "{sign}{} % (min {})",
                format::significant(percent),
                format::with_unit(Some(at_least), &self.unit)
            ),
        }
    }

    pub(super) fn result_text(&self) -> &'static str {
        match (
            self.regressed,
            &self.not_compared,
            self.budget,
            self.direction,
        ) {
            (true, _, _, _) => "REGRESSED",
            (false, Some(_), _, _) => "not compared",
            (false, None, _, Direction::NotAvailable) => NOT_AVAILABLE,
            (false, None, Some(_), _) => "ok",
            (false, None, None, _) => "-",
        }
    }
}

/// `+0.12`, `-3`, `±0`.
fn signed(change: f64) -> String {
    match change {
        c if c > 0.0 => format!("+{}", format::significant(c)),
        c if c < 0.0 => format::significant(c),
        _ => "±0".into(),
    }
}

/// Compares `baseline` and `current` of one figure: direction with a dead band, regression by the budget only.
pub(super) fn judge(
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
        not_compared: None,
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
        Some(Budget::Points(_) | Budget::Absolute(_)) => (worse_by, ABSOLUTE_DEAD_BAND),
        _ => (worse_percent, PERCENT_DEAD_BAND),
    };
    delta.direction = match worse_amount {
        w if w > dead_band => Direction::Worse,
        w if w < -dead_band => Direction::Better,
        _ => Direction::Same,
    };
    delta.regressed = match budget {
        Some(Budget::Percent(limit)) => worse_percent > limit + EPSILON,
        Some(Budget::Points(limit) | Budget::Absolute(limit)) => worse_by > limit + EPSILON,
        Some(Budget::PercentAtLeast { percent, at_least }) => {
            worse_by > (percent / 100.0 * b.abs()).max(at_least) + EPSILON
        }
        None => false,
    };
    delta
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
    /// Compares two verdicts (`None`: absent); a worse one regresses when `must_not_worsen`.
    pub(super) fn new(
        baseline: Option<String>,
        current: Option<String>,
        must_not_worsen: bool,
    ) -> Self {
        let regressed = match (&baseline, &current) {
            (Some(b), Some(c)) => must_not_worsen && severity(c) > severity(b),
            _ => false,
        };
        let text = |v: Option<String>| v.unwrap_or_else(|| NOT_AVAILABLE.into());
        VerdictChange {
            baseline: text(baseline),
            current: text(current),
            regressed,
        }
    }

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

/// The outcome of one behaviour check (`fairness`, `recovery [after the load peak]`, ...) in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckChange {
    /// The check's name with its subject (fault window) if any: `failover_masking [key2 rate-limited]`.
    pub check: String,
    /// Outcome in the baseline (`pass`, `fail`, `skipped`, `inconclusive`), `None` when the check is absent.
    pub baseline: Option<String>,
    /// Outcome in the current run.
    pub current: Option<String>,
    /// PASS in the baseline and FAIL now (or streams passed through and are buffered now), and the budget
    /// forbids it.
    pub regressed: bool,
    /// The rule shown in the budget column (`pass stays pass`, `-` when turned off).
    pub rule: &'static str,
    /// Why the outcomes were not compared: the check is in one run only, or skipped or inconclusive on a side.
    pub not_compared: Option<String>,
}

impl CheckChange {
    /// Better/worse: fail (buffered) is worse than anything else, pass (pass-through) better than anything else;
    /// `n/a` when not compared.
    pub fn direction(&self) -> Direction {
        let rank = |outcome: &str| match outcome {
            "pass" | "pass_through" => 0,
            "fail" | "buffered" => 2,
            _ => 1,
        };
        if self.not_compared.is_some() {
            return Direction::NotAvailable;
        }
        match (self.baseline.as_deref(), self.current.as_deref()) {
            (Some(b), Some(c)) => match rank(c).cmp(&rank(b)) {
                std::cmp::Ordering::Less => Direction::Better,
                std::cmp::Ordering::Equal => Direction::Same,
                std::cmp::Ordering::Greater => Direction::Worse,
            },
            _ => Direction::NotAvailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_table() {
        let pct = |p| Some(Budget::Percent(p));
        let at_least = |percent, at_least| Some(Budget::PercentAtLeast { percent, at_least });
        #[rustfmt::skip]
        let cases = [
            // (baseline, current, better, budget, direction, regressed)
            (100.0, 95.0, Better::Higher, pct(10.0), Direction::Worse, false),
            (100.0, 85.0, Better::Higher, pct(10.0), Direction::Worse, true),
            (100.0, 130.0, Better::Higher, pct(10.0), Direction::Better, false),
            (100.0, 100.5, Better::Lower, pct(10.0), Direction::Same, false),
            (100.0, 111.0, Better::Lower, pct(10.0), Direction::Worse, true),
            (100.0, 111.0, Better::Lower, None, Direction::Worse, false),
            (0.2, 0.6, Better::Lower, Some(Budget::Points(0.5)), Direction::Worse, false),
            (0.2, 0.8, Better::Lower, Some(Budget::Points(0.5)), Direction::Worse, true),
            (0.0, 5.0, Better::Lower, pct(10.0), Direction::Worse, true),
            // Fairness: an absolute drop of the index.
            (0.86, 0.80, Better::Higher, Some(Budget::Absolute(0.1)), Direction::Worse, false),
            (0.86, 0.76, Better::Higher, Some(Budget::Absolute(0.1)), Direction::Worse, false),
            (0.86, 0.33, Better::Higher, Some(Budget::Absolute(0.1)), Direction::Worse, true),
            (0.995, 0.999, Better::Higher, Some(Budget::Absolute(0.1)), Direction::Same, false),
            // Violations: the baseline plus an allowance.
            (0.0, 5.0, Better::Lower, Some(Budget::Absolute(5.0)), Direction::Worse, false),
            (0.0, 6.0, Better::Lower, Some(Budget::Absolute(5.0)), Direction::Worse, true),
            (40.0, 2.0, Better::Lower, Some(Budget::Absolute(5.0)), Direction::Better, false),
            // Recovery (ms): +50 %, at least +1 s.
            (2000.0, 2900.0, Better::Lower, at_least(50.0, 1000.0), Direction::Worse, false),
            (2000.0, 3100.0, Better::Lower, at_least(50.0, 1000.0), Direction::Worse, true),
            (4000.0, 5900.0, Better::Lower, at_least(50.0, 1000.0), Direction::Worse, false),
            (4000.0, 6100.0, Better::Lower, at_least(50.0, 1000.0), Direction::Worse, true),
            (0.0, 1000.0, Better::Lower, at_least(50.0, 1000.0), Direction::Worse, false),
            // TTFT overhead (ms): +50 %, at least +20 ms.
            (15.8, 27.3, Better::Lower, at_least(50.0, 20.0), Direction::Worse, false),
            (3.1, 23.2, Better::Lower, at_least(50.0, 20.0), Direction::Worse, true),
            (60.0, 89.0, Better::Lower, at_least(50.0, 20.0), Direction::Worse, false),
            (60.0, 91.0, Better::Lower, at_least(50.0, 20.0), Direction::Worse, true),
        ];
        for (baseline, current, better, budget, direction, regressed) in cases {
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
    fn budget_and_change_texts() {
        let fairness = judge(
            "key fairness".into(),
            "",
            Some(0.86),
            Some(0.33),
            Better::Higher,
            Some(Budget::Absolute(0.1)),
        );
        let recovery = judge(
            "recovery".into(),
            "ms",
            Some(2000.0),
            Some(4000.0),
            Better::Lower,
            Some(Budget::PercentAtLeast {
                percent: 50.0,
                at_least: 1000.0,
            }),
        );
        assert_eq!(
            [
                fairness.change_text(),
                fairness.budget_text(),
                recovery.change_text(),
                recovery.budget_text()
            ],
            ["-0.530", "-0.100", "+100.0 %", "+50 % (min 1000 ms)"]
        );
    }
}
