//! Load beyond one machine: `harness run SCENARIO --shard I/N` runs shard I's share of the scenario, and
//! `harness merge` ([`crate::merge`]) judges the shards' results once, as one run.
//!
//! Why shards divide the scenario rather than each running it whole: N shards together must be the load the
//! scenario describes, so a throughput limit means the same run on one machine or on ten. Users, spawn rate,
//! arrival rate, stages and the in-flight bound are divided ([`divide`], pure): integer counts give their
//! remainder to the first shards (10 users over 3 shards: 4, 3, 3), rates are divided evenly. Each shard draws
//! its request mix and think times from its own seed stream ([`shard_seed`]); only shard 0 drives the mock's
//! admin API (reset, rules, timeline faults, latency), the others read its ledger, so a fault is switched once
//! however many shards there are. `--start-at` makes the shards start their load together; a shard that starts
//! late says so in its `shard.json`, and the merge reports it ([`ShardRecord`]).

use crate::scenario::{ClosedLoad, ClosedStage, LoadSpec, OpenLoad, OpenStage};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// Environment variable holding the shard's index with `--shards N` (Kubernetes Indexed Jobs set it).
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// File of a shard's results directory that marks it as a shard.
pub const SHARD_FILE: &str = "shard.json";
/// File of a shard's results directory with its per-second latency histograms.
pub const HLOG_FILE: &str = "history.hlog";

/// Which shard this run is: `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 0-based index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

/// Why a shard flag is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is not `I/N` with `I < N`, or `--shards` is 0.
    #[error("--shard {given:?}: {why} (expected I/N with 0 <= I < N, e.g. 0/3)")]
    Malformed {
        /// What was given.
        given: String,
        /// What is wrong with it.
        why: String,
    },
    /// `--shards N` without a usable index in the environment.
    #[error("--shards {count}: environment variable {INDEX_ENV} {why} (it holds this shard's 0-based index)")]
    Index {
        /// N.
        count: u32,
        /// What is wrong with the variable.
        why: String,
    },
    /// A shard needs a proxy and a mock that every shard shares.
    #[error(
        "--shard needs --target URL and --upstream URL: every shard sends to the same running proxy and reads \
         the same external mock-upstream (missing: {0})"
    )]
    NeedsSharedSut(&'static str),
    /// `--start-at` is not an RFC 3339 time.
    #[error("--start-at {given:?}: not an RFC 3339 time (e.g. 2026-12-05T20:00:00Z): {why}")]
    StartAt {
        /// What was given.
        given: String,
        /// The parser's reason.
        why: String,
    },
}

impl FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = |why: &str| ShardError::Malformed {
            given: s.to_string(),
            why: why.to_string(),
        };
        let (index, count) = s.split_once('/').ok_or_else(|| malformed("no '/'"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| malformed("I is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| malformed("N is not a number"))?;
        ShardSpec::new(index, count).map_err(|why| malformed(&why))
    }
}

impl ShardSpec {
    /// Index `index` of `count` shards; `Err` with the reason when `count` is 0 or `index >= count`.
    pub fn new(index: u32, count: u32) -> Result<ShardSpec, String> {
        if count == 0 {
            return Err("N must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "index {index} is not below the shard count {count}"
            ));
        }
        Ok(ShardSpec { index, count })
    }

    /// `--shards N`: the index from [`INDEX_ENV`] (`value` is the variable's value, if set).
    pub fn from_index_env(count: u32, value: Option<&str>) -> Result<ShardSpec, ShardError> {
        let error = |why: String| ShardError::Index { count, why };
        let value = value.ok_or_else(|| error("is not set".into()))?;
        let index: u32 = value
            .trim()
            .parse()
            .map_err(|_| error(format!("is {value:?}, not a number")))?;
        ShardSpec::new(index, count).map_err(|why| {
            if count == 0 {
                ShardError::Malformed {
                    given: format!("--shards {count}"),
                    why,
                }
            } else {
                error(format!("is {index}: {why}"))
            }
        })
    }

    /// Whether this shard drives the mock's admin API (reset, rules, timeline, latency): shard 0 only.
    pub fn owns_the_mock(self) -> bool {
        self.index == 0
    }

    /// This shard's part of an integer `total`: an even share, the remainder going one each to the first
    /// shards, so the shards sum to `total`.
    pub fn share_of_count(self, total: u32) -> u32 {
        total / self.count + u32::from(self.index < total % self.count)
    }

    /// This shard's part of a rate (evenly divided; the shards sum to `rate`).
    pub fn share_of_rate(self, rate: f64) -> f64 {
        rate / f64::from(self.count)
    }
}

