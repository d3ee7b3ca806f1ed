//! The load actually run: the scenario's `[load]` and `[monitor]` phases with the command line's overrides
//! applied (pure).

use std::time::Duration;

use crate::cli::RunArgs;
use crate::engine::TagFilter;
use crate::scenario::{LoadSpec, MonitorSpec, OpenLoad, Scenario, DEFAULT_MAX_IN_FLIGHT};
use crate::shard::{divide, shard_seed, ShardSpec};

/// Load model, seed and tag selection after overrides.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Load model.
    pub load: LoadSpec,
    /// Seed.
    pub seed: u64,
    /// Tag selection.
    pub tags: TagFilter,
    /// Warm-up and drain of the resource monitor.
    pub monitor: MonitorPhases,
    /// The shard this run is (`--shard`, resolved): `load` is its share and `seed` its own stream.
    pub shard: Option<ShardSpec>,
}

/// The resource monitor's warm-up (excluded from the leak trend) and drain (after the load) for this run.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorPhases {
    /// Warm-up from the start of the load.
    pub warmup: Duration,
    /// Drain after the load.
    pub drain: Duration,
    /// Set when the scenario's warm-up left too short a steady window for this run time and was shortened.
    pub clipped: Option<WarmupClip>,
}

/// A scenario warm-up shortened to fit the run.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupClip {
    /// The scenario's warm-up.
    pub configured: Duration,
    /// The run time it did not fit.
    pub run_time: Duration,
}

/// Longest default warm-up.
const MAX_DEFAULT_WARMUP: Duration = Duration::from_secs(300);

impl MonitorPhases {
    /// Warm-up: `--warmup`, else the scenario's `[monitor] warmup`, else a quarter of the run (at most 5 min).
    /// Drain: `--drain`, else `[monitor] drain`.
    ///
    /// A scenario's warm-up is written for the scenario's run time; under a shorter `-t` it may cover most of
    /// the run (soak's 5 min with `-t 5m`) and leave the leak verdicts nothing to judge. So when it leaves a
    /// steady window shorter than a quarter of the run, or than `[monitor.leak] min_steady`, it is clipped to
    /// the default warm-up and [`MonitorPhases::clipped`] says so. `--warmup` is taken as given, but must be
    /// shorter than the run.
    pub fn new(
        spec: &MonitorSpec,
        warmup: Option<Duration>,
        drain: Option<Duration>,
        run_time: Duration,
    ) -> Result<MonitorPhases, PlanError> {
        let default = (run_time / 4).min(MAX_DEFAULT_WARMUP);
        let drain = drain.unwrap_or(spec.drain);
        if let Some(warmup) = warmup {
            if warmup >= run_time {
                return Err(PlanError(format!(
                    "--warmup {}: must be shorter than the run time ({}), or no sample is judged for leaks",
                    human_duration::format(warmup),
                    human_duration::format(run_time)
                )));
            }
            return Ok(MonitorPhases {
                warmup,
                drain,
                clipped: None,
            });
        }
        let configured = spec.warmup.unwrap_or(default);
        let steady = run_time.saturating_sub(configured);
        let judgeable = steady >= spec.leak.min_steady && steady >= run_time / 4;
        let (warmup, clipped) = if judgeable || configured <= default {
            (configured, None)
        } else {
            let clip = WarmupClip {
                configured,
                run_time,
            };
            (default, Some(clip))
        };
        Ok(MonitorPhases {
            warmup,
            drain,
            clipped,
        })
    }

    /// The line printed before the load when the warm-up was clipped (`None` otherwise).
    pub fn clip_notice(&self) -> Option<String> {
        let clip = self.clipped.as_ref()?;
        let format = human_duration::format;
        Some(format!(
            "harness: the scenario's [monitor] warmup {} leaves a steady window of {} in this {} run; warm-up \
             clipped to {} so the leak verdicts judge {} (set it with --warmup)",
            format(clip.configured),
            format(clip.run_time.saturating_sub(clip.configured)),
            format(clip.run_time),
            format(self.warmup),
            format(clip.run_time.saturating_sub(self.warmup))
        ))
    }
}

/// Why an override does not fit the scenario.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(String);

