//! Health, readiness, metrics and the OpenAPI document. No authentication:
//! none of them reveals a tenant's data.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::api::error::{AppError, ErrorBody};
use crate::rules::Op;

/// The OpenAPI document, rendered once at start.
#[derive(Debug, Clone)]
pub(super) struct OpenApiJson(pub(super) Arc<str>);

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// A liveness or readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Status {
    /// `ok`.
    status: &'static str,
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// How long readiness waits for the database.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The database answers and the rule engine runs: the server can take work.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, AppError> {
    let not_ready = |what: &str| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the {what} is not ready"),
        )
    };
    // A probe gets its answer in time: a database that does not answer
    // within the second is not ready, whatever the pool's own wait.
    match tokio::time::timeout(READY_WAIT, state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database");
            return Err(not_ready("database"));
        }
        Err(_) => {
            tracing::warn!(wait = ?READY_WAIT, "readiness: the database did not answer");
            return Err(not_ready("database"));
        }
    }
    if let Err(error) = state.engine.run(|s| s.call(Op::Catalog, "null")).await {
        tracing::warn!(%error, "readiness: rule engine");
        return Err(not_ready("rule engine"));
    }
    Ok(Json(Status { status: "ok" }))
}

/// Prometheus metrics: requests by route and status, latency, webhooks,
/// deliveries by outcome, attempt latency, queue depth, oldest pending age.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    state
        .metrics
        .set_webhooks(state.store.webhook_counts().await?);
    state
        .metrics
        .set_queue(state.store.queue().await?, crate::store::now());
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    ))
}

/// This API's OpenAPI document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
async fn openapi(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}