/// The shard a run is: `--shard I/N`, or `--shards N` with the index from [`INDEX_ENV`] (`env_index` is the
/// variable's value); `None` for an unsharded run.
pub fn resolve(
    shard: Option<ShardSpec>,
    shards: Option<u32>,
    env_index: Option<&str>,
) -> Result<Option<ShardSpec>, ShardError> {
    match (shard, shards) {
        (Some(spec), _) => Ok(Some(spec)),
        (None, Some(count)) => ShardSpec::from_index_env(count, env_index).map(Some),
        (None, None) => Ok(None),
    }
}

/// A shard sends to a proxy and reads a mock that every shard shares: both must be given (after a profile's
/// `[attach]` filled them in).
pub fn require_shared_sut(target: Option<&str>, upstream: Option<&str>) -> Result<(), ShardError> {
    match (target, upstream) {
        (Some(_), Some(_)) => Ok(()),
        (None, Some(_)) => Err(ShardError::NeedsSharedSut("--target")),
        (Some(_), None) => Err(ShardError::NeedsSharedSut("--upstream")),
        (None, None) => Err(ShardError::NeedsSharedSut("--target and --upstream")),
    }
}

/// Shard `shard`'s share of `load` (pure): users, spawn rates, arrival rates, every stage's users or rate,
/// and `max_in_flight` (at least 1) divided; durations, think time, timeout and keep-alive unchanged. A
/// closed-model shard's spawn rate is in proportion to its users, so every shard finishes its ramp together.
pub fn divide(load: &LoadSpec, shard: ShardSpec) -> LoadSpec {
    match load {
        LoadSpec::Closed(c) => LoadSpec::Closed(ClosedLoad {
            users: shard.share_of_count(c.users),
            spawn_rate: spawn_share(c.spawn_rate, c.users, shard),
            stages: c
                .stages
                .iter()
                .map(|s| ClosedStage {
                    users: shard.share_of_count(s.users),
                    spawn_rate: s.spawn_rate.map(|r| spawn_share(r, s.users, shard)),
                    ..s.clone()
                })
                .collect(),
            ..c.clone()
        }),
        LoadSpec::Open(o) => LoadSpec::Open(OpenLoad {
            rate: shard.share_of_rate(o.rate),
            stages: o
                .stages
                .iter()
                .map(|s| OpenStage {
                    rate: shard.share_of_rate(s.rate),
                    ..s.clone()
                })
                .collect(),
            max_in_flight: shard.share_of_count(o.max_in_flight).max(1),
            ..o.clone()
        }),
    }
}

/// A spawn rate for a shard running `share_of_count(users)` of `users`: proportional to its users (the rate
/// must stay positive, so a shard without users keeps an even share).
fn spawn_share(rate: f64, users: u32, shard: ShardSpec) -> f64 {
    let mine = shard.share_of_count(users);
    if users == 0 || mine == 0 {
        shard.share_of_rate(rate)
    } else {
        rate * f64::from(mine) / f64::from(users)
    }
}

