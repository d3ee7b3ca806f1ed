//! The flat `[load]` table → the validated closed or open model; fields of the other model are rejected.

use super::spec::{
    ClosedLoad, ClosedStage, LoadFile, LoadModel, LoadSpec, OpenLoad, OpenStage, StageFile,
    ThinkTime, DEFAULT_MAX_IN_FLIGHT, DEFAULT_SPAWN_RATE, DEFAULT_TIMEOUT,
};
use super::validate::Locator;
use super::ScenarioError;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// Settings shared by both models.
struct Common {
    run_time: Duration,
    timeout: Duration,
    keep_alive: bool,
}

/// Where errors go: the `[load]` table and the file.
struct Ctx<'a> {
    loc: &'a Locator<'a>,
    span: Range<usize>,
}

impl Ctx<'_> {
    fn err(&self, key: &str, msg: &str) -> ScenarioError {
        self.loc.err(&self.span, key, format!("load.{key}"), msg)
    }

    fn stage_err(
        &self,
        i: usize,
        stage: &Spanned<StageFile>,
        key: &str,
        msg: &str,
    ) -> ScenarioError {
        self.loc
            .err(&stage.span(), key, format!("load.stages[{i}].{key}"), msg)
    }
}

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Validates `[load]` (at `span`) into a [`LoadSpec`].
pub(super) fn build_load(
    loc: &Locator,
    span: Range<usize>,
    raw: &LoadFile,
) -> Result<LoadSpec, ScenarioError> {
    let cx = Ctx { loc, span };
    let foreign = match raw.model {
        LoadModel::Closed => vec![
            ("rate", raw.rate.is_some()),
            ("max_in_flight", raw.max_in_flight.is_some()),
        ],
        LoadModel::Open => vec![
            ("users", raw.users.is_some()),
            ("spawn_rate", raw.spawn_rate.is_some()),
            ("think_time", raw.think_time.is_some()),
        ],
    };
    if let Some((key, _)) = foreign.iter().find(|(_, present)| *present) {
        return Err(cx.err(
            key,
            &format!("not a field of the {:?} model", raw.model).to_lowercase(),
        ));
    }
    let run_time = match (raw.run_time, raw.stages.is_empty()) {
        (Some(t), _) => t,
        (None, false) => raw.stages.iter().map(|s| s.get_ref().duration).sum(),
        (None, true) => return Err(cx.err("run_time", "required when there are no stages")),
    };
    if run_time.is_zero() {
        return Err(cx.err("run_time", "must be > 0"));
    }
    let g = &raw.generator;
    for (key, value) in [
        ("generator.max_late_percent", g.max_late_percent),
        ("generator.max_dropped_percent", g.max_dropped_percent),
        ("generator.max_cpu_percent", g.max_cpu_percent),
    ] {
        if !(0.0..=100.0).contains(&value) {
            return Err(cx.err(key, "must be a percentage between 0 and 100"));
        }
    }
    let common = Common {
        run_time,
        timeout: raw.timeout.unwrap_or(DEFAULT_TIMEOUT),
        keep_alive: raw.keep_alive.unwrap_or(true),
    };
    match raw.model {
        LoadModel::Closed => build_closed(&cx, raw, common).map(LoadSpec::Closed),
        LoadModel::Open => build_open(&cx, raw, common).map(LoadSpec::Open),
    }
}

fn build_closed(cx: &Ctx, raw: &LoadFile, common: Common) -> Result<ClosedLoad, ScenarioError> {
    let spawn_rate = raw.spawn_rate.unwrap_or(DEFAULT_SPAWN_RATE);
    if !positive(spawn_rate) {
        return Err(cx.err(
            "spawn_rate",
            "must be a positive number of users per second",
        ));
    }
    let think_time = raw.think_time.unwrap_or_default();
    if matches!(think_time, ThinkTime::Uniform { min, max } if min > max) {
        return Err(cx.err("think_time", "min must not exceed max"));
    }
    let users = raw.users.unwrap_or(0);
    if raw.stages.is_empty() && users == 0 {
        return Err(cx.err("users", "must be > 0 (or give stages)"));
    }
    let stages = raw
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| closed_stage(cx, i, s))
        .collect::<Result<_, _>>()?;
    let Common {
        run_time,
        timeout,
        keep_alive,
    } = common;
    Ok(ClosedLoad {
        users,
        spawn_rate,
        think_time,
        run_time,
        stages,
        timeout,
        keep_alive,
    })
}

fn closed_stage(
    cx: &Ctx,
    i: usize,
    stage: &Spanned<StageFile>,
) -> Result<ClosedStage, ScenarioError> {
    let st = stage.get_ref();
    if st.rate.is_some() || st.ramp.is_some() {
        return Err(cx.stage_err(
            i,
            stage,
            "rate",
            "closed-model stages take users (and spawn_rate)",
        ));
    }
    let users = st
        .users
        .ok_or_else(|| cx.stage_err(i, stage, "users", "required"))?;
    if st.spawn_rate.is_some_and(|r| !positive(r)) {
        return Err(cx.stage_err(i, stage, "spawn_rate", "must be > 0"));
    }
    Ok(ClosedStage {
        duration: st.duration,
        users,
        spawn_rate: st.spawn_rate,
    })
}

fn build_open(cx: &Ctx, raw: &LoadFile, common: Common) -> Result<OpenLoad, ScenarioError> {
    let rate = raw.rate.unwrap_or(0.0);
    if raw.stages.is_empty() && !positive(rate) {
        return Err(cx.err(
            "rate",
            "must be a positive number of requests per second (or give stages)",
        ));
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        return Err(cx.err("max_in_flight", "must be > 0"));
    }
    let stages = raw
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| open_stage(cx, i, s))
        .collect::<Result<_, _>>()?;
    let Common {
        run_time,
        timeout,
        keep_alive,
    } = common;
    Ok(OpenLoad {
        rate,
        run_time,
        stages,
        max_in_flight,
        timeout,
        keep_alive,
    })
}

fn open_stage(cx: &Ctx, i: usize, stage: &Spanned<StageFile>) -> Result<OpenStage, ScenarioError> {
    let st = stage.get_ref();
    if st.users.is_some() || st.spawn_rate.is_some() {
        return Err(cx.stage_err(i, stage, "users", "open-model stages take rate (and ramp)"));
    }
    let rate = st
        .rate
        .ok_or_else(|| cx.stage_err(i, stage, "rate", "required"))?;
    if !(rate.is_finite() && rate >= 0.0) {
        return Err(cx.stage_err(i, stage, "rate", "must be >= 0"));
    }
    Ok(OpenStage {
        duration: st.duration,
        rate,
        ramp: st.ramp.unwrap_or(false),
    })
}