impl Plan {
    /// Applies `-u`, `-r`, `-t`, `--rate`, `--seed`, `--tags`, `--exclude-tags` to `scenario`, then takes the
    /// shard's share of the load and its seed (`--shard`, resolved into `args.shard`).
    /// `--rate` switches a closed scenario to the open model (keeping its timeout and keep-alive); `-u`
    /// replaces closed-model stages with a constant user count; `-t` cuts stages or extends the last one.
    pub fn new(scenario: &Scenario, args: &RunArgs) -> Result<Plan, PlanError> {
        for (flag, value) in [
            ("--max-p95-drift-ratio", args.max_p95_drift_ratio),
            ("--max-p95-drift-ms", args.max_p95_drift_ms),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(PlanError(format!("{flag}: must be a number >= 0")));
            }
        }
        let mut load = scenario.load.clone();
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(PlanError(format!(
                    "--rate {rate}: must be a positive number of requests/s"
                )));
            }
            if args.users.is_some() || args.spawn_rate.is_some() {
                return Err(PlanError(
                    "--rate (open model) cannot be combined with -u/-r (closed model)".into(),
                ));
            }
            load = LoadSpec::Open(match load {
                LoadSpec::Open(o) => OpenLoad {
                    rate,
                    stages: Vec::new(),
                    ..o
                },
                LoadSpec::Closed(c) => OpenLoad {
                    rate,
                    run_time: c.run_time,
                    stages: Vec::new(),
                    max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                    timeout: c.timeout,
                    keep_alive: c.keep_alive,
                },
            });
        }
        match &mut load {
            LoadSpec::Closed(c) => {
                if let Some(users) = args.users {
                    if users == 0 {
                        return Err(PlanError("-u/--users must be > 0".into()));
                    }
                    c.users = users;
                    c.stages.clear();
                }
                if let Some(rate) = args.spawn_rate {
                    if !(rate.is_finite() && rate > 0.0) {
                        return Err(PlanError(format!("-r/--spawn-rate {rate}: must be > 0")));
                    }
                    c.spawn_rate = rate;
                }
                if let Some(t) = args.run_time {
                    c.run_time = t;
                }
            }
            LoadSpec::Open(o) => {
                if args.users.is_some() || args.spawn_rate.is_some() {
                    return Err(PlanError(
                        "-u/-r apply to the closed model; this scenario is open (use --rate)"
                            .into(),
                    ));
                }
                if let Some(t) = args.run_time {
                    o.run_time = t;
                }
            }
        }
        if run_time(&load).is_zero() {
            return Err(PlanError("-t/--run-time must be > 0".into()));
        }
        let monitor =
            MonitorPhases::new(&scenario.monitor, args.warmup, args.drain, run_time(&load))?;
        let run_seed = args.seed.unwrap_or(scenario.seed);
        let (load, seed) = match args.shard {
            Some(shard) => (divide(&load, shard), shard_seed(run_seed, shard)),
            None => (load, run_seed),
        };
        Ok(Plan {
            monitor,
            load,
            seed,
            shard: args.shard,
            tags: TagFilter {
                include: args.tags.clone(),
                exclude: args.exclude_tags.clone(),
            },
        })
    }

    /// Total run time.
    pub fn run_time(&self) -> Duration {
        run_time(&self.load)
    }
}

