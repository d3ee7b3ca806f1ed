//! Behaviour thresholds (a scenario's `[behaviour]` table) and their evaluation against measurements.
//!
//! Every limit is optional: an unset limit produces no verdict, so a scenario only gates on what it cares about.
//! The one exception is stream buffering, which is flagged whenever streams were measured unless the scenario
//! says `allow_buffered_streams = true` — a buffering proxy breaks every streaming client, so it should never
//! pass silently. A limit that is set but has nothing to judge (no streams, streams too short to show buffering,
//! no upstream failures in a window, no pre-fault baseline) yields a `skipped` verdict that says why, never a
//! silent pass; one measured on data that cannot tell a pass from a failure (an unsteady baseline) yields an
//! `inconclusive` verdict, which makes a run that would pass INCONCLUSIVE. A scenario names the checks that are
//! its point in `required_checks`: one of them skipped, inconclusive or not judged makes the run INCONCLUSIVE too.

use crate::distribution::{KeyDistribution, KeyReportComparison};
use crate::exhausted::ExhaustedAnswers;
use crate::masking::FailoverMasking;
use crate::recovery::{Recovery, RecoveryOutcome};
use crate::retry_after::RetryAfterCompliance;
use crate::reuse::{ConnectionReuse, MIN_REUSE_REQUESTS};
use crate::serde_units::to_millis;
use crate::streaming::{StreamPassThrough, StreamVerdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Limits on proxy behaviour. TOML example:
/// ```toml
/// [behaviour]
/// min_fairness = 0.9
/// max_retry_after_violations = 0
/// min_masking = 0.9
/// max_recovery = "5s"
/// max_ttft_overhead = "50ms"
/// min_key_report_agreement = 0.95
/// max_exhausted_answer = "1s"
/// min_connection_reuse = 20
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviourThresholds {
    /// Lowest Jain's fairness index over the eligible keys (0..=1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_fairness: Option<f64>,
    /// Most Retry-After violations allowed over the run (races — arrivals within the mock's grace of the 429
    /// that opened the window — do not count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retry_after_violations: Option<u64>,
    /// Lowest failover masking per fault window (0..=1; 0.9 = at most a tenth of the upstream error rate reaches
    /// the client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_masking: Option<f64>,
    /// Longest time to get back to the pre-fault baseline after each window or load peak.
    #[serde(
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_recovery: Option<Duration>,
    /// Most time the proxy may add to the time to first token of streams.
    #[serde(
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_ttft_overhead: Option<Duration>,
    /// Lowest agreement between the keys named in `X-Key-Used` and the keys the upstream saw (0..=1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_key_report_agreement: Option<f64>,
    /// Do not fail the run when streams are buffered.
    pub allow_buffered_streams: bool,
    /// Longest p99 answer time of the requests sent while every eligible key was rate-limited (a proxy should
    /// answer 429 at once, not hold requests until a key recovers).
    #[serde(
        with = "human_duration::serde::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_exhausted_answer: Option<Duration>,
    /// Fewest upstream requests per new upstream connection over the load (at least 1; a proxy that pools
    /// reaches tens or hundreds, one that connects per request stays near 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_connection_reuse: Option<f64>,
    /// The checks that are the scenario's point: when one of them is SKIPPED, INCONCLUSIVE or not judged at
    /// all, a run that would pass is INCONCLUSIVE instead. Each needs its limit set.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "check_names"
    )]
    pub required_checks: Vec<BehaviourCheck>,
    /// The proxy's own key names in `X-Key-Used` → the mock's key ids (`{ "key-1" = "key1" }`), applied before
    /// the reported keys are compared with the ones the mock saw. Names not listed are compared as they are.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub key_names: BTreeMap<String, String>,
}

/// A threshold that cannot be met by any measurement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// A fraction outside 0..=1.
    #[error("behaviour threshold `{field}` = {value} must be between 0 and 1")]
    NotAFraction {
        /// Field name.
        field: &'static str,
        /// Given value.
        value: f64,
    },
    /// A requests-per-connection limit below 1, which every run meets.
    #[error("behaviour threshold `{field}` = {value} must be at least 1 (requests per upstream connection)")]
    BelowOnePerConnection {
        /// Field name.
        field: &'static str,
        /// Given value.
        value: f64,
    },
    /// A required check whose limit is not set, so it would never be judged.
    #[error("behaviour check `{check}` is in `required_checks` but `{limit}` is not set")]
    RequiredWithoutLimit {
        /// The check's name.
        check: &'static str,
        /// The field that would judge it.
        limit: &'static str,
    },
    /// A `key_names` entry that maps to a key the mock does not have.
    #[error(
        "`key_names` maps \"{name}\" to \"{id}\", which is not a mock key id (known: {known})"
    )]
    UnknownMockKey {
        /// The proxy's name.
        name: String,
        /// The mock id it maps to.
        id: String,
        /// The mock's key ids, comma separated.
        known: String,
    },
}

impl ThresholdError {
    /// The `[behaviour]` field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ThresholdError::NotAFraction { field, .. } => field,
            ThresholdError::BelowOnePerConnection { field, .. } => field,
            ThresholdError::RequiredWithoutLimit { .. } => "required_checks",
            ThresholdError::UnknownMockKey { .. } => "key_names",
        }
    }
}

impl BehaviourThresholds {
    /// Whether anything here judges a run: a limit, a required check or buffered streams allowed (key names
    /// alone only change how reports read `X-Key-Used`).
    pub fn sets_a_limit(&self) -> bool {
        let without_names = BehaviourThresholds {
            key_names: BTreeMap::new(),
            ..self.clone()
        };
        without_names != BehaviourThresholds::default()
    }

