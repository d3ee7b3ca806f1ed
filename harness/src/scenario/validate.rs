//! Semantic checks that serde types cannot express, each reported with the field path and its line.

use super::spec::{
    BodySpec, ClosedLoad, ClosedStage, LoadFile, LoadModel, LoadSpec, OpenLoad, OpenStage,
    RequestSpec, Scenario, ThinkTime, DEFAULT_MAX_IN_FLIGHT, DEFAULT_SPAWN_RATE, DEFAULT_TIMEOUT,
};
use super::ScenarioError;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// Most body variants one `choose` may expand to (the cartesian product of its value lists).
const MAX_BODY_VARIANTS: usize = 1024;

/// Locates fields in the source text so errors can cite a line.
struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    /// Error for `field` (path) whose key `key` lives inside the table at `span`.
    fn err(
        &self,
        span: &Range<usize>,
        key: &str,
        field: String,
        message: impl Into<String>,
    ) -> ScenarioError {
        let at = self.key_offset(span, key).unwrap_or(span.start);
        ScenarioError::invalid(self.file, self.text, at..at, field, message.into())
    }

    /// Byte offset of `key =` at the start of a line of the table starting at `span` (up to the next header).
    fn key_offset(&self, span: &Range<usize>, key: &str) -> Option<usize> {
        let body = self.text.get(span.start..)?;
        let mut offset = 0;
        for (i, line) in body.split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            if i > 0 && trimmed.starts_with('[') {
                return None;
            }
            if let Some(rest) = trimmed.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return Some(span.start + offset + (line.len() - trimmed.len()));
                }
            }
            offset += line.len();
        }
        None
    }
}

/// Validates `scenario` in place (also resolving request bodies).
pub(super) fn validate(
    scenario: &mut Scenario,
    text: &str,
    base_dir: &Path,
) -> Result<(), ScenarioError> {
    let origin = scenario.origin.clone();
    let loc = Locator {
        file: &origin,
        text,
    };
    let whole = 0..text.len();
    if scenario.name.trim().is_empty() {
        return Err(loc.err(&whole, "name", "name".into(), "must not be empty"));
    }
    scenario.load = build_load(
        &loc,
        scenario.load_file.span(),
        scenario.load_file.get_ref(),
    )?;
    if scenario.requests.is_empty() {
        return Err(loc.err(
            &whole,
            "request",
            "request".into(),
            "at least one [[request]] is required",
        ));
    }
    for (i, req) in scenario.requests.iter_mut().enumerate() {
        let span = req.span();
        validate_request(&loc, &span, i, req.get_mut(), base_dir)?;
    }
    if let Some(upstream) = &scenario.upstream {
        if let Err((field, message)) = upstream.get_ref().validate() {
            let span = upstream.span();
            return Err(ScenarioError::invalid(
                &origin,
                text,
                span,
                format!("upstream.{field}"),
                message,
            ));
        }
    }
    if scenario.requests.iter().all(|r| r.get_ref().weight == 0) {
        return Err(loc.err(
            &whole,
            "request",
            "request[].weight".into(),
            "at least one weight must be > 0",
        ));
    }
    Ok(())
}

/// Turns the flat `[load]` table into the validated model, rejecting fields of the other model.
fn build_load(
    loc: &Locator,
    span: Range<usize>,
    raw: &LoadFile,
) -> Result<LoadSpec, ScenarioError> {
    let e = |key: &str, msg: &str| loc.err(&span, key, format!("load.{key}"), msg);
    let positive = |x: f64| x.is_finite() && x > 0.0;
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
        return Err(e(
            key,
            &format!("not a field of the {:?} model", raw.model).to_lowercase(),
        ));
    }
    let stages_time: Duration = raw.stages.iter().map(|s| s.get_ref().duration).sum();
    let run_time = match (raw.run_time, raw.stages.is_empty()) {
        (Some(t), _) => t,
        (None, false) => stages_time,
        (None, true) => return Err(e("run_time", "required when there are no stages")),
    };
    if run_time.is_zero() {
        return Err(e("run_time", "must be > 0"));
    }
    let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let keep_alive = raw.keep_alive.unwrap_or(true);
    let stage_err = |i: usize, s: &Range<usize>, key: &str, msg: &str| {
        loc.err(s, key, format!("load.stages[{i}].{key}"), msg)
    };
    match raw.model {
        LoadModel::Closed => {
            let spawn_rate = raw.spawn_rate.unwrap_or(DEFAULT_SPAWN_RATE);
            if !positive(spawn_rate) {
                return Err(e(
                    "spawn_rate",
                    "must be a positive number of users per second",
                ));
            }
            let think_time = raw.think_time.unwrap_or_default();
            if let ThinkTime::Uniform { min, max } = think_time {
                if min > max {
                    return Err(e("think_time", "min must not exceed max"));
                }
            }
            let users = raw.users.unwrap_or(0);
            if raw.stages.is_empty() && users == 0 {
                return Err(e("users", "must be > 0 (or give stages)"));
            }
            let mut stages = Vec::new();
            for (i, s) in raw.stages.iter().enumerate() {
                let (sp, st) = (s.span(), s.get_ref());
                if st.rate.is_some() || st.ramp.is_some() {
                    return Err(stage_err(
                        i,
                        &sp,
                        "rate",
                        "closed-model stages take users (and spawn_rate)",
                    ));
                }
                let users = st
                    .users
                    .ok_or_else(|| stage_err(i, &sp, "users", "required"))?;
                if st.spawn_rate.is_some_and(|r| !positive(r)) {
                    return Err(stage_err(i, &sp, "spawn_rate", "must be > 0"));
                }
                stages.push(ClosedStage {
                    duration: st.duration,
                    users,
                    spawn_rate: st.spawn_rate,
                });
            }
            Ok(LoadSpec::Closed(ClosedLoad {
                users,
                spawn_rate,
                think_time,
                run_time,
                stages,
                timeout,
                keep_alive,
            }))
        }
        LoadModel::Open => {
            let rate = raw.rate.unwrap_or(0.0);
            if raw.stages.is_empty() && !positive(rate) {
                return Err(e(
                    "rate",
                    "must be a positive number of requests per second (or give stages)",
                ));
            }
            let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
            if max_in_flight == 0 {
                return Err(e("max_in_flight", "must be > 0"));
            }
            let mut stages = Vec::new();
            for (i, s) in raw.stages.iter().enumerate() {
                let (sp, st) = (s.span(), s.get_ref());
                if st.users.is_some() || st.spawn_rate.is_some() {
                    return Err(stage_err(
                        i,
                        &sp,
                        "users",
                        "open-model stages take rate (and ramp)",
                    ));
                }
                let r = st
                    .rate
                    .ok_or_else(|| stage_err(i, &sp, "rate", "required"))?;
                if !(r.is_finite() && r >= 0.0) {
                    return Err(stage_err(i, &sp, "rate", "must be >= 0"));
                }
                stages.push(OpenStage {
                    duration: st.duration,
                    rate: r,
                    ramp: st.ramp.unwrap_or(false),
                });
            }
            Ok(LoadSpec::Open(OpenLoad {
                rate,
                run_time,
                stages,
                max_in_flight,
                timeout,
                keep_alive,
            }))
        }
    }
}

