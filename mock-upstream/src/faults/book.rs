//! The live rule book. Readers take a cheap `Arc` snapshot of the ordered rules; writers build a new list and
//! swap it in whole, so a request never sees half of an admin update. Each rule keeps its own per-key,
//! per-route match counters (for `first_n` / `after_n` / `every_nth`) and an optional expiry (TTL).

use super::decision::RequestFacts;
use super::rule::{FaultRule, RuleError};
use crate::route::Route;
use crate::seed::RequestSeed;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A rule as installed: its spec (with an id), expiry and match counters.
#[derive(Debug)]
pub(crate) struct ActiveRule {
    pub(crate) rule: FaultRule,
    id: String,
    expires_at: Option<Duration>,
    match_counts: Mutex<HashMap<String, [u64; Route::ALL.len()]>>,
}

impl ActiveRule {
    fn expired(&self, now: Duration) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Index (0-based) of this match among the rule's matches for this key and route; counts it.
    fn count_match(&self, key_id: &str, route: Route) -> u64 {
        let mut counts = self.match_counts.lock();
        let slot = match counts.get_mut(key_id) {
            Some(per_route) => &mut per_route[route.index()],
            None => &mut counts.entry(key_id.to_string()).or_default()[route.index()],
        };
        let index = *slot;
        *slot += 1;
        index
    }

    fn fresh_copy(&self) -> ActiveRule {
        ActiveRule {
            rule: self.rule.clone(),
            id: self.id.clone(),
            expires_at: self.expires_at,
            match_counts: Mutex::default(),
        }
    }
}

/// Ordered fault rules, swapped atomically.
#[derive(Debug, Default)]
pub(crate) struct RuleBook {
    rules: RwLock<Arc<Vec<Arc<ActiveRule>>>>,
    next_id: AtomicU64,
}

impl RuleBook {
    /// A book holding `rules` (validated) installed at `now`.
    pub(crate) fn new(rules: Vec<FaultRule>, now: Duration) -> Result<Self, RuleError> {
        let book = RuleBook::default();
        book.replace(rules, now)?;
        Ok(book)
    }

    /// The first rule that matches and fires for this request.
    pub(crate) fn decide(
        &self,
        facts: &RequestFacts<'_>,
        seed: &RequestSeed,
        now: Duration,
        since_epoch: Duration,
    ) -> Option<Arc<ActiveRule>> {
        let rules = self.current(now);
        rules.iter().find_map(|active| {
            if active.expired(now) || !active.rule.matches(facts) {
                return None;
            }
            let matched_index = active.count_match(facts.key_id, facts.route);
            let fires = active
                .rule
                .fires(matched_index, since_epoch, seed.rule_draw(&active.id));
            fires.then(|| Arc::clone(active))
        })
    }

    /// The live rules (expired ones dropped), with their ids.
    pub(crate) fn list(&self, now: Duration) -> Vec<FaultRule> {
        self.current(now)
            .iter()
            .map(|active| active.rule.clone())
            .collect()
    }

    /// Replace every rule; all-or-nothing. Returns the ids.
    pub(crate) fn replace(
        &self,
        rules: Vec<FaultRule>,
        now: Duration,
    ) -> Result<Vec<String>, RuleError> {
        self.update(now, |_| Vec::new(), rules)
    }

    /// Append one rule; returns its id.
    pub(crate) fn add(&self, rule: FaultRule, now: Duration) -> Result<String, RuleError> {
        let ids = self.update(now, |current| current.to_vec(), vec![rule])?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }

    /// Remove the rules with these ids and append `add`, atomically. Unknown ids are an error.
    pub(crate) fn patch(
        &self,
        remove: &[String],
        add: Vec<FaultRule>,
        now: Duration,
    ) -> Result<Vec<String>, RuleError> {
        let mut missing = None;
        let ids = self.update(
            now,
            |current| {
                missing = remove
                    .iter()
                    .find(|id| !current.iter().any(|r| &r.id == *id))
                    .cloned();
                current
                    .iter()
                    .filter(|r| !remove.contains(&r.id))
                    .cloned()
                    .collect()
            },
            add,
        );
        match missing {
            Some(id) => Err(RuleError::InvalidField {
                rule: id,
                field: "remove",
                problem: "no rule has this id".into(),
            }),
            None => ids,
        }
    }

    /// Remove one rule; false when no rule has that id.
    pub(crate) fn remove(&self, id: &str, now: Duration) -> bool {
        self.patch(&[id.to_string()], Vec::new(), now).is_ok()
    }

    /// Remove every rule.
    pub(crate) fn clear(&self) {
        *self.rules.write() = Arc::default();
    }

    /// Forget every rule's match counters (admin reset).
    pub(crate) fn reset_counters(&self) {
        let mut rules = self.rules.write();
        *rules = Arc::new(
            rules
                .iter()
                .map(|active| Arc::new(active.fresh_copy()))
                .collect(),
        );
    }

    fn current(&self, now: Duration) -> Arc<Vec<Arc<ActiveRule>>> {
        let rules = Arc::clone(&self.rules.read());
        if !rules.iter().any(|r| r.expired(now)) {
            return rules;
        }
        let mut guard = self.rules.write();
        *guard = Arc::new(guard.iter().filter(|r| !r.expired(now)).cloned().collect());
        Arc::clone(&guard)
    }