    /// Check that fractions are fractions (serde cannot); the error names the field.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        let fractions = [
            ("min_fairness", self.min_fairness),
            ("min_masking", self.min_masking),
            ("min_key_report_agreement", self.min_key_report_agreement),
        ];
        if let Some((field, value)) = fractions
            .into_iter()
            .find_map(|(field, v)| v.filter(|v| !(0.0..=1.0).contains(v)).map(|v| (field, v)))
        {
            return Err(ThresholdError::NotAFraction { field, value });
        }
        if let Some(value) = self.min_connection_reuse.filter(|v| !(1.0..).contains(v)) {
            return Err(ThresholdError::BelowOnePerConnection {
                field: "min_connection_reuse",
                value,
            });
        }
        match self
            .required_checks
            .iter()
            .find(|check| !self.judges(**check))
        {
            Some(check) => Err(ThresholdError::RequiredWithoutLimit {
                check: check.name(),
                limit: check.limit_field(),
            }),
            None => Ok(()),
        }
    }

    /// Whether a limit that judges `check` is set.
    fn judges(&self, check: BehaviourCheck) -> bool {
        match check {
            BehaviourCheck::Fairness => self.min_fairness.is_some(),
            BehaviourCheck::KeyReport => self.min_key_report_agreement.is_some(),
            BehaviourCheck::RetryAfter => self.max_retry_after_violations.is_some(),
            BehaviourCheck::FailoverMasking => self.min_masking.is_some(),
            BehaviourCheck::Recovery => self.max_recovery.is_some(),
            BehaviourCheck::TtftOverhead => self.max_ttft_overhead.is_some(),
            BehaviourCheck::StreamBuffering => !self.allow_buffered_streams,
            BehaviourCheck::ExhaustedAnswer => self.max_exhausted_answer.is_some(),
            BehaviourCheck::ConnectionReuse => self.min_connection_reuse.is_some(),
        }
    }

    /// Check that every `key_names` value is one of the mock's key ids; the error names the entry.
    pub fn validate_key_names(&self, mock_ids: &[String]) -> Result<(), ThresholdError> {
        match self.key_names.iter().find(|(_, id)| !mock_ids.contains(id)) {
            Some((name, id)) => Err(ThresholdError::UnknownMockKey {
                name: name.clone(),
                id: id.clone(),
                known: mock_ids.join(", "),
            }),
            None => Ok(()),
        }
    }
}

/// Everything measured about the proxy's behaviour in one run; each part is absent when not measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BehaviourMeasurements {
    /// Per-key distribution and fairness.
    pub distribution: Option<KeyDistribution>,
    /// Reported (`X-Key-Used`) vs seen keys.
    pub key_report: Option<KeyReportComparison>,
    /// Retry-After compliance.
    pub retry_after: Option<RetryAfterCompliance>,
    /// Failover masking, one per fault window.
    pub masking: Vec<FailoverMasking>,
    /// Recovery, one per fault window or load peak.
    pub recovery: Vec<Recovery>,
    /// Stream pass-through.
    pub streams: Option<StreamPassThrough>,
    /// Answer times while every key was rate-limited (measured when `max_exhausted_answer` is set).
    pub exhausted_answer: Option<ExhaustedAnswers>,
    /// Upstream requests per new upstream connection over the load (from the mock's ledger).
    pub connection_reuse: Option<ConnectionReuse>,
}

/// Which behaviour a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BehaviourCheck {
    /// Jain's fairness index vs `min_fairness`.
    Fairness,
    /// `X-Key-Used` agreement vs `min_key_report_agreement`.
    KeyReport,
    /// Retry-After violations vs `max_retry_after_violations`.
    RetryAfter,
    /// Failover masking of one window vs `min_masking`.
    FailoverMasking,
    /// Recovery time of one window vs `max_recovery`.
    Recovery,
    /// TTFT added by the proxy vs `max_ttft_overhead`.
    TtftOverhead,
    /// Buffered streams (unless `allow_buffered_streams`).
    StreamBuffering,
    /// p99 answer time while every key was rate-limited vs `max_exhausted_answer`.
    ExhaustedAnswer,
    /// Upstream requests per new upstream connection vs `min_connection_reuse`.
    ConnectionReuse,
}

