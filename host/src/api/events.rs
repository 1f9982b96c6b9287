//! `POST /v1/events`: the helpdesk's ticket events, with an ingest key.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Ingest, JsonBody};
use crate::api::error::{AppError, ErrorBody};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ingest))
}

/// Events accepted: stored with their deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct AcceptedView {
    /// Each event's id (`evt_…`), in request order.
    event_ids: Vec<String>,
    /// How many deliveries the events caused (one per matching webhook).
    deliveries: i64,
}

/// Take one ingest event (SPEC §2) or an array of up to 1,000. Answers 202
/// only once the events and every delivery they cause are stored. A bad
/// event rejects the whole request and stores nothing.
#[utoipa::path(post, path = "/v1/events", tag = "events",
    request_body(content = Object, description = "An ingest event, or an array of them"),
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Repeat it on a retry: the events are stored once")),
    security(("bearer" = [])),
    responses(
        (status = 202, body = AcceptedView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "`invalid_event`: each problem with its `index` and `path`",
            body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
async fn ingest(
    State(state): State<AppState>,
    Ingest(caller): Ingest,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<AcceptedView>), AppError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= 255)
                .ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_header",
                        "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
                    )
                })?,
        ),
    };
    let accepted = state.ingestor.ingest(&caller.tenant_id, body, key).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedView {
            event_ids: accepted.event_ids,
            deliveries: accepted.deliveries,
        }),
    ))
}
