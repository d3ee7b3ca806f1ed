//! Runtime key management (`/admin/keys`) and `/health`. The admin API answers only loopback peers unless
//! `--admin-allow-remote`, requires `--admin-token` when one is set, and never returns a secret.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{admin_access, AdminPolicy};
use crate::error::{ApiError, ProxyError};
use crate::key::KeySpec;
use crate::pool::PoolError;
use crate::provider::Provider;
use crate::state::AppState;

/// `/admin/keys` routes, guarded.
pub fn admin_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/keys", get(list_keys).post(add_keys))
        .route("/keys/{id}", delete(remove_key))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

/// `GET /health`: 200 with a summary of the key pool.
pub async fn health(State(state): State<AppState>) -> Response {
    let keys = state.pool.summary();
    Json(json!({ "status": "ok", "strategy": state.config.strategy, "keys": keys })).into_response()
}

fn admin_error(error: ProxyError) -> Response {
    ApiError {
        provider: Provider::OpenAi,
        error,
    }
    .into_response()
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let policy = AdminPolicy {
        token: state.config.admin_token.as_ref(),
        allow_remote: state.config.admin_allow_remote,
    };
    match admin_access(policy, peer, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => admin_error(error),
    }
}

async fn list_keys(State(state): State<AppState>) -> Response {
    Json(json!({ "keys": state.pool.statuses() })).into_response()
}

/// One key or a list of keys.
#[derive(Deserialize)]
#[serde(untagged)]
enum NewKeys {
    One(KeySpec),
    Many(Vec<KeySpec>),
}

async fn add_keys(State(state): State<AppState>, body: Bytes) -> Response {
    let keys = match serde_json::from_slice::<NewKeys>(&body) {
        Ok(NewKeys::One(key)) => vec![key],
        Ok(NewKeys::Many(keys)) => keys,
        Err(_) => {
            // serde's untagged error says nothing useful; explain the expected shape instead (never echo input,
            // it may contain a secret).
            let message = "body must be JSON {\"id\": ..., \"secret\": ..., \"provider\"?: \"openai\"|\"anthropic\"} \
                           or a list of such objects; no other fields";
            return admin_error(ProxyError::AdminBadRequest(message.to_string()));
        }
    };
    if let Some(key) = keys.iter().find(|k| k.secret.expose().is_empty()) {
        return admin_error(ProxyError::AdminBadRequest(format!(
            "key `{}`: secret must not be empty",
            key.id
        )));
    }
    match state.pool.add_all(&keys) {
        Ok(()) => {
            let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
            tracing::info!(?ids, "keys added");
            (StatusCode::CREATED, Json(json!({ "added": ids }))).into_response()
        }
        Err(PoolError::DuplicateId(id)) => admin_error(ProxyError::DuplicateKey(id)),
        Err(other) => admin_error(ProxyError::AdminBadRequest(other.to_string())),
    }
}

async fn remove_key(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if state.pool.remove(&id) {
        tracing::info!(key = id, "key removed");
        StatusCode::NO_CONTENT.into_response()
    } else {
        admin_error(ProxyError::KeyNotFound(id))
    }
}
