//! The shards' proxy-behaviour inputs added into one run's (pure).
//!
//! Why judge behaviour on the whole: the shards share one mock, whose ledger counts every shard's traffic,
//! while each shard's client saw only its own share. A shard comparing its `X-Key-Used` counts with that
//! ledger would find most of the ledger unexplained. So the merge adds the client observations of every
//! shard (reported keys, stream samples, answer times of watched windows) and pairs them with one ledger
//! span covering every shard's load: `before` from the shard that owns the mock (shard 0 resets it before
//! the load; without it the snapshot with the fewest requests, the earliest read) and `after` with the most
//! requests (the last read, after every shard's load ended). The timeline and watched spans are the owner's
//! (shard 0 switches the faults), the per-second series comes from the merged history.

use crate::engine::Observed;
use crate::run::behaviour::{Collected, INPUTS_FILE};
use proxy_behaviour::IntervalPoint;
use std::time::Duration;

/// One shard's behaviour inputs as the merge read them.
#[derive(Debug)]
pub struct ShardInputs {
    /// `shard I/N` (or its directory).
    pub name: String,
    /// Its index (`None` without `shard.json`).
    pub index: Option<u32>,
    /// Its `behaviour_inputs.json` (`None` when it wrote none).
    pub inputs: Option<Collected>,
}

/// The merged behaviour inputs, or why there are none.
#[derive(Debug)]
pub enum MergedInputs {
    /// No shard wrote behaviour inputs (one reason per shard): nothing to judge unless limits are set.
    Nothing(Vec<String>),
    /// Some shards wrote none: the whole cannot be judged (one reason per such shard).
    Missing(Vec<String>),
    /// Every shard's inputs, added.
    Whole(Box<Collected>),
}

/// Adds the shards' inputs, with the merged per-second `series` and `users` (`users` kept only when the
/// owner's run kept them: closed model).
pub fn combine(
    shards: Vec<ShardInputs>,
    series: Vec<IntervalPoint>,
    users: Vec<(Duration, u32)>,
) -> MergedInputs {
    let missing: Vec<String> = shards
        .iter()
        .filter(|s| s.inputs.is_none())
        .map(|s| {
            format!(
                "{} wrote no {INPUTS_FILE} (an older or interrupted shard): proxy behaviour cannot be judged \
                 on the whole",
                s.name
            )
        })
        .collect();
    if missing.len() == shards.len() {
        return MergedInputs::Nothing(missing);
    }
    if !missing.is_empty() {
        return MergedInputs::Missing(missing);
    }
    let mut all: Vec<(Option<u32>, Collected)> = shards
        .into_iter()
        .filter_map(|s| Some((s.index, s.inputs?)))
        .collect();
    let owner = all
        .iter()
        .position(|(index, _)| *index == Some(0))
        .or_else(|| (0..all.len()).min_by_key(|&i| all[i].1.before.totals.requests))
        .unwrap_or(0);
    let (_, mut whole) = all.swap_remove(owner);
    for (_, shard) in &all {
        add_observed(&mut whole.observed, &shard.observed);
        if shard.after.totals.requests > whole.after.totals.requests {
            whole.after = shard.after.clone();
        }
    }
    whole.users = if whole.users.is_empty() {
        Vec::new()
    } else {
        users
    };
    whole.series = series;
    MergedInputs::Whole(Box::new(whole))
}

/// Adds `other`'s observations into `into`: counts added, stream samples appended, answers of each watched
/// window merged.
fn add_observed(into: &mut Observed, other: &Observed) {
    for (key, n) in &other.reported_keys {
        *into.reported_keys.entry(key.clone()).or_default() += n;
    }
    into.streams.extend_from_slice(&other.streams);
    for (window, answers) in &other.span_answers {
        into.span_answers.entry(*window).or_default().merge(answers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::timeline::TimelineOutcome;
    use mock_upstream::{LedgerSnapshot, MockConfig};
    use proxy_behaviour::{SpanAnswers, StreamSample};

    fn ledger(requests: u64) -> LedgerSnapshot {
        let mut l = LedgerSnapshot::default();
        l.totals.requests = requests;
        l
    }

    fn inputs(before: u64, after: u64, keys: &[(&str, u64)], users: bool) -> Collected {
        let mut observed = Observed::default();
        for (k, n) in keys {
            observed.reported_keys.insert(k.to_string(), *n);
        }
        observed.streams.push(StreamSample {
            ttft: Duration::from_millis(before + 1),
            total: Duration::from_millis(after + 1),
        });
        observed.span_answers.insert(
            0,
            SpanAnswers {
                sent: after,
                ..Default::default()
            },
        );
        Collected {
            config: MockConfig::default(),
            before: ledger(before),
            after: ledger(after),
            observed,
            timeline: TimelineOutcome::default(),
            watched: Vec::new(),
            series: Vec::new(),
            users: if users {
                vec![(Duration::from_secs(1), 1)]
            } else {
                Vec::new()
            },
        }
    }

    fn shard(index: u32, inputs: Option<Collected>) -> ShardInputs {
        ShardInputs {
            name: format!("shard {index}/3"),
            index: Some(index),
            inputs,
        }
    }

    #[test]
    fn observations_add_and_the_ledger_spans_every_shard() {
        let shards = vec![
            shard(2, Some(inputs(40, 290, &[("k1", 5)], false))),
            shard(0, Some(inputs(0, 300, &[("k1", 10), ("k2", 3)], false))),
            shard(1, Some(inputs(20, 310, &[("k2", 7)], false))),
        ];
        let users = vec![(Duration::from_secs(1), 9)];
        let MergedInputs::Whole(whole) = combine(shards, Vec::new(), users) else {
            panic!("every shard has inputs");
        };
        assert_eq!(whole.before.totals.requests, 0, "the owner's before");
        assert_eq!(whole.after.totals.requests, 310, "the latest after");
        let keys: Vec<(&str, u64)> = whole
            .observed
            .reported_keys
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(keys, [("k1", 15), ("k2", 10)]);
        assert_eq!(whole.observed.streams.len(), 3);
        assert_eq!(whole.observed.span_answers[&0].sent, 900);
        assert!(whole.users.is_empty(), "open model: no users series");
    }

    #[test]
    fn without_the_owner_the_earliest_before_is_used() {
        let shards = vec![
            shard(1, Some(inputs(20, 310, &[], true))),
            shard(2, Some(inputs(5, 300, &[], true))),
        ];
        let users = vec![(Duration::from_secs(1), 9)];
        let MergedInputs::Whole(whole) = combine(shards, Vec::new(), users.clone()) else {
            panic!("every shard has inputs");
        };
        assert_eq!(whole.before.totals.requests, 5);
        assert_eq!(whole.users, users, "closed model: the merged users");
    }

    #[test]
    fn a_shard_without_inputs_is_named_and_none_means_nothing_to_judge() {
        let shards = vec![shard(0, Some(inputs(0, 10, &[], false))), shard(1, None)];
        match combine(shards, Vec::new(), Vec::new()) {
            MergedInputs::Missing(reasons) => {
                assert_eq!(reasons.len(), 1);
                assert!(reasons[0].starts_with("shard 1/3 wrote no behaviour_inputs.json"));
            }
            other => panic!("{other:?}"),
        }
        let none = combine(vec![shard(0, None)], Vec::new(), Vec::new());
        assert!(
            matches!(&none, MergedInputs::Nothing(reasons) if reasons.len() == 1),
            "{none:?}"
        );
    }
}
