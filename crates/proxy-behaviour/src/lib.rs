//! # proxy-behaviour
//!
//! Did the proxy under test *behave*? Latency and error rates say how fast it was; these verdicts say whether it
//! spread load over its keys, respected the upstream's `Retry-After`, hid upstream failures by failing over,
//! recovered after a fault or a load peak, reused its upstream connections, and streamed without buffering. Every function here is pure: the
//! harness collects the data (the mock's ledger, client-side counts, per-interval series, stream timings) and
//! these functions turn it into measured values and pass/fail verdicts, so each rule is table-tested without I/O.
//!
//! # Layout
//! - [`counts`]: per-key upstream counts from a [`mock_upstream::LedgerSnapshot`], and their difference over a
//!   window (two snapshots).
//! - [`distribution`]: per-key shares, Jain's fairness index over the eligible keys, and the keys the proxy
//!   reported (`X-Key-Used`) against the keys the mock saw.
//! - [`retry_after`]: Retry-After races and violations (total, per key, by depth into the window).
//! - [`exhausted`]: how fast the proxy answers requests sent while every key is rate-limited.
//! - [`masking`]: failover masking per fault window — client-visible vs upstream error rate.
//! - [`mod@recovery`]: time until success rate and p95 (merged over windows of seconds) return to the
//!   pre-fault baseline, or why the baseline is too unsteady to tell.
//! - [`reuse`]: upstream connection reuse — provider requests per new upstream connection over the load.
//! - [`streaming`]: stream pass-through — client TTFT vs the upstream's, buffering detection.
//! - [`thresholds`]: [`BehaviourThresholds`] (scenario `[behaviour]` table) and [`evaluate`] →
//!   [`BehaviourVerdict`]s that can fail a run (or leave it inconclusive), and the scenario's required checks.
//! - `serde_units`: how durations are written in results (numbers of milliseconds; thresholds use `human_duration`).

pub mod counts;
pub mod distribution;
pub mod exhausted;
pub mod masking;
pub mod recovery;
pub mod retry_after;
pub mod reuse;
mod serde_units;
pub mod streaming;
pub mod thresholds;

pub use counts::{counts_between, ledger_counts, KeyCounts, LedgerCounts};
pub use distribution::{
    compare_reported_keys, eligible_keys, jain_index, key_distribution, rename_reported_keys,
    KeyDistribution, KeyReportComparison,
};
pub use exhausted::{every_key_rate_limited, exhausted_answers, ExhaustedAnswers, SpanAnswers};
pub use masking::{failover_masking, upstream_window, FailoverMasking, WindowCounts};
pub use recovery::{
    load_drop_after_peak, recovery, Baseline, IntervalPoint, Recovery, RecoveryOutcome,
    RecoveryTolerance,
};
pub use retry_after::{retry_after_compliance, RetryAfterCompliance};
pub use reuse::{connection_reuse, ConnectionReuse, MIN_REUSE_REQUESTS};
pub use streaming::{
    mock_first_event_delay, stream_pass_through, StreamPassThrough, StreamRules, StreamSample,
    StreamVerdict,
};
pub use thresholds::{
    evaluate, unmet_required_checks, BehaviourCheck, BehaviourMeasurements, BehaviourReport,
    BehaviourThresholds, BehaviourVerdict, ThresholdError, VerdictOutcome,
};