/// `required_checks` by name, an unknown name being an error that names the field and the known names.
fn check_names<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<BehaviourCheck>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    names
        .iter()
        .map(|name| {
            BehaviourCheck::ALL
                .into_iter()
                .find(|check| check.name() == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = BehaviourCheck::ALL.map(BehaviourCheck::name).to_vec();
                    serde::de::Error::custom(format!(
                        "required_checks: unknown check `{name}` (known: {})",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

impl BehaviourCheck {
    /// Every check.
    pub const ALL: [BehaviourCheck; 9] = [
        BehaviourCheck::Fairness,
        BehaviourCheck::KeyReport,
        BehaviourCheck::RetryAfter,
        BehaviourCheck::FailoverMasking,
        BehaviourCheck::Recovery,
        BehaviourCheck::TtftOverhead,
        BehaviourCheck::StreamBuffering,
        BehaviourCheck::ExhaustedAnswer,
        BehaviourCheck::ConnectionReuse,
    ];

    /// The snake_case name used in scenarios and `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            BehaviourCheck::Fairness => "fairness",
            BehaviourCheck::KeyReport => "key_report",
            BehaviourCheck::RetryAfter => "retry_after",
            BehaviourCheck::FailoverMasking => "failover_masking",
            BehaviourCheck::Recovery => "recovery",
            BehaviourCheck::TtftOverhead => "ttft_overhead",
            BehaviourCheck::StreamBuffering => "stream_buffering",
            BehaviourCheck::ExhaustedAnswer => "exhausted_answer",
            BehaviourCheck::ConnectionReuse => "connection_reuse",
        }
    }

    /// The `[behaviour]` field whose limit judges this check.
    fn limit_field(self) -> &'static str {
        match self {
            BehaviourCheck::Fairness => "min_fairness",
            BehaviourCheck::KeyReport => "min_key_report_agreement",
            BehaviourCheck::RetryAfter => "max_retry_after_violations",
            BehaviourCheck::FailoverMasking => "min_masking",
            BehaviourCheck::Recovery => "max_recovery",
            BehaviourCheck::TtftOverhead => "max_ttft_overhead",
            BehaviourCheck::StreamBuffering => "allow_buffered_streams = false",
            BehaviourCheck::ExhaustedAnswer => "max_exhausted_answer",
            BehaviourCheck::ConnectionReuse => "min_connection_reuse",
        }
    }
}

/// How a verdict came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictOutcome {
    /// Within the limit.
    Pass,
    /// Outside the limit: fails the run.
    Fail,
    /// A limit is set but there was nothing to judge; `detail` says why. Does not fail the run.
    Skipped,
    /// Measured, but the data cannot tell a pass from a failure (an unsteady baseline, too short a run after
    /// the fault); `detail` says why. Never a pass: a run that would pass is INCONCLUSIVE instead.
    Inconclusive,
}

/// One behaviour verdict: what was measured, against which limit, and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BehaviourVerdict {
    /// The behaviour.
    pub check: BehaviourCheck,
    /// The fault window or recovery label when the check is per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The measured value in `unit` (`None` when skipped).
    pub measured: Option<f64>,
    /// The limit in `unit`.
    pub limit: f64,
    /// `ratio`, `count` or `ms`.
    pub unit: String,
    /// The outcome.
    pub outcome: VerdictOutcome,
    /// One line for people.
    pub detail: String,
}

impl BehaviourVerdict {
    /// True when this verdict fails the run.
    pub fn failed(&self) -> bool {
        self.outcome == VerdictOutcome::Fail
    }

    /// True when this verdict makes a run that would pass INCONCLUSIVE.
    pub fn inconclusive(&self) -> bool {
        self.outcome == VerdictOutcome::Inconclusive
    }
}

/// Measurements and the verdicts on them, as the harness writes them to `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BehaviourReport {
    /// What was measured.
    pub measurements: BehaviourMeasurements,
    /// One verdict per limit set (per window for per-window checks).
    pub verdicts: Vec<BehaviourVerdict>,
    /// One line per required check that was skipped, inconclusive or not judged (see [`unmet_required_checks`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet_required_checks: Vec<String>,
}

impl BehaviourReport {
    /// Evaluate `thresholds` on `measurements` and keep both.
    pub fn new(measurements: BehaviourMeasurements, thresholds: &BehaviourThresholds) -> Self {
        let verdicts = evaluate(&measurements, thresholds);
        BehaviourReport {
            unmet_required_checks: unmet_required_checks(&verdicts, &thresholds.required_checks),
            measurements,
            verdicts,
        }
    }

    /// True when any verdict fails the run.
    pub fn failed(&self) -> bool {
        self.verdicts.iter().any(BehaviourVerdict::failed)
    }

    /// Why a run that would pass proves nothing: every inconclusive verdict and every unmet required check,
    /// one line each (empty when the verdicts can be trusted).
    pub fn inconclusive_reasons(&self) -> Vec<String> {
        let inconclusive = self.verdicts.iter().filter(|v| v.inconclusive()).map(|v| {
            let subject = v
                .subject
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            format!(
                "behaviour {}{subject} inconclusive: {}",
                v.check.name(),
                v.detail
            )
        });
        let required = self.unmet_required_checks.iter().cloned();
        let mut reasons: Vec<String> = inconclusive.chain(required).collect();
        reasons.dedup();
        reasons
    }
}

/// One line per `required` check that no verdict judged, or that some verdict left SKIPPED or INCONCLUSIVE
/// (a per-window check is unmet when any of its windows is).
pub fn unmet_required_checks(
    verdicts: &[BehaviourVerdict],
    required: &[BehaviourCheck],
) -> Vec<String> {
    required
        .iter()
        .filter_map(|check| {
            let mine: Vec<&BehaviourVerdict> =
                verdicts.iter().filter(|v| v.check == *check).collect();
            let unjudged = mine.iter().find(|v| {
                matches!(
                    v.outcome,
                    VerdictOutcome::Skipped | VerdictOutcome::Inconclusive
                )
            });
            match (mine.is_empty(), unjudged) {
                (true, _) => Some(format!(
                    "required behaviour check {} was not judged (nothing measured for it)",
                    check.name()
                )),
                (false, Some(v)) => Some(format!(
                    "required behaviour check {} was {}: {}",
                    check.name(),
                    if v.outcome == VerdictOutcome::Skipped {
                        "skipped"
                    } else {
                        "inconclusive"
                    },
                    v.detail
                )),
                (false, None) => None,
            }
        })
        .collect()
}

/// Whether a measured value is within a limit from below (`AtLeast`) or above (`AtMost`).
#[derive(Clone, Copy)]
enum Bound {
    AtLeast,
    AtMost,
}

/// Builds verdicts for one check, keeping the pass/fail arithmetic and wording in one place.
struct Judge {
    check: BehaviourCheck,
    subject: Option<String>,
    limit: f64,
    unit: &'static str,
}

