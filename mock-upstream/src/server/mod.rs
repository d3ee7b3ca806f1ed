//! HTTP layer: the router ([`app`]), the provider pipeline, bodies, the admin API, metrics and the accept loop
//! that keeps sockets reachable for connection-level faults.

mod admin;
mod body;
mod metrics;
mod pipeline;
mod placement;
mod request_headers;
pub(crate) mod serve;
pub(crate) mod state;

use crate::providers::{openai, ApiError};
use crate::route::Route;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use body::ResponseBody;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use pipeline::ProviderCall;
use serve::ConnControl;
use state::MockState;

/// The whole router: provider endpoints, `/health`, `/metrics`, `/__admin/*`.
pub(crate) fn app(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .nest("/__admin", admin::routes(state.clone()))
        .fallback(unknown_route)
        .with_state(state)
}

/// Request bodies larger than this get a provider-shaped 413.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The provider endpoints a load test hammers. Our accept loop sends these straight to the pipeline,
/// skipping the router (matching, extractors, boxed bodies); every other request goes through [`app`].
pub(crate) fn hot_route(method: &Method, path: &str) -> Option<Route> {
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Some(Route::ChatCompletions),
        (&Method::POST, "/v1/messages") => Some(Route::Messages),
        (&Method::POST, "/v1/embeddings") => Some(Route::Embeddings),
        (&Method::GET, "/v1/models") => Some(Route::Models),
        _ => None,
    }
}

/// Read the request body (bounded) and run the provider pipeline.
pub(crate) async fn provider<B>(
    state: MockState,
    route: Route,
    headers: http::HeaderMap,
    body: B,
    model_in_path: Option<String>,
    conn: Option<ConnControl>,
) -> pipeline::Response
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return body_too_large(route),
    };
    let call = ProviderCall {
        route,
        headers,
        body,
        model_in_path,
        conn,
    };
    pipeline::handle(state, call).await
}

/// Take a routed request apart without copying its headers and run the provider pipeline.
async fn routed(
    state: MockState,
    route: Route,
    request: Request,
    model_in_path: Option<String>,
) -> pipeline::Response {
    let (parts, body) = request.into_parts();
    let conn = parts.extensions.get::<ConnControl>().cloned();
    provider(state, route, parts.headers, body, model_in_path, conn).await
}

fn body_too_large(route: Route) -> pipeline::Response {
    let error = ApiError::Injected {
        status: 413,
        message: Some(format!("request body exceeds {MAX_BODY_BYTES} bytes")),
    };
    let provider = route.provider();
    let mut response = http::Response::new(ResponseBody::whole(error.body(provider, "req_0")));
    *response.status_mut() = error.status(provider);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn chat_completions(State(state): State<MockState>, request: Request) -> pipeline::Response {
    routed(state, Route::ChatCompletions, request, None).await
}

async fn embeddings(State(state): State<MockState>, request: Request) -> pipeline::Response {
    routed(state, Route::Embeddings, request, None).await
}

async fn messages(State(state): State<MockState>, request: Request) -> pipeline::Response {
    routed(state, Route::Messages, request, None).await
}

async fn list_models(State(state): State<MockState>, request: Request) -> pipeline::Response {
    routed(state, Route::Models, request, None).await
}

async fn get_model(
    State(state): State<MockState>,
    Path(id): Path<String>,
    request: Request,
) -> pipeline::Response {
    routed(state, Route::Models, request, Some(id)).await
}

async fn health(State(state): State<MockState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "uptime_ms": state.now().as_millis() as u64}))
}

async fn metrics_text(State(state): State<MockState>) -> Response {
    let text = metrics::render(
        &state.ledger(),
        &state.latency_histograms,
        state.connections.get(),
    );
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// Unknown paths get OpenAI's 404 shape (what an SDK pointed at a wrong base URL sees).
async fn unknown_route(OriginalUri(uri): OriginalUri, request: Request) -> Response {
    let error = ApiError::UnknownRoute(format!("{} {}", request.method(), uri.path()));
    let mut response = (StatusCode::NOT_FOUND, openai::error_body(&error)).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MockConfig;
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    async fn admin_status(allow_remote: bool, peer: &str) -> StatusCode {
        let mut config = MockConfig::default();
        config.admin.allow_remote = allow_remote;
        let router = app(MockState::new(config).unwrap());
        let mut request = Request::builder()
            .uri("/__admin/rules")
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        router.oneshot(request).await.unwrap().status()
    }

    #[test]
    fn hot_routes_are_exact_method_and_path() {
        let cases = [
            (
                Method::POST,
                "/v1/chat/completions",
                Some(Route::ChatCompletions),
            ),
            (Method::POST, "/v1/messages", Some(Route::Messages)),
            (Method::POST, "/v1/embeddings", Some(Route::Embeddings)),
            (Method::GET, "/v1/models", Some(Route::Models)),
            (Method::GET, "/v1/chat/completions", None),
            (Method::POST, "/v1/models", None),
            (Method::GET, "/v1/models/gpt-4", None),
            (Method::POST, "/v1/chat/completions/", None),
            (Method::GET, "/health", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(hot_route(&method, path), expected, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn admin_is_loopback_only_unless_allowed() {
        let cases = [
            (false, "127.0.0.1:5000", StatusCode::OK),
            (false, "[::1]:5000", StatusCode::OK),
            (false, "10.1.2.3:5000", StatusCode::FORBIDDEN),
            (true, "10.1.2.3:5000", StatusCode::OK),
        ];
        for (allow_remote, peer, expected) in cases {
            assert_eq!(
                admin_status(allow_remote, peer).await,
                expected,
                "{peer} allow_remote={allow_remote}"
            );
        }
    }
}
