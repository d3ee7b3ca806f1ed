//! The admin API under `/__admin`: read/replace/patch/clear fault rules atomically, add a rule (with TTL), set
//! the fault-window epoch, reset counters and limiters, read and replace the mock-wide latency, the
//! Retry-After race grace and the served models, read the (redacted, effective) config and the ledger. Loopback peers only unless
//! configured otherwise; a bearer token when configured. A refused call changes nothing.

use super::state::MockState;
use crate::faults::{FaultRule, RuleError};
use crate::latency::LatencySettings;
use crate::models::{validate_models, ModelListError};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;

/// Why an admin call failed; rendered as `{"error":{"type","message"}}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("missing or wrong admin bearer token")]
    Unauthorized,
    #[error(
        "admin API only accepts loopback peers (set admin.allow_remote = true to change this)"
    )]
    NotLoopback,
    #[error("invalid JSON body: {0}")]
    BadJson(String),
    #[error("{0}")]
    BadRule(#[from] RuleError),
    #[error("no rule has id `{0}`")]
    NoSuchRule(String),
    #[error("invalid latency: field `{field}`: {problem}")]
    BadLatency { field: String, problem: String },
    #[error("invalid models: {0}")]
    BadModels(#[from] ModelListError),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, kind) = match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::NotLoopback => (StatusCode::FORBIDDEN, "forbidden"),
            AdminError::BadJson(_)
            | AdminError::BadRule(_)
            | AdminError::BadLatency { .. }
            | AdminError::BadModels(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AdminError::NoSuchRule(_) => (StatusCode::NOT_FOUND, "not_found"),
        };
        (
            status,
            Json(json!({"error": {"type": kind, "message": self.to_string()}})),
        )
            .into_response()
    }
}

/// Body of `GET`/`PUT /__admin/rules`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesBody {
    rules: Vec<FaultRule>,
}

/// Body of `PATCH /__admin/rules`: remove these ids and append these rules, atomically.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesPatch {
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    add: Vec<FaultRule>,
}

/// Body of `GET`/`PUT /__admin/retry-after-grace`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GraceBody {
    #[serde(with = "human_duration::serde::required")]
    retry_after_grace: std::time::Duration,
}

/// Body of `GET`/`PUT /__admin/models`: the served models, `null` = any model (a PUT may also send `[]`). The
/// field is required, so a misspelt body is a 400 rather than a silent "any model".
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelsBody {
    #[serde(deserialize_with = "Option::deserialize")]
    models: Option<Vec<String>>,
}

impl ModelsBody {
    fn of(configured: &[String]) -> ModelsBody {
        ModelsBody {
            models: (!configured.is_empty()).then(|| configured.to_vec()),
        }
    }
}

/// Routes mounted at `/__admin`.
pub(crate) fn routes(state: MockState) -> Router<MockState> {
    Router::new()
        .route(
            "/rules",
            get(list_rules)
                .put(replace_rules)
                .patch(patch_rules)
                .delete(clear_rules)
                .post(add_rule),
        )
        .route("/rules/{id}", delete(remove_rule))
        .route("/epoch", post(set_epoch))
        .route("/reset", post(reset))
        .route("/latency", get(latency).put(replace_latency))
        .route(
            "/retry-after-grace",
            get(retry_after_grace).put(set_retry_after_grace),
        )
        .route("/models", get(models).put(set_models))
        .route("/config", get(config))
        .route("/ledger", get(ledger))
        .layer(axum::middleware::from_fn_with_state(state, guard))
}

/// Loopback + bearer-token check in front of every admin route.
async fn guard(
    State(state): State<MockState>,
    request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    let admin = &state.config.admin;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    if !admin.allow_remote && !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Err(AdminError::NotLoopback);
    }
    if let Some(token) = &admin.token {
        let sent = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !sent
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|sent| constant_time_eq(sent.as_bytes(), token.as_bytes()))
        {
            return Err(AdminError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, AdminError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        AdminError::BadJson(format!("at `{path}`: {}", err.into_inner()))
    })
}

async fn list_rules(State(state): State<MockState>) -> Json<RulesBody> {
    Json(RulesBody {
        rules: state.list_rules(),
    })
}

async fn replace_rules(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AdminError> {
    let RulesBody { rules } = parse(&body)?;
    let ids = state.rules.replace(rules, state.now())?;
    Ok(Json(json!({"ids": ids})))
}

async fn patch_rules(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, AdminError> {
    let patch: RulesPatch = parse(&body)?;
    let ids = state.rules.patch(&patch.remove, patch.add, state.now())?;
    Ok(Json(json!({"ids": ids})))
}

async fn clear_rules(State(state): State<MockState>) -> StatusCode {
    state.rules.clear();
    StatusCode::NO_CONTENT
}

async fn add_rule(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), AdminError> {
    let rule: FaultRule = parse(&body)?;
    let id = state.rules.add(rule, state.now())?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

async fn remove_rule(
    State(state): State<MockState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    match state.rules.remove(&id, state.now()) {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(AdminError::NoSuchRule(id)),
    }
}

async fn set_epoch(State(state): State<MockState>) -> Json<serde_json::Value> {
    Json(json!({"epoch_ms": state.set_epoch_now()}))
}

async fn reset(State(state): State<MockState>) -> StatusCode {
    state.reset();
    StatusCode::NO_CONTENT
}

async fn config(State(state): State<MockState>) -> Json<crate::MockConfig> {
    Json(state.effective_config())
}

async fn latency(State(state): State<MockState>) -> Json<LatencySettings> {
    Json(state.latency_settings())
}

async fn replace_latency(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<Json<LatencySettings>, AdminError> {
    let settings: LatencySettings = parse(&body)?;
    settings
        .validate()
        .map_err(|(field, e)| AdminError::BadLatency {
            field: format!("{field}.{}", e.field),
            problem: e.problem.to_string(),
        })?;
    state.set_latency_settings(settings);
    Ok(Json(state.latency_settings()))
}

async fn retry_after_grace(State(state): State<MockState>) -> Json<GraceBody> {
    Json(GraceBody {
        retry_after_grace: state.retry_after_grace(),
    })
}

async fn set_retry_after_grace(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<Json<GraceBody>, AdminError> {
    let GraceBody { retry_after_grace } = parse(&body)?;
    state.set_retry_after_grace(retry_after_grace);
    Ok(Json(GraceBody { retry_after_grace }))
}

async fn models(State(state): State<MockState>) -> Json<ModelsBody> {
    Json(ModelsBody::of(state.served_models().configured()))
}

async fn set_models(
    State(state): State<MockState>,
    body: Bytes,
) -> Result<Json<ModelsBody>, AdminError> {
    let ModelsBody { models } = parse(&body)?;
    let models = models.unwrap_or_default();
    validate_models(&models)?;
    state.set_models(&models);
    Ok(Json(ModelsBody::of(&models)))
}

async fn ledger(State(state): State<MockState>) -> Json<crate::LedgerSnapshot> {
    Json(state.ledger())
}
