//! Semantic checks that serde types cannot express, each reported with the field path and its line.

use super::spec::{BodySpec, RequestSpec, Scenario, TimelineEvent};
use super::ScenarioError;
use std::ops::Range;
use std::path::Path;

/// Most body variants one `choose` may expand to (the cartesian product of its value lists).
const MAX_BODY_VARIANTS: usize = 1024;

/// Locates fields in the source text so errors can cite a line.
pub(super) struct Locator<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Locator<'_> {
    /// Error for `field` (path) whose key `key` lives inside the table at `span`.
    pub(super) fn err(
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
    scenario.load = super::load::build_load(
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
    validate_behaviour(scenario, text)?;
    if let Err((field, message)) = scenario.monitor.validate_source() {
        let at = text.find("[monitor").unwrap_or(0);
        return Err(ScenarioError::invalid(
            &origin,
            text,
            at..at,
            format!("monitor.{field}"),
            message,
        ));
    }
    for (i, event) in scenario.timeline.iter().enumerate() {
        validate_timeline_event(&loc, &event.span(), i, event.get_ref())?;
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

/// `[behaviour]`: fractions within 0..=1, required checks with their limits set, `key_names` mapping to keys
/// the in-process mock has (the `[upstream]` keys, or the default three).
fn validate_behaviour(scenario: &Scenario, text: &str) -> Result<(), ScenarioError> {
    let Some(behaviour) = &scenario.behaviour else {
        return Ok(());
    };
    let thresholds = behaviour.get_ref();
    let mock_ids: Vec<String> = crate::sut::mock_config(scenario, 0)
        .keys
        .iter()
        .map(|k| k.id.clone())
        .collect();
    thresholds
        .validate()
        .and_then(|()| thresholds.validate_key_names(&mock_ids))
        .map_err(|e| {
            let loc = Locator {
                file: &scenario.origin,
                text,
            };
            loc.err(
                &behaviour.span(),
                e.field(),
                format!("behaviour.{}", e.field()),
                e.to_string(),
            )
        })
}

/// `[[timeline]]`: a positive duration and a fault rule the mock accepts.
fn validate_timeline_event(
    loc: &Locator,
    span: &Range<usize>,
    index: usize,
    event: &TimelineEvent,
) -> Result<(), ScenarioError> {
    let e = |key: &str, msg: String| loc.err(span, key, format!("timeline[{index}].{key}"), msg);
    if event.duration.is_some_and(|d| d.is_zero()) {
        return Err(e(
            "for",
            "must be longer than 0 s (omit it: until the end)".into(),
        ));
    }
    if event.fault.ttl.is_some() {
        return Err(e(
            "fault",
            "`ttl` is not allowed: the timeline's `for` ends the fault".into(),
        ));
    }
    event
        .fault
        .validate(&format!("timeline[{index}].fault"))
        .map_err(|err| e("fault", err.to_string()))
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
