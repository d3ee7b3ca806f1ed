//! Whether a set of shard results is one whole run (pure): every index 0..N-1 present once, all of the same
//! scenario file, shard count and thresholds, and every shard finished.
//!
//! Why a merge with a problem is INVALID rather than judged on what is there: a missing or crashed shard means
//! the load the scenario describes was not applied, so throughput limits would judge less load and latency
//! limits a different load — the merged figures would pass or fail for the wrong reason.

use crate::shard::ShardRecord;

/// Shard verdicts that mean the shard did not run its whole share.
pub const UNFINISHED_VERDICTS: [&str; 3] = ["CRASHED", "INVALID", "INTERRUPTED"];

/// What the check needs of one shard's results directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardFacts<'a> {
    /// The directory, as given.
    pub dir: String,
    /// Its `shard.json` (`None`: absent or unreadable, with the reason in `unreadable`).
    pub record: Option<&'a ShardRecord>,
    /// Its `summary.json` verdict and reasons (`None`: no summary).
    pub verdict: Option<(&'a str, &'a [String])>,
    /// Why a file of it could not be read.
    pub unreadable: Option<String>,
}

/// Every reason the set is not one whole run, each naming the shard (empty: it is).
pub fn problems(shards: &[ShardFacts<'_>]) -> Vec<String> {
    let mut problems = Vec::new();
    let records: Vec<(&ShardFacts, &ShardRecord)> = shards
        .iter()
        .filter_map(|s| s.record.map(|r| (s, r)))
        .collect();
    for shard in shards {
        if let Some(why) = &shard.unreadable {
            problems.push(format!("{}: {why}", shard.dir));
        } else if shard.record.is_none() {
            problems.push(format!(
                "{}: no shard.json (not the results of a `harness run --shard`)",
                shard.dir
            ));
        }
    }
    let Some((first_dir, first)) = records.first().copied() else {
        problems.push("no shard results to merge".into());
        return problems;
    };
    for (facts, record) in &records {
        let name = shard_name(facts, record);
        if record.count != first.count {
            problems.push(format!(
                "{name} is one of {} shards, {} one of {}",
                record.count,
                shard_name(first_dir, first),
                first.count
            ));
        }
        if (&record.scenario, &record.scenario_hash) != (&first.scenario, &first.scenario_hash) {
            problems.push(format!(
                "{name} ran scenario {} ({}), {} ran {} ({})",
                record.scenario,
                record.scenario_hash,
                shard_name(first_dir, first),
                first.scenario,
                first.scenario_hash
            ));
        }
        if record.thresholds != first.thresholds {
            problems.push(format!(
                "{name} judged with other thresholds than {} (give every shard the same limits)",
                shard_name(first_dir, first)
            ));
        }
        problems.extend(unfinished(&name, facts.verdict));
    }
    for index in 0..first.count {
        let given: Vec<&str> = records
            .iter()
            .filter(|(_, r)| (r.index, r.count) == (index, first.count))
            .map(|(f, _)| f.dir.as_str())
            .collect();
        match given.len() {
            0 => problems.push(format!("shard {index}/{} is missing", first.count)),
            1 => {}
            _ => problems.push(format!(
                "shard {index}/{} given {} times ({})",
                first.count,
                given.len(),
                given.join(", ")
            )),
        }
    }
    problems
}

/// `shard 2/3 (DIR, on HOST)`.
fn shard_name(facts: &ShardFacts<'_>, record: &ShardRecord) -> String {
    format!(
        "shard {}/{} ({}, on {})",
        record.index, record.count, facts.dir, record.host
    )
}

/// Why a shard did not finish: no summary (killed), or a verdict saying it stopped early.
fn unfinished(name: &str, verdict: Option<(&str, &[String])>) -> Option<String> {
    match verdict {
        None => Some(format!(
            "{name} has no summary.json: it crashed or was killed before writing its results"
        )),
        Some((verdict, reasons)) if UNFINISHED_VERDICTS.contains(&verdict) => Some(format!(
            "{name} ended {verdict}: {}",
            reasons.first().map_or("no reason given", String::as_str)
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(index: u32, count: u32, hash: &str) -> ShardRecord {
        ShardRecord {
            index,
            count,
            start_at: None,
            started_at: "2026-12-05T20:00:00.000Z".into(),
            start_lateness_ms: 0.0,
            host: format!("h{index}"),
            scenario: "s".into(),
            scenario_file: "s.toml".into(),
            scenario_hash: hash.into(),
            seed: 1,
            shard_seed: 1,
            run_time_s: 5.0,
            drift_window_s: 1.25,
            thresholds: Default::default(),
        }
    }

    #[test]
    fn problems_table() {
        let r = |i, n| record(i, n, "fnv1a64:1");
        let (r0, r1, r2) = (r(0, 3), r(1, 3), r(2, 3));
        let (other_n, other_hash) = (r(1, 2), record(1, 3, "fnv1a64:2"));
        let pass = ["PASS".to_string()];
        let crashed = ["the proxy crashed during the run".to_string()];
        let fine = |dir: &str, rec| ShardFacts {
            dir: dir.into(),
            record: Some(rec),
            verdict: Some(("FAIL", &pass[..])),
            unreadable: None,
        };
        // (shards, expected problems: fragments, in order)
        let cases: Vec<(Vec<ShardFacts>, Vec<&str>)> = vec![
            (vec![fine("a", &r0), fine("b", &r1), fine("c", &r2)], vec![]),
            (vec![fine("a", &r0), fine("c", &r2)], vec!["shard 1/3 is missing"]),
            (
                vec![fine("a", &r0), fine("b", &r1), fine("b2", &r1), fine("c", &r2)],
                vec!["shard 1/3 given 2 times (b, b2)"],
            ),
            (
                vec![fine("a", &r0), fine("b", &other_n), fine("c", &r2)],
                vec!["shard 1/2 (b, on h1) is one of 2 shards, shard 0/3 (a, on h0) one of 3", "shard 1/3 is missing"],
            ),
            (
                vec![fine("a", &r0), fine("b", &other_hash), fine("c", &r2)],
                vec!["shard 1/3 (b, on h1) ran scenario s (fnv1a64:2), shard 0/3 (a, on h0) ran s (fnv1a64:1)"],
            ),
            (
                vec![
                    fine("a", &r0),
                    ShardFacts { verdict: None, ..fine("b", &r1) },
                    ShardFacts { verdict: Some(("CRASHED", &crashed[..])), ..fine("c", &r2) },
                ],
                vec![
                    "shard 1/3 (b, on h1) has no summary.json: it crashed or was killed",
                    "shard 2/3 (c, on h2) ended CRASHED: the proxy crashed during the run",
                ],
            ),
            (
                vec![ShardFacts { record: None, ..fine("x", &r0) }, fine("b", &r1), fine("c", &r2)],
                vec!["x: no shard.json", "shard 0/3 is missing"],
            ),
            (vec![], vec!["no shard results to merge"]),
        ];
        for (shards, want) in cases {
            let got = problems(&shards);
            assert_eq!(got.len(), want.len(), "{got:#?} vs {want:#?}");
            for (got, want) in got.iter().zip(&want) {
                assert!(
                    got.starts_with(want),
                    "{got:?} does not start with {want:?}"
                );
            }
        }
    }
}
