//! Deliveries and their attempts, resending, test events, and explaining a
//! webhook against an event.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Admin, EngineAdmin, JsonBody, PathId, QueryParams, page, page_limit};
use super::webhooks::rfc3339;
use crate::api::error::{AppError, ErrorBody};
use crate::rules::Op;
use crate::store::{Attempt, DeliveryRecord, now};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(retry))
        .routes(routes!(test))
        .routes(routes!(explain))
}

/// A delivery: one event for one webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryView {
    /// `msg_…`: the `webhook-id` header of every attempt.
    id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    state: String,
    /// Attempts made so far.
    attempts: u32,
    /// When the next attempt is due (pending only), RFC 3339.
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    /// The body POSTed, byte for byte the same on every attempt.
    #[schema(value_type = Object)]
    payload: Value,
    created_at: String,
    updated_at: String,
}

/// A delivery with why it matched and its attempts, oldest first. (Lists
/// leave the explanation out, so that a page stays small.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryView,
    /// Why the webhook matched: the engine's explanation when the event came
    /// in (each check, each condition's result and the value it saw, long
    /// values shortened); `{"test": true}` for a test delivery.
    #[schema(value_type = inbox_rules::Explanation)]
    matched: Value,
    attempts_log: Vec<AttemptView>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttemptView {
    started_at: String,
    duration_ms: i64,
    /// The receiver's status, when it answered.
    status: Option<u16>,
    /// The first 1 KiB of its answer.
    response: Option<String>,
    /// `timeout`, `connect`, `refused_target`, `redirect`, `status`, …
    error_kind: Option<String>,
    error: Option<String>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeliveryPage {
    data: Vec<DeliveryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    next_cursor: Option<String>,
}

/// Paging through deliveries.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Which test event to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TestInput {
    /// The event type, e.g. `TicketCreated` (default).
    event: Option<String>,
}

/// What a test delivery did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestOutcome {
    /// Whether the receiver accepted it (a 2xx in time).
    delivered: bool,
    /// The delivery, with its one attempt.
    delivery: DeliveryDetail,
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn view(record: DeliveryRecord) -> DeliveryView {
    DeliveryView {
        payload: json(&record.payload),
        id: record.id,
        webhook_id: record.webhook_id,
        event_id: record.event_id,
        event_type: record.event_type,
        state: record.state,
        attempts: record.attempts,
        next_attempt_at: record
            .next_attempt_at
            .filter(|at| *at < i64::MAX)
            .map(rfc3339),
        last_error: record.last_error,
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
    }
}

fn detail(record: DeliveryRecord, attempts: Vec<Attempt>) -> DeliveryDetail {
    DeliveryDetail {
        matched: json(&record.explanation),
        delivery: view(record),
        attempts_log: attempts
            .into_iter()
            .map(|a| AttemptView {
                started_at: rfc3339(a.started_at),
                duration_ms: a.duration_ms,
                status: a.status,
                response: a.response,
                error_kind: a.error_kind,
                error: a.error,
            })
            .collect(),
    }
}

async fn find(state: &AppState, tenant: &str, id: &str) -> Result<DeliveryDetail, AppError> {
    let (record, attempts) = state
        .store
        .delivery(tenant, id)
        .await?
        .ok_or_else(|| AppError::not_found("delivery"))?;
    Ok(detail(record, attempts))
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "deliveries", operation_id = "list_deliveries",
    params(
        ("id" = String, Path, description = "`wh_…`"),
        ("limit" = Option<u32>, Query, description = "Deliveries per page, 1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    security(("bearer" = [])),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<DeliveryPage>, AppError> {
    state.webhooks.get(admin.tenant(), &id).await?;
    let limit = page_limit(params.limit)?;
    let before = match params.cursor {
        None => None,
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
            AppError::bad_request("invalid_query", "`cursor` is not one this API gave")
        })?),
    };
    let records = state
        .store
        .deliveries(admin.tenant(), &id, before, limit + 1)
        .await?;
    let (records, next_cursor) = page(records, limit, |r| r.seq.to_string());
    Ok(Json(DeliveryPage {
        data: records.into_iter().map(view).collect(),
        next_cursor,
    }))
}

/// A delivery with every attempt.
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries", operation_id = "get_delivery",
    params(("id" = String, Path, description = "`msg_…`")),
    security(("bearer" = [])),
    responses((status = 200, body = DeliveryDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<Json<DeliveryDetail>, AppError> {
    Ok(Json(find(&state, admin.tenant(), &id).await?))
}

/// Send a delivery again now, whatever its state (same body, same
/// `webhook-id`); it then follows the retry schedule as any delivery.
#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", tag = "deliveries",
    params(("id" = String, Path, description = "`msg_…`")),
    security(("bearer" = [])),
    responses((status = 202, body = DeliveryDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<DeliveryDetail>), AppError> {
    if !state.store.redeliver(admin.tenant(), &id, now()).await? {
        return Err(AppError::not_found("delivery"));
    }
    state.dispatcher.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(find(&state, admin.tenant(), &id).await?),
    ))
}

/// Send the webhook a sample event of a chosen type now, and answer with
/// the attempt's outcome. Test deliveries are logged and not retried.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "deliveries",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body = TestInput,
    security(("bearer" = [])),
    responses((status = 200, body = TestOutcome), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    JsonBody(input): JsonBody<TestInput>,
) -> Result<Json<TestOutcome>, AppError> {
    let sent = state.tests.send(admin.tenant(), &id, input.event).await?;
    Ok(Json(TestOutcome {
        delivered: sent.delivered,
        delivery: find(&state, admin.tenant(), &sent.delivery_id).await?,
    }))
}

/// Why the webhook would or would not fire for an ingest event: each check
/// in order, each condition with the value it saw, and the match mode's
/// result. Nothing is sent or stored.
#[utoipa::path(post, path = "/v1/webhooks/{id}/explain", tag = "deliveries",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body(content = Object, description = "An ingest event"),
    security(("bearer" = [])),
    responses((status = 200, description = "The engine's explanation", body = inbox_rules::Explanation),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn explain(
    State(state): State<AppState>,
    EngineAdmin(admin): EngineAdmin,
    PathId(id): PathId,
    // Checked as JSON and handed on as text: the engine reads the event.
    JsonBody(event): JsonBody<Box<serde_json::value::RawValue>>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), AppError> {
    let webhook = state.webhooks.get(admin.tenant(), &id).await?;
    let input = format!(r#"{{"webhook":{},"event":{event}}}"#, webhook.definition);
    let answer = state
        .engine
        .run_for(admin.tenant(), move |s| s.call(Op::Explain, &input))
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer,
    ))
}