impl Judge {
    fn new(check: BehaviourCheck, limit: f64, unit: &'static str) -> Self {
        Judge {
            check,
            subject: None,
            limit,
            unit,
        }
    }

    fn about(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    fn verdict(
        self,
        measured: Option<f64>,
        outcome: VerdictOutcome,
        detail: String,
    ) -> BehaviourVerdict {
        let Judge {
            check,
            subject,
            limit,
            unit,
        } = self;
        BehaviourVerdict {
            check,
            subject,
            measured,
            limit,
            unit: unit.to_string(),
            outcome,
            detail,
        }
    }

    fn measure(self, value: f64, bound: Bound, what: &str) -> BehaviourVerdict {
        let within = match bound {
            Bound::AtLeast => value >= self.limit,
            Bound::AtMost => value <= self.limit,
        };
        let relation = match (bound, within) {
            (Bound::AtLeast, true) => ">=",
            (Bound::AtLeast, false) => "<",
            (Bound::AtMost, true) => "<=",
            (Bound::AtMost, false) => ">",
        };
        let outcome = if within {
            VerdictOutcome::Pass
        } else {
            VerdictOutcome::Fail
        };
        let detail = format!(
            "{what} {} {relation} limit {}",
            show(value, self.unit),
            show(self.limit, self.unit)
        );
        self.verdict(Some(value), outcome, detail)
    }

    fn skip(self, why: &str) -> BehaviourVerdict {
        self.verdict(None, VerdictOutcome::Skipped, why.to_string())
    }

    fn inconclusive(self, measured: Option<f64>, why: String) -> BehaviourVerdict {
        self.verdict(measured, VerdictOutcome::Inconclusive, why)
    }
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{value:.1} ms"),
        "count" => format!("{value:.0}"),
        _ => format!("{value:.3}"),
    }
}

/// Evaluate every limit set in `thresholds` against `measurements`; one verdict per limit (per window for the
/// per-window checks). The run fails when any verdict [`BehaviourVerdict::failed`].
pub fn evaluate(
    measurements: &BehaviourMeasurements,
    thresholds: &BehaviourThresholds,
) -> Vec<BehaviourVerdict> {
    let mut verdicts = Vec::new();
    if let Some(limit) = thresholds.min_fairness {
        verdicts.push(fairness(measurements.distribution.as_ref(), limit));
    }
    if let Some(limit) = thresholds.min_key_report_agreement {
        verdicts.push(key_report(measurements.key_report.as_ref(), limit));
    }
    if let Some(limit) = thresholds.max_retry_after_violations {
        verdicts.push(retry_after(measurements.retry_after.as_ref(), limit));
    }
    if let Some(limit) = thresholds.min_masking {
        verdicts.extend(masking(&measurements.masking, limit));
    }
    if let Some(limit) = thresholds.max_recovery {
        verdicts.extend(measurements.recovery.iter().map(|r| recovery(r, limit)));
    }
    if let Some(limit) = thresholds.max_ttft_overhead {
        verdicts.push(ttft_overhead(measurements.streams.as_ref(), limit));
    }
    if !thresholds.allow_buffered_streams {
        verdicts.extend(measurements.streams.as_ref().map(buffering));
    }
    if let Some(limit) = thresholds.max_exhausted_answer {
        verdicts.push(exhausted_answer(
            measurements.exhausted_answer.as_ref(),
            limit,
        ));
    }
    if let Some(limit) = thresholds.min_connection_reuse {
        verdicts.push(connection_reuse(
            measurements.connection_reuse.as_ref(),
            limit,
        ));
    }
    verdicts
}

fn connection_reuse(measured: Option<&ConnectionReuse>, limit: f64) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::ConnectionReuse, limit, "ratio");
    let Some(m) = measured else {
        return judge.skip("not measured (the upstream ledger was not read)");
    };
    if !m.counted {
        return judge.skip(
            "the upstream ledger has no connection counts (a mock that does not count connections)",
        );
    }
    let ratio = match m.requests_per_connection {
        Some(ratio) if m.requests >= MIN_REUSE_REQUESTS => ratio,
        _ => {
            return judge.skip(&format!(
                "only {} upstream requests over the load: at least {MIN_REUSE_REQUESTS} are needed to judge \
                 connection reuse",
                m.requests
            ))
        }
    };
    let what = format!(
        "upstream requests per connection ({} requests over {} new connections, {} TLS handshakes)",
        m.requests, m.connections, m.tls_handshakes
    );
    judge.measure(ratio, Bound::AtLeast, &what)
}

fn exhausted_answer(measured: Option<&ExhaustedAnswers>, limit: Duration) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::ExhaustedAnswer, to_millis(limit), "ms");
    let Some(m) = measured else {
        return judge.skip("not measured (no timeline window watched, or no mock)");
    };
    if m.windows.is_empty() {
        return judge.skip("no timeline window in which every eligible key answered 429");
    }
    if m.sent == 0 {
        return judge.skip("no request was sent while every key was rate-limited");
    }
    let what = format!(
        "p99 answer time of the {} requests sent while every key was rate-limited ({}; {} never answered)",
        m.sent,
        m.windows.join(", "),
        m.unanswered()
    );
    match m.p99 {
        Some(p99) => judge.measure(to_millis(p99), Bound::AtMost, &what),
        None => judge.verdict(
            None,
            VerdictOutcome::Fail,
            format!(
                "{} of the {} requests sent while every key was rate-limited ({}) were never answered by the \
                 end of the load: the proxy holds them",
                m.unanswered(),
                m.sent,
                m.windows.join(", ")
            ),
        ),
    }
}