fn validate_request(
    loc: &Locator,
    span: &Range<usize>,
    index: usize,
    req: &mut RequestSpec,
    base_dir: &Path,
) -> Result<(), ScenarioError> {
    let e = |key: &str, msg: String| loc.err(span, key, format!("request[{index}].{key}"), msg);
    if req.name.trim().is_empty() {
        return Err(e("name", "must not be empty".into()));
    }
    if http::Method::from_bytes(req.method.as_bytes()).is_err() {
        return Err(e(
            "method",
            format!("{:?} is not an HTTP method", req.method),
        ));
    }
    if !req.path.starts_with('/') || req.path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(e(
            "path",
            format!("{:?} must be a path starting with '/'", req.path),
        ));
    }
    for (name, value) in &req.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(e("headers", format!("invalid header {name:?}")));
        }
    }
    if let Some(h) = &req.expect_header {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err(e("expect_header", format!("{h:?} is not a header name")));
        }
    }
    if req.expect.is_empty() || req.expect.iter().any(|s| !(100..=599).contains(s)) {
        return Err(e(
            "expect",
            "must list HTTP statuses between 100 and 599".into(),
        ));
    }
    let body = load_body(req, base_dir).map_err(|(key, msg)| e(key, msg))?;
    req.body_variants = expand_choices(body, &req.choose).map_err(|msg| e("choose", msg))?;
    Ok(())
}

/// The request's JSON body (inline or from `body_file`), if any.
fn load_body(
    req: &RequestSpec,
    base_dir: &Path,
) -> Result<Option<serde_json::Value>, (&'static str, String)> {
    match (&req.body, &req.body_file) {
        (Some(_), Some(_)) => Err(("body", "give either body or body_file, not both".into())),
        (Some(v), None) => serde_json::to_value(v)
            .map(Some)
            .map_err(|e| ("body", e.to_string())),
        (None, Some(file)) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ("body_file", format!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| ("body_file", format!("{} is not JSON: {e}", path.display())))
        }
        (None, None) => Ok(None),
    }
}

/// Every combination of `choose` values applied to `body`, serialized once up front.
fn expand_choices(
    body: Option<serde_json::Value>,
    choose: &std::collections::BTreeMap<String, Vec<toml::Value>>,
) -> Result<Vec<BodySpec>, String> {
    let Some(body) = body else {
        return if choose.is_empty() {
            Ok(Vec::new())
        } else {
            Err("needs a JSON object body".into())
        };
    };
    let mut variants = vec![body];
    for (field, values) in choose {
        if values.is_empty() {
            return Err(format!("{field}: needs at least one value"));
        }
        if variants.len() * values.len() > MAX_BODY_VARIANTS {
            return Err(format!("more than {MAX_BODY_VARIANTS} combinations"));
        }
        let mut next = Vec::with_capacity(variants.len() * values.len());
        for v in &variants {
            for value in values {
                let mut b = v.clone();
                let obj = b.as_object_mut().ok_or("needs a JSON object body")?;
                obj.insert(
                    field.clone(),
                    serde_json::to_value(value).map_err(|e| e.to_string())?,
                );
                next.push(b);
            }
        }
        variants = next;
    }
    variants
        .iter()
        .map(|v| {
            serde_json::to_vec(v)
                .map(|j| BodySpec { json: j.into() })
                .map_err(|e| e.to_string())
        })
        .collect()
}