    /// Build the new list as `keep(current)` + `added`, validate it whole, then swap it in.
    fn update(
        &self,
        now: Duration,
        keep: impl FnOnce(&[Arc<ActiveRule>]) -> Vec<Arc<ActiveRule>>,
        added: Vec<FaultRule>,
    ) -> Result<Vec<String>, RuleError> {
        let mut guard = self.rules.write();
        let live: Vec<Arc<ActiveRule>> =
            guard.iter().filter(|r| !r.expired(now)).cloned().collect();
        let mut next = keep(&live);
        let mut ids = Vec::with_capacity(added.len());
        for (position, rule) in added.into_iter().enumerate() {
            let active = self.activate(rule, position, now)?;
            ids.push(active.id.clone());
            next.push(Arc::new(active));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = next.iter().find(|r| !seen.insert(r.id.as_str())) {
            return Err(RuleError::DuplicateId(dup.id.clone()));
        }
        *guard = Arc::new(next);
        Ok(ids)
    }

    fn activate(
        &self,
        mut rule: FaultRule,
        position: usize,
        now: Duration,
    ) -> Result<ActiveRule, RuleError> {
        let label = rule
            .id
            .clone()
            .unwrap_or_else(|| format!("#{}", position + 1));
        rule.validate(&label)?;
        let id = match &rule.id {
            Some(id) => id.clone(),
            None => format!("rule-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1),
        };
        rule.id = Some(id.clone());
        let expires_at = rule.ttl.map(|ttl| now + ttl);
        Ok(ActiveRule {
            rule,
            id,
            expires_at,
            match_counts: Mutex::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultKind;

    fn facts(key_id: &str) -> RequestFacts<'_> {
        RequestFacts {
            key_id,
            route: Route::ChatCompletions,
            model: Some("gpt-4"),
            stream: false,
        }
    }

    fn decide_kind(book: &RuleBook, key: &str, index: u64, now: Duration) -> Option<FaultKind> {
        let seed = RequestSeed::new(1, key, Route::ChatCompletions, index);
        book.decide(&facts(key), &seed, now, now)
            .map(|active| active.rule.action)
    }

    #[test]
    fn first_matching_firing_rule_wins_and_counts_are_per_key() {
        let rules = vec![
            FaultRule {
                first_n: Some(1),
                ..FaultRule::new(FaultKind::Hang)
            },
            FaultRule::new(FaultKind::Close),
        ];
        let book = RuleBook::new(rules, Duration::ZERO).unwrap();
        let zero = Duration::ZERO;
        assert_eq!(decide_kind(&book, "a", 0, zero), Some(FaultKind::Hang));
        assert_eq!(decide_kind(&book, "a", 1, zero), Some(FaultKind::Close));
        assert_eq!(decide_kind(&book, "b", 0, zero), Some(FaultKind::Hang));
        book.reset_counters();
        assert_eq!(decide_kind(&book, "a", 0, zero), Some(FaultKind::Hang));
    }

    #[test]
    fn ttl_expires_rules() {
        let book = RuleBook::default();
        let rule = FaultRule {
            ttl: Some(Duration::from_secs(5)),
            ..FaultRule::new(FaultKind::Hang)
        };
        let id = book.add(rule, Duration::from_secs(10)).unwrap();
        assert_eq!(id, "rule-1");
        assert_eq!(
            decide_kind(&book, "a", 0, Duration::from_secs(14)),
            Some(FaultKind::Hang)
        );
        assert_eq!(decide_kind(&book, "a", 1, Duration::from_secs(15)), None);
        assert!(book.list(Duration::from_secs(15)).is_empty());
    }

    #[test]
    fn updates_are_all_or_nothing() {
        let book = RuleBook::default();
        let named = |id: &str| FaultRule {
            id: Some(id.into()),
            ..FaultRule::new(FaultKind::Close)
        };
        book.replace(vec![named("x"), named("y")], Duration::ZERO)
            .unwrap();
        let bad = FaultRule {
            probability: Some(2.0),
            ..FaultRule::new(FaultKind::Error)
        };
        assert!(book.replace(vec![named("z"), bad], Duration::ZERO).is_err());
        assert!(matches!(
            book.add(named("x"), Duration::ZERO),
            Err(RuleError::DuplicateId(_))
        ));
        assert!(book
            .patch(&["nope".into()], vec![], Duration::ZERO)
            .is_err());
        assert_eq!(book.list(Duration::ZERO).len(), 2);
        assert_eq!(
            book.patch(&["x".into()], vec![named("w")], Duration::ZERO)
                .unwrap(),
            vec!["w"]
        );
        let ids: Vec<_> = book
            .list(Duration::ZERO)
            .into_iter()
            .filter_map(|r| r.id)
            .collect();
        assert_eq!(ids, vec!["y", "w"]);
        assert!(book.remove("y", Duration::ZERO));
        assert!(!book.remove("y", Duration::ZERO));
        book.clear();
        assert!(book.list(Duration::ZERO).is_empty());
    }
}