fn fairness(distribution: Option<&KeyDistribution>, limit: f64) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::Fairness, limit, "ratio");
    match distribution.and_then(|d| d.fairness) {
        Some(index) => judge.measure(
            index,
            Bound::AtLeast,
            "Jain's fairness index over eligible keys",
        ),
        None => judge.skip("no requests on any eligible key"),
    }
}

fn key_report(comparison: Option<&KeyReportComparison>, limit: f64) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::KeyReport, limit, "ratio");
    let Some(comparison) = comparison else {
        return judge.skip("X-Key-Used was not collected");
    };
    match comparison.agreement {
        Some(agreement) if comparison.phantom_keys.is_empty() => {
            judge.measure(agreement, Bound::AtLeast, "X-Key-Used agreement")
        }
        Some(agreement) => {
            let detail = format!(
                "X-Key-Used names keys the upstream never served: {}",
                comparison.phantom_keys.join(", ")
            );
            judge.verdict(Some(agreement), VerdictOutcome::Fail, detail)
        }
        None => {
            judge.skip("no X-Key-Used header on successful responses (or no upstream successes)")
        }
    }
}

fn retry_after(compliance: Option<&RetryAfterCompliance>, limit: u64) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::RetryAfter, limit as f64, "count");
    match compliance {
        Some(c) => {
            let keys: Vec<String> = c.per_key.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let what = if keys.is_empty() {
                "Retry-After violations".to_string()
            } else {
                format!("Retry-After violations ({})", keys.join(", "))
            };
            let mut verdict = judge.measure(c.violations as f64, Bound::AtMost, &what);
            verdict.detail = format!("{}; {}", verdict.detail, c.describe_races());
            verdict
        }
        None => judge.skip("the upstream ledger was not read"),
    }
}

fn masking(windows: &[FailoverMasking], limit: f64) -> Vec<BehaviourVerdict> {
    if windows.is_empty() {
        return vec![
            Judge::new(BehaviourCheck::FailoverMasking, limit, "ratio").skip("no fault windows")
        ];
    }
    windows
        .iter()
        .map(|w| {
            let judge =
                Judge::new(BehaviourCheck::FailoverMasking, limit, "ratio").about(&w.window);
            match w.masking {
                Some(masking) => {
                    let rates = format!(
                        "masking (client error rate {:.3} vs upstream {:.3})",
                        w.client_error_rate.unwrap_or(0.0),
                        w.upstream_error_rate.unwrap_or(0.0)
                    );
                    judge.measure(masking, Bound::AtLeast, &rates)
                }
                None => judge.skip("no upstream failures (or no requests) in the window"),
            }
        })
        .collect()
}

fn recovery(result: &Recovery, limit: Duration) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::Recovery, to_millis(limit), "ms").about(&result.label);
    match result.outcome {
        RecoveryOutcome::Recovered { after } => {
            judge.measure(to_millis(after), Bound::AtMost, "time to recover")
        }
        RecoveryOutcome::NotRecovered {
            observed,
            confirmable,
        } if confirmable >= limit => {
            let detail = format!(
                "not back to baseline within the {:.1} s observed after the fault",
                observed.as_secs_f64()
            );
            judge.verdict(Some(to_millis(observed)), VerdictOutcome::Fail, detail)
        }
        RecoveryOutcome::NotRecovered {
            observed,
            confirmable,
        } => judge.inconclusive(
            None,
            format!(
                "not back to baseline in the {:.1} s observed after the fault, which could only confirm a \
                 recovery within {:.1} s (limit {:.1} s): run longer after the fault",
                observed.as_secs_f64(),
                confirmable.as_secs_f64(),
                limit.as_secs_f64()
            ),
        ),
        RecoveryOutcome::NoBaseline => {
            judge.skip("no measured interval before the fault to set a baseline")
        }
        RecoveryOutcome::Inconclusive { ref reason } => judge.inconclusive(None, reason.clone()),
    }
}

fn ttft_overhead(streams: Option<&StreamPassThrough>, limit: Duration) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::TtftOverhead, to_millis(limit), "ms");
    match streams.filter(|s| s.streams > 0) {
        Some(s) => judge.measure(
            to_millis(s.ttft_overhead),
            Bound::AtMost,
            "median TTFT added by the proxy",
        ),
        None => judge.skip("no streamed responses measured"),
    }
}