/// Shard `shard`'s seed: shard 0 keeps the run's `seed` (so `--shard 0/1` draws what an unsharded run draws),
/// the others a stream derived from `seed + index` (SplitMix64), distinct for each index.
pub fn shard_seed(seed: u64, shard: ShardSpec) -> u64 {
    if shard.index == 0 {
        return seed;
    }
    let mut z = seed
        .wrapping_add(u64::from(shard.index))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Parses `--start-at` (RFC 3339).
pub fn parse_start_at(given: &str) -> Result<SystemTime, ShardError> {
    let parsed = time::OffsetDateTime::parse(given, &time::format_description::well_known::Rfc3339)
        .map_err(|e| ShardError::StartAt {
            given: given.to_string(),
            why: e.to_string(),
        })?;
    Ok(SystemTime::from(parsed))
}

/// How late a load that started at `started` is against `start_at` (zero when on time or early).
pub fn lateness(start_at: SystemTime, started: SystemTime) -> Duration {
    started.duration_since(start_at).unwrap_or_default()
}

/// A load that starts later than this after `--start-at` is a late start: a shard says so among its verdict
/// reasons, and a merge containing it is INCONCLUSIVE (its shards did not overlap as planned).
pub const MAX_START_LATENESS: Duration = Duration::from_secs(1);

/// The verdict reason of a shard whose load started more than [`MAX_START_LATENESS`] after `--start-at`.
pub fn late_start_reason(record: &ShardRecord) -> Option<String> {
    let late_ms = record.start_lateness_ms;
    (late_ms > MAX_START_LATENESS.as_secs_f64() * 1000.0).then(|| {
        format!(
            "shard {}/{} started its load {:.1} s after --start-at {} (on {})",
            record.index,
            record.count,
            late_ms / 1000.0,
            record.start_at.as_deref().unwrap_or("?"),
            record.host
        )
    })
}

/// `at` as RFC 3339 UTC with milliseconds.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_default()
}

/// FNV-1a (64 bit) of a scenario file's bytes, as `fnv1a64:<hex>`: tells two scenario files apart, so a merge
/// refuses shards that ran different files under one name (not a cryptographic hash).
pub fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("fnv1a64:{hash:016x}")
}

/// This machine's host name (`unknown` when it cannot be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `shard.json`: what marks a results directory as one shard of a run, and what the merge needs that
/// `summary.json` does not say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    /// This shard's 0-based index.
    pub index: u32,
    /// How many shards the run has.
    pub count: u32,
    /// `--start-at`, RFC 3339 (null without it).
    pub start_at: Option<String>,
    /// When this shard's load started, RFC 3339 with milliseconds.
    pub started_at: String,
    /// How late the load started against `--start-at`, in milliseconds (0 without it or on time).
    pub start_lateness_ms: f64,
    /// The machine the shard ran on.
    pub host: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub scenario_file: String,
    /// [`content_hash`] of the scenario file.
    pub scenario_hash: String,
    /// The run's seed (before the shard's own stream was derived from it).
    pub seed: u64,
    /// This shard's seed ([`shard_seed`]).
    pub shard_seed: u64,
    /// Planned run time, in seconds (the merge's drift windows).
    pub run_time_s: f64,
    /// Latency-drift window, in seconds.
    pub drift_window_s: f64,
    /// The thresholds the shard judged with, command-line overrides applied: the merge judges the whole with
    /// the same.
    pub thresholds: load_stats::thresholds::Thresholds,
}