fn run_time(load: &LoadSpec) -> Duration {
    match load {
        LoadSpec::Closed(c) => c.run_time,
        LoadSpec::Open(o) => o.run_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(load: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nseed = 3\n[load]\n{load}\n[[request]]\nname = \"a\"\npath = \"/\"\n"
        );
        Scenario::from_str_at(&text, "t.toml", Path::new(".")).expect("valid")
    }

    #[test]
    fn overrides_table() {
        let closed = "model = \"closed\"\nusers = 5\nstages = [{ duration = \"4s\", users = 9 }]";
        let open = "model = \"open\"\nrate = 10.0\nrun_time = \"2s\"";
        let args = |f: &dyn Fn(&mut RunArgs)| {
            let mut a = RunArgs::default();
            f(&mut a);
            a
        };
        // (scenario, args, expected description or error fragment)
        let cases: Vec<(&str, RunArgs, &str)> = vec![
            (closed, args(&|_| {}), "closed users=5 stages=1 t=4s seed=3"),
            (
                closed,
                args(&|a| a.users = Some(7)),
                "closed users=7 stages=0 t=4s seed=3",
            ),
            (
                closed,
                args(&|a| a.run_time = Some(Duration::from_secs(9))),
                "closed users=5 stages=1 t=9s seed=3",
            ),
            (
                closed,
                args(&|a| a.rate = Some(50.0)),
                "open rate=50 stages=0 t=4s seed=3",
            ),
            (
                closed,
                args(&|a| a.seed = Some(11)),
                "closed users=5 stages=1 t=4s seed=11",
            ),
            (
                open,
                args(&|a| a.rate = Some(20.0)),
                "open rate=20 stages=0 t=2s seed=3",
            ),
            (
                open,
                args(&|a| a.users = Some(3)),
                "error: -u/-r apply to the closed model",
            ),
            (
                closed,
                args(&|a| a.users = Some(0)),
                "error: -u/--users must be > 0",
            ),
            (closed, args(&|a| a.rate = Some(-1.0)), "error: --rate -1"),
        ];
        for (load, a, want) in cases {
            let got = match Plan::new(&scenario(load), &a) {
                Ok(p) => match &p.load {
                    LoadSpec::Closed(c) => format!(
                        "closed users={} stages={} t={}s seed={}",
                        c.users,
                        c.stages.len(),
                        c.run_time.as_secs(),
                        p.seed
                    ),
                    LoadSpec::Open(o) => {
                        format!(
                            "open rate={} stages={} t={}s seed={}",
                            o.rate,
                            o.stages.len(),
                            o.run_time.as_secs(),
                            p.seed
                        )
                    }
                },
                Err(e) => format!("error: {e}"),
            };
            assert!(
                got.starts_with(want),
                "{load} {a:?}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn monitor_phases_fit_the_run() {
        let secs = Duration::from_secs;
        let spec = |warmup: Option<u64>| MonitorSpec {
            warmup: warmup.map(secs),
            drain: secs(30),
            ..MonitorSpec::default()
        };
        // (scenario warm-up, --warmup, run time, expected warm-up, clipped?)
        let cases = [
            (None, None, 3600, 300, false),
            (None, None, 600, 150, false),
            (Some(300), None, 3600, 300, false),
            (Some(300), None, 600, 300, false),
            (Some(300), None, 300, 75, true),
            (Some(300), None, 360, 90, true),
            (Some(300), None, 200, 50, true),
            (Some(60), None, 60, 15, true),
            (Some(10), None, 20, 5, true),
            (Some(4), None, 20, 4, false),
            (Some(300), Some(240), 300, 240, false),
            (None, Some(10), 20, 10, false),
        ];
        for (configured, flag, run, want, clipped) in cases {
            let phases = MonitorPhases::new(&spec(configured), flag.map(secs), None, secs(run))
                .expect("fits");
            let what = format!("{configured:?} {flag:?} -t {run}s");
            assert_eq!(phases.warmup, secs(want), "{what}");
            assert_eq!(phases.clipped.is_some(), clipped, "{what}");
            assert_eq!(phases.clip_notice().is_some(), clipped, "{what}");
            assert_eq!(phases.drain, secs(30), "{what}");
        }
        let notice = MonitorPhases::new(&spec(Some(300)), None, None, secs(300))
            .expect("fits")
            .clip_notice()
            .expect("clipped");
        assert_eq!(
            notice,
            "harness: the scenario's [monitor] warmup 5m leaves a steady window of 0s in this 5m run; warm-up \
             clipped to 1m 15s so the leak verdicts judge 3m 45s (set it with --warmup)"
        );
        let drain = MonitorPhases::new(&spec(None), None, Some(secs(5)), secs(60)).expect("fits");
        assert_eq!(drain.drain, secs(5));
        let err =
            MonitorPhases::new(&spec(None), Some(secs(60)), None, secs(60)).expect_err("no window");
        assert!(
            err.to_string()
                .starts_with("--warmup 1m: must be shorter than the run time (1m)"),
            "{err}"
        );
    }
}
