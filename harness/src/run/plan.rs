//! The load actually run: the scenario's `[load]` with the command line's overrides applied (pure).

use crate::cli::RunArgs;
use crate::engine::TagFilter;
use crate::scenario::{LoadSpec, OpenLoad, Scenario, DEFAULT_MAX_IN_FLIGHT};

/// Load model, seed and tag selection after overrides.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Load model.
    pub load: LoadSpec,
    /// Seed.
    pub seed: u64,
    /// Tag selection.
    pub tags: TagFilter,
}

/// Why an override does not fit the scenario.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(String);

impl Plan {
    /// Applies `-u`, `-r`, `-t`, `--rate`, `--seed`, `--tags`, `--exclude-tags` to `scenario`.
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
        Ok(Plan {
            load,
            seed: args.seed.unwrap_or(scenario.seed),
            tags: TagFilter {
                include: args.tags.clone(),
                exclude: args.exclude_tags.clone(),
            },
        })
    }

    /// Total run time.
    pub fn run_time(&self) -> std::time::Duration {
        run_time(&self.load)
    }
}

fn run_time(load: &LoadSpec) -> std::time::Duration {
    match load {
        LoadSpec::Closed(c) => c.run_time,
        LoadSpec::Open(o) => o.run_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

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
}