impl ShardRecord {
    /// The [`ShardSpec`] this record is.
    pub fn spec(&self) -> ShardSpec {
        ShardSpec {
            index: self.index,
            count: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ThinkTime;

    fn spec(index: u32, count: u32) -> ShardSpec {
        ShardSpec::new(index, count).expect("valid")
    }

    #[test]
    fn parsing_table() {
        for (given, want) in [
            ("0/3", Ok((0, 3))),
            ("2/3", Ok((2, 3))),
            (" 1 / 2 ", Ok((1, 2))),
            ("3/3", Err("index 3 is not below the shard count 3")),
            ("0/0", Err("N must be at least 1")),
            ("1", Err("no '/'")),
            ("a/3", Err("I is not a number")),
            ("-1/3", Err("I is not a number")),
        ] {
            let got = given.parse::<ShardSpec>().map(|s| (s.index, s.count));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{given}"),
                (Err(e), Err(why)) => assert!(e.to_string().contains(why), "{given}: {e}"),
                (got, want) => panic!("{given}: got {got:?}, want {want:?}"),
            }
        }
        for (value, want) in [
            (Some("1"), Ok(1)),
            (Some(" 2\n"), Ok(2)),
            (None, Err("is not set")),
            (Some("x"), Err("is \"x\", not a number")),
            (Some("3"), Err("is 3: index 3 is not below")),
        ] {
            let got = ShardSpec::from_index_env(3, value).map(|s| s.index);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{value:?}"),
                (Err(e), Err(why)) => assert!(e.to_string().contains(why), "{value:?}: {e}"),
                (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn resolving_and_the_shared_system_under_test() {
        let two_of_three = Some(spec(2, 3));
        assert_eq!(resolve(two_of_three, None, Some("0")), Ok(two_of_three));
        assert_eq!(resolve(None, Some(3), Some("2")), Ok(two_of_three));
        assert_eq!(resolve(None, None, Some("2")), Ok(None));
        assert!(resolve(None, Some(3), None).is_err());
        assert!(resolve(None, Some(0), Some("0")).is_err());
        assert_eq!(require_shared_sut(Some("t"), Some("u")), Ok(()));
        for (target, upstream, missing) in [
            (None, Some("u"), "(missing: --target)"),
            (Some("t"), None, "(missing: --upstream)"),
            (None, None, "(missing: --target and --upstream)"),
        ] {
            let err = require_shared_sut(target, upstream).expect_err("incomplete");
            assert!(err.to_string().ends_with(missing), "{err}");
        }
    }

    #[test]
    fn counts_divide_with_the_remainder_on_the_first_shards() {
        // (total, shards, expected shares)
        let cases: [(u32, u32, &[u32]); 6] = [
            (10, 3, &[4, 3, 3]),
            (9, 3, &[3, 3, 3]),
            (2, 3, &[1, 1, 0]),
            (0, 2, &[0, 0]),
            (7, 1, &[7]),
            (1000, 7, &[143, 143, 143, 143, 143, 143, 142]),
        ];
        for (total, count, want) in cases {
            let shares: Vec<u32> = (0..count)
                .map(|i| spec(i, count).share_of_count(total))
                .collect();
            assert_eq!(shares, want, "{total} over {count}");
            assert_eq!(shares.iter().sum::<u32>(), total, "{total} over {count}");
        }
    }

    fn closed() -> LoadSpec {
        LoadSpec::Closed(ClosedLoad {
            users: 10,
            spawn_rate: 5.0,
            think_time: ThinkTime::Constant(Duration::from_secs(1)),
            run_time: Duration::from_secs(60),
            stages: vec![
                ClosedStage {
                    duration: Duration::from_secs(30),
                    users: 20,
                    spawn_rate: Some(4.0),
                },
                ClosedStage {
                    duration: Duration::from_secs(30),
                    users: 5,
                    spawn_rate: None,
                },
            ],
            timeout: Duration::from_secs(30),
            keep_alive: true,
        })
    }

    fn open() -> LoadSpec {
        LoadSpec::Open(OpenLoad {
            rate: 100.0,
            run_time: Duration::from_secs(60),
            stages: vec![OpenStage {
                duration: Duration::from_secs(30),
                rate: 30.0,
                ramp: true,
            }],
            max_in_flight: 1000,
            timeout: Duration::from_secs(30),
            keep_alive: false,
        })
    }

    /// The shards' figures side by side: users/rates, spawn rates, stage users/rates, in-flight bounds.
    fn describe(load: &LoadSpec) -> String {
        match load {
            LoadSpec::Closed(c) => format!(
                "closed u={} r={:.3} stages={:?} t={}s",
                c.users,
                c.spawn_rate,
                c.stages
                    .iter()
                    .map(|s| (s.users, s.spawn_rate.map(|r| format!("{r:.3}"))))
                    .collect::<Vec<_>>(),
                c.run_time.as_secs()
            ),
            LoadSpec::Open(o) => format!(
                "open rate={:.3} stages={:?} inflight={} t={}s keepalive={}",
                o.rate,
                o.stages
                    .iter()
                    .map(|s| (format!("{:.3}", s.rate), s.ramp, s.duration.as_secs()))
                    .collect::<Vec<_>>(),
                o.max_in_flight,
                o.run_time.as_secs(),
                o.keep_alive
            ),
        }
    }

    #[test]
    fn loads_divide_so_the_shards_sum_to_the_scenario() {
        let cases: [(LoadSpec, u32, &[&str]); 3] = [
            (
                closed(),
                3,
                &[
                    "closed u=4 r=2.000 stages=[(7, Some(\"1.400\")), (2, None)] t=60s",
                    "closed u=3 r=1.500 stages=[(7, Some(\"1.400\")), (2, None)] t=60s",
                    "closed u=3 r=1.500 stages=[(6, Some(\"1.200\")), (1, None)] t=60s",
                ],
            ),
            (
                open(),
                3,
                &[
                    "open rate=33.333 stages=[(\"10.000\", true, 30)] inflight=334 t=60s keepalive=false",
                    "open rate=33.333 stages=[(\"10.000\", true, 30)] inflight=333 t=60s keepalive=false",
                    "open rate=33.333 stages=[(\"10.000\", true, 30)] inflight=333 t=60s keepalive=false",
                ],
            ),
            (
                closed(),
                1,
                &["closed u=10 r=5.000 stages=[(20, Some(\"4.000\")), (5, None)] t=60s"],
            ),
        ];
        for (load, count, want) in cases {
            let got: Vec<String> = (0..count)
                .map(|i| describe(&divide(&load, spec(i, count))))
                .collect();
            assert_eq!(got, want, "{} over {count}", describe(&load));
        }
        // Sums: the spawn rates and open rates add back up to the scenario's.
        let rates: f64 = (0..3)
            .map(|i| match divide(&closed(), spec(i, 3)) {
                LoadSpec::Closed(c) => c.spawn_rate,
                LoadSpec::Open(_) => unreachable!("closed stays closed"),
            })
            .sum();
        assert!((rates - 5.0).abs() < 1e-9, "{rates}");
    }

    #[test]
    fn seeds_are_distinct_per_shard_and_shard_zero_keeps_the_run_s() {
        let seeds: Vec<u64> = (0..8).map(|i| shard_seed(42, spec(i, 8))).collect();
        assert_eq!(seeds[0], 42);
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 8, "{seeds:?}");
        assert_eq!(shard_seed(42, spec(3, 8)), shard_seed(42, spec(3, 4)));
        assert_ne!(shard_seed(42, spec(1, 2)), shard_seed(43, spec(1, 2)));
    }

    #[test]
    fn start_at_and_lateness() {
        let at = parse_start_at("2026-12-05T20:00:00Z").expect("rfc3339");
        assert_eq!(
            lateness(at, at + Duration::from_millis(1500)),
            Duration::from_millis(1500)
        );
        assert_eq!(lateness(at, at - Duration::from_secs(1)), Duration::ZERO);
        let err = parse_start_at("20:00").expect_err("not rfc3339");
        assert!(
            err.to_string()
                .starts_with("--start-at \"20:00\": not an RFC 3339 time"),
            "{err}"
        );
        assert_ne!(content_hash(b"a = 1"), content_hash(b"a = 2"));
        assert_eq!(content_hash(b""), "fnv1a64:cbf29ce484222325");
    }
}
