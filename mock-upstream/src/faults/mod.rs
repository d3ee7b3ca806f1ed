//! Fault injection: the rule format ([`rule`]), pure match/trigger decisions ([`decision`]) and the live,
//! atomically swapped rule book with per-rule counters and TTLs (`book`).

pub(crate) mod book;
pub mod decision;
pub mod rule;

pub use decision::RequestFacts;
pub use rule::{FaultKind, FaultRule, LimitKind, RuleError};