fn buffering(streams: &StreamPassThrough) -> BehaviourVerdict {
    let judge = Judge::new(BehaviourCheck::StreamBuffering, 0.0, "ms");
    let measured = Some(to_millis(streams.client_ttft));
    let summary = format!(
        "median client TTFT {:.1} ms, upstream TTFT {:.1} ms, stream {:.1} ms",
        to_millis(streams.client_ttft),
        to_millis(streams.upstream_ttft),
        to_millis(streams.client_total)
    );
    match streams.verdict {
        StreamVerdict::PassThrough => judge.verdict(
            measured,
            VerdictOutcome::Pass,
            format!("streams pass through: {summary}"),
        ),
        StreamVerdict::Buffered => judge.verdict(
            measured,
            VerdictOutcome::Fail,
            format!("the proxy buffers streams: {summary}"),
        ),
        StreamVerdict::Inconclusive => judge.skip(&format!(
            "streams lasted ~{:.0} ms ({:.0} ms after the upstream's first token): too short to tell \
             buffering from pass-through",
            to_millis(streams.client_total),
            to_millis(streams.client_total.saturating_sub(streams.upstream_ttft))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::KeyCounts;
    use crate::distribution::{compare_reported_keys, key_distribution};
    use crate::masking::{failover_masking, WindowCounts};
    use crate::streaming::{stream_pass_through, StreamRules, StreamSample};
    use std::collections::BTreeMap;

    fn measured(first_key_only: bool) -> BehaviourMeasurements {
        let per_key = if first_key_only {
            [300, 0, 0]
        } else {
            [100, 100, 100]
        };
        let counts: BTreeMap<String, KeyCounts> = ["k1", "k2", "k3"]
            .iter()
            .zip(per_key)
            .filter(|(_, n)| *n > 0)
            .map(|(id, n)| {
                (
                    id.to_string(),
                    KeyCounts {
                        requests: n,
                        successes: n,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let eligible: Vec<String> = ["k1", "k2", "k3"].map(String::from).to_vec();
        let reported = counts
            .iter()
            .map(|(k, c)| (k.clone(), c.successes))
            .collect();
        BehaviourMeasurements {
            distribution: Some(key_distribution(&counts, &eligible)),
            key_report: Some(compare_reported_keys(&reported, &counts)),
            ..Default::default()
        }
    }

    fn outcomes(verdicts: &[BehaviourVerdict]) -> Vec<(BehaviourCheck, VerdictOutcome)> {
        verdicts.iter().map(|v| (v.check, v.outcome)).collect()
    }

    #[test]
    fn thresholds_parse_from_toml_and_reject_unknown_fields() {
        let text = "min_fairness = 0.9\nmax_retry_after_violations = 0\nmin_masking = 0.8\nmax_recovery = \"5s\"\nmax_ttft_overhead = \"50ms\"";
        let t: BehaviourThresholds = toml::from_str(text).unwrap();
        assert_eq!(t.max_recovery, Some(Duration::from_secs(5)));
        assert_eq!(t.max_ttft_overhead, Some(Duration::from_millis(50)));
        assert!(!t.allow_buffered_streams);
        let err = toml::from_str::<BehaviourThresholds>("min_fairnes = 0.9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("min_fairnes"), "{err}");
        let err = toml::from_str::<BehaviourThresholds>("max_recovery = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration"), "{err}");
        let back: BehaviourThresholds = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                BehaviourThresholds {
                    min_fairness: Some(1.5),
                    ..Default::default()
                },
                Some("min_fairness"),
            ),
            (
                BehaviourThresholds {
                    min_masking: Some(-0.1),
                    ..Default::default()
                },
                Some("min_masking"),
            ),
            (
                BehaviourThresholds {
                    min_key_report_agreement: Some(1.0),
                    ..Default::default()
                },
                None,
            ),
            (BehaviourThresholds::default(), None),
            (
                BehaviourThresholds {
                    required_checks: vec![BehaviourCheck::Recovery],
                    ..Default::default()
                },
                Some("required_checks"),
            ),
            (
                BehaviourThresholds {
                    required_checks: vec![BehaviourCheck::StreamBuffering],
                    ..Default::default()
                },
                None,
            ),
            (
                BehaviourThresholds {
                    required_checks: vec![BehaviourCheck::StreamBuffering],
                    allow_buffered_streams: true,
                    ..Default::default()
                },
                Some("required_checks"),
            ),
        ];
        let reuse = |limit| BehaviourThresholds {
            min_connection_reuse: Some(limit),
            required_checks: vec![BehaviourCheck::ConnectionReuse],
            ..Default::default()
        };
        let reuse_cases = [
            (reuse(20.0), None),
            (reuse(1.0), None),
            (reuse(0.5), Some("min_connection_reuse")),
            (reuse(f64::NAN), Some("min_connection_reuse")),
        ];
        for (t, field) in cases.into_iter().chain(reuse_cases) {
            let got = t.validate().err().map(|e| e.field());
            assert_eq!(got, field, "{t:?}");
        }
        let named = BehaviourThresholds {
            key_names: BTreeMap::from([
                ("key-1".into(), "key1".into()),
                ("key-9".into(), "key9".into()),
            ]),
            ..Default::default()
        };
        let ids = ["key1", "key2"].map(String::from);
        let err = named.validate_key_names(&ids).unwrap_err();
        assert_eq!(err.field(), "key_names");
        assert!(err.to_string().contains("\"key-9\" to \"key9\""), "{err}");
        assert!(named
            .validate_key_names(&["key1", "key9"].map(String::from))
            .is_ok());
    }

    #[test]
    fn required_checks_parse_by_name_and_unknown_names_are_errors() {
        let t: BehaviourThresholds = toml::from_str(
            "max_recovery = \"5s\"\nrequired_checks = [\"recovery\", \"stream_buffering\"]",
        )
        .unwrap();
        assert_eq!(
            t.required_checks,
            vec![BehaviourCheck::Recovery, BehaviourCheck::StreamBuffering]
        );
        let err = toml::from_str::<BehaviourThresholds>("required_checks = [\"buffering\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("required_checks") && err.contains("buffering"),
            "{err}"
        );
    }

    #[test]
    fn unmet_required_checks_table() {
        use BehaviourCheck as C;
        use VerdictOutcome::{Fail, Inconclusive, Pass, Skipped};
        let verdict = |check, outcome| BehaviourVerdict {
            check,
            subject: None,
            measured: None,
            limit: 0.0,
            unit: "ms".into(),
            outcome,
            detail: "why".into(),
        };
        type Case = (Vec<BehaviourVerdict>, Vec<C>, Vec<&'static str>);
        let cases: [Case; 6] = [
            (vec![verdict(C::Recovery, Pass)], vec![C::Recovery], vec![]),
            // A failure is judged: the run fails on it, it is not "unmet".
            (vec![verdict(C::Recovery, Fail)], vec![C::Recovery], vec![]),
            (
                vec![verdict(C::StreamBuffering, Skipped)],
                vec![C::StreamBuffering],
                vec!["required behaviour check stream_buffering was skipped: why"],
            ),
            (
                vec![
                    verdict(C::Recovery, Pass),
                    verdict(C::Recovery, Inconclusive),
                ],
                vec![C::Recovery],
                vec!["required behaviour check recovery was inconclusive: why"],
            ),
            (
                vec![verdict(C::Fairness, Pass)],
                vec![C::Recovery],
                vec!["required behaviour check recovery was not judged (nothing measured for it)"],
            ),
            // Not required: a skipped check does not matter.
            (vec![verdict(C::Recovery, Skipped)], vec![], vec![]),
        ];
        for (verdicts, required, expected) in cases {
            assert_eq!(
                unmet_required_checks(&verdicts, &required),
                expected,
                "{required:?}"
            );
        }
    }

    #[test]
    fn evaluation_table() {
        use BehaviourCheck as C;
        use VerdictOutcome::{Fail, Pass, Skipped};
        let fair = BehaviourThresholds {
            min_fairness: Some(0.9),
            min_key_report_agreement: Some(0.95),
            ..Default::default()
        };
        type Case = (
            BehaviourMeasurements,
            BehaviourThresholds,
            Vec<(C, VerdictOutcome)>,
        );
        let cases: [Case; 4] = [
            (
                measured(false),
                fair.clone(),
                vec![(C::Fairness, Pass), (C::KeyReport, Pass)],
            ),
            (
                measured(true),
                fair.clone(),
                vec![(C::Fairness, Fail), (C::KeyReport, Pass)],
            ),
            // Limits set, nothing measured: skipped, not passed.
            (
                BehaviourMeasurements::default(),
                BehaviourThresholds {
                    max_retry_after_violations: Some(0),
                    max_ttft_overhead: Some(Duration::from_millis(5)),
                    ..fair
                },
                vec![
                    (C::Fairness, Skipped),
                    (C::KeyReport, Skipped),
                    (C::RetryAfter, Skipped),
                    (C::TtftOverhead, Skipped),
                ],
            ),
            // No limits: no verdicts.
            (measured(true), BehaviourThresholds::default(), vec![]),
        ];
        for (measurements, thresholds, expected) in cases {
            assert_eq!(
                outcomes(&evaluate(&measurements, &thresholds)),
                expected,
                "{thresholds:?}"
            );
        }
    }

    #[test]
    fn exhausted_answer_table() {
        use VerdictOutcome::{Fail, Pass, Skipped};
        let measured = |windows: &[&str], sent, answered, p99_ms: Option<u64>| ExhaustedAnswers {
            windows: windows.iter().map(|w| w.to_string()).collect(),
            sent,
            answered,
            p99: p99_ms.map(Duration::from_millis),
        };
        let cases = [
            (Some(measured(&["all keys"], 200, 200, Some(12))), Pass),
            (Some(measured(&["all keys"], 200, 200, Some(2900))), Fail),
            (Some(measured(&["all keys"], 200, 150, None)), Fail),
            (Some(measured(&[], 0, 0, None)), Skipped),
            (Some(measured(&["all keys"], 0, 0, None)), Skipped),
            (None, Skipped),
        ];
        let thresholds = BehaviourThresholds {
            max_exhausted_answer: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        for (exhausted_answer, expected) in cases {
            let measurements = BehaviourMeasurements {
                exhausted_answer: exhausted_answer.clone(),
                ..Default::default()
            };
            let verdicts = evaluate(&measurements, &thresholds);
            assert_eq!(
                outcomes(&verdicts),
                vec![(BehaviourCheck::ExhaustedAnswer, expected)],
                "{exhausted_answer:?}"
            );
        }
        let held = BehaviourMeasurements {
            exhausted_answer: Some(measured(&["all keys"], 200, 150, None)),
            ..Default::default()
        };
        let detail = &evaluate(&held, &thresholds)[0].detail;
        assert!(detail.starts_with("50 of the 200 requests"), "{detail}");
        let t: BehaviourThresholds = toml::from_str("max_exhausted_answer = \"1s\"").unwrap();
        assert_eq!(t.max_exhausted_answer, Some(Duration::from_secs(1)));
        assert_eq!(
            serde_json::to_value(BehaviourCheck::ExhaustedAnswer).unwrap(),
            "exhausted_answer"
        );
    }

    #[test]
    fn connection_reuse_table() {
        use VerdictOutcome::{Fail, Pass, Skipped};
        let measured = |requests, connections, counted| ConnectionReuse {
            requests,
            connections,
            tls_handshakes: connections,
            requests_per_connection: (counted && requests > 0)
                .then(|| requests as f64 / connections.max(1) as f64),
            counted,
        };
        // (measurement, outcome, words the detail must contain)
        let cases = [
            (
                Some(measured(1000, 8, true)),
                Pass,
                "1000 requests over 8 new connections",
            ),
            (Some(measured(1000, 50, true)), Pass, ">= limit 20.000"),
            (Some(measured(1000, 51, true)), Fail, "< limit 20.000"),
            (Some(measured(300, 300, true)), Fail, "1.000 < limit"),
            (Some(measured(50, 0, true)), Pass, "over 0 new connections"),
            (
                Some(measured(49, 1, true)),
                Skipped,
                "only 49 upstream requests",
            ),
            (
                Some(measured(0, 0, true)),
                Skipped,
                "only 0 upstream requests",
            ),
            (Some(measured(0, 0, false)), Skipped, "no connection counts"),
            (None, Skipped, "not measured"),
        ];
        let thresholds = BehaviourThresholds {
            min_connection_reuse: Some(20.0),
            ..Default::default()
        };
        for (connection_reuse, expected, words) in cases {
            let measurements = BehaviourMeasurements {
                connection_reuse,
                ..Default::default()
            };
            let verdicts = evaluate(&measurements, &thresholds);
            assert_eq!(
                outcomes(&verdicts),
                vec![(BehaviourCheck::ConnectionReuse, expected)],
                "{connection_reuse:?}"
            );
            assert!(verdicts[0].detail.contains(words), "{}", verdicts[0].detail);
        }
        let t: BehaviourThresholds =
            toml::from_str("min_connection_reuse = 20\nrequired_checks = [\"connection_reuse\"]")
                .unwrap();
        assert_eq!(t.min_connection_reuse, Some(20.0));
        assert_eq!(t.required_checks, [BehaviourCheck::ConnectionReuse]);
        assert!(evaluate(
            &BehaviourMeasurements::default(),
            &BehaviourThresholds::default()
        )
        .iter()
        .all(|v| v.check != BehaviourCheck::ConnectionReuse));
    }

    #[test]
    fn per_window_checks_and_buffering() {
        use BehaviourCheck as C;
        use VerdictOutcome::{Fail, Inconclusive, Pass, Skipped};
        let w = |requests, errors| WindowCounts { requests, errors };
        let rules = StreamRules::default();
        let buffered = [StreamSample {
            ttft: Duration::from_millis(400),
            total: Duration::from_millis(405),
        }];
        let measurements = BehaviourMeasurements {
            masking: vec![
                failover_masking("k2 503", w(100, 0), w(110, 20)),
                failover_masking("no failover", w(100, 20), w(100, 20)),
                failover_masking("calm", w(100, 0), w(100, 0)),
            ],
            recovery: vec![
                Recovery {
                    label: "fast".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::Recovered {
                        after: Duration::from_secs(2),
                    },
                },
                Recovery {
                    label: "never".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::NotRecovered {
                        observed: Duration::from_secs(9),
                        confirmable: Duration::from_secs(6),
                    },
                },
                Recovery {
                    label: "?".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::NoBaseline,
                },
                Recovery {
                    label: "short".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::NotRecovered {
                        observed: Duration::from_secs(8),
                        confirmable: Duration::from_secs(2),
                    },
                },
                Recovery {
                    label: "unsteady".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::Inconclusive {
                        reason: "baseline p95 ranged 8-57 ms over 10 s".into(),
                    },
                },
                Recovery {
                    label: "slow".into(),
                    from: Duration::ZERO,
                    baseline: None,
                    outcome: RecoveryOutcome::Recovered {
                        after: Duration::from_secs(16),
                    },
                },
            ],
            streams: Some(stream_pass_through(
                &buffered,
                Duration::from_millis(10),
                &rules,
            )),
            retry_after: Some(RetryAfterCompliance {
                violations: 39,
                races: 12,
                rate_limited: 40,
                per_key: BTreeMap::from([("k2".into(), 39)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let thresholds = BehaviourThresholds {
            max_retry_after_violations: Some(0),
            min_masking: Some(0.9),
            max_recovery: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let verdicts = evaluate(&measurements, &thresholds);
        assert_eq!(
            outcomes(&verdicts),
            vec![
                (C::RetryAfter, Fail),
                (C::FailoverMasking, Pass),
                (C::FailoverMasking, Fail),
                (C::FailoverMasking, Skipped),
                (C::Recovery, Pass),
                (C::Recovery, Fail),
                (C::Recovery, Skipped),
                (C::Recovery, Inconclusive),
                (C::Recovery, Inconclusive),
                (C::Recovery, Fail),
                (C::StreamBuffering, Fail),
            ]
        );
        assert_eq!(verdicts[8].detail, "baseline p95 ranged 8-57 ms over 10 s");
        assert!(
            verdicts[7].detail.contains("run longer"),
            "{}",
            verdicts[7].detail
        );
        assert_eq!(
            verdicts[0].detail,
            "Retry-After violations (k2: 39) 39 > limit 0; races 12; in-window arrivals by depth: none"
        );
        assert_eq!(
            (
                verdicts[4].measured,
                verdicts[4].limit,
                verdicts[4].unit.as_str()
            ),
            (Some(2000.0), 5000.0, "ms")
        );
        assert_eq!(verdicts[2].subject.as_deref(), Some("no failover"));
        let report = BehaviourReport::new(measurements.clone(), &thresholds);
        assert!(report.failed());
        assert_eq!(
            report.inconclusive_reasons()[1],
            "behaviour recovery [unsteady] inconclusive: baseline p95 ranged 8-57 ms over 10 s"
        );
        let short = [StreamSample {
            ttft: Duration::from_millis(30),
            total: Duration::from_millis(40),
        }];
        let streams = Some(stream_pass_through(
            &short,
            Duration::from_millis(10),
            &rules,
        ));
        let skipped = evaluate(
            &BehaviourMeasurements {
                streams,
                ..Default::default()
            },
            &BehaviourThresholds::default(),
        );
        assert_eq!(outcomes(&skipped), vec![(C::StreamBuffering, Skipped)]);
        assert_eq!(
            skipped[0].detail,
            "streams lasted ~40 ms (30 ms after the upstream's first token): too short to tell buffering \
             from pass-through"
        );
        assert!(!BehaviourReport::new(BehaviourMeasurements::default(), &thresholds).failed());
        let allowed = BehaviourThresholds {
            allow_buffered_streams: true,
            ..Default::default()
        };
        assert!(evaluate(&measurements, &allowed).is_empty());
        let json = serde_json::to_string(&verdicts).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<BehaviourVerdict>>(&json).unwrap(),
            verdicts
        );
    }
}
