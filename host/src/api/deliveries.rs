//! Deliveries and their attempts, resending, test events, and explaining a
//! webhook against an event.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Admin, EngineAdmin, JsonBody, PathId, QueryParams, page_limit};
use super::history::time;
use super::webhooks::rfc3339;
use crate::api::error::{AppError, ErrorBody};
use crate::delivery::sender;
use crate::rules::Op;
use crate::store::{Attempt, DeliveryRecord, LogFilter, now};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(log))
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
    ticket_id: String,
    /// `pending`, `succeeded`, `failed` or `cancelled`.
    state: String,
    /// Attempts made so far.
    attempts: u32,
    /// The receiver's status at the last attempt, when it answered.
    last_status: Option<u16>,
    /// How long the last attempt took.
    last_duration_ms: Option<i64>,
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
    /// The headers it was sent with, the signature's value elided.
    headers: BTreeMap<&'static str, String>,
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
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The delivery log's filters, and paging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct LogParams {
    webhook_id: Option<String>,
    state: Option<String>,
    event: Option<String>,
    ticket_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A delivery's states.
const STATES: [&str; 4] = ["pending", "succeeded", "failed", "cancelled"];

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
        ticket_id: record.ticket_id,
        state: record.state,
        attempts: record.attempts,
        last_status: record.last_status,
        last_duration_ms: record.last_duration_ms,
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
    let id = record.id.clone();
    DeliveryDetail {
        matched: json(&record.explanation),
        delivery: view(record),
        attempts_log: attempts
            .into_iter()
            .map(|a| AttemptView {
                headers: sender::headers(&id, a.started_at, "(elided)")
                    .into_iter()
                    .collect(),
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
    let filter = LogFilter {
        webhook_id: Some(id),
        ..LogFilter::default()
    };
    Ok(Json(
        log_page(&state, admin.tenant(), &filter, params.limit, params.cursor).await?,
    ))
}

/// One page of the tenant's delivery log.
async fn log_page(
    state: &AppState,
    tenant: &str,
    filter: &LogFilter,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<DeliveryPage, AppError> {
    let limit = page_limit(limit)?;
    let before = match cursor {
        None => None,
        Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| {
            AppError::bad_request("invalid_query", "`cursor` is not one this API gave")
        })?),
    };
    let page = state
        .store
        .delivery_log(tenant, filter, before, limit)
        .await?;
    Ok(DeliveryPage {
        data: page.deliveries.into_iter().map(view).collect(),
        next_cursor: page.before.map(|seq| seq.to_string()),
    })
}

/// The tenant's deliveries, newest first, filtered by webhook, state,
/// event type, ticket and creation time. A page examines at most 5,000
/// deliveries to find those that match, so a page may hold fewer than
/// `limit` and still have a `nextCursor`: follow it until it is `null`.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries", operation_id = "delivery_log",
    params(
        ("webhookId" = Option<String>, Query, description = "One webhook's (`wh_…`)"),
        ("state" = Option<String>, Query, description = "`pending`, `succeeded`, `failed` or `cancelled`"),
        ("event" = Option<String>, Query, description = "An event type, e.g. `TicketCreated`"),
        ("ticketId" = Option<String>, Query, description = "One ticket's"),
        ("since" = Option<String>, Query, description = "Created at or after, RFC 3339 in UTC"),
        ("until" = Option<String>, Query, description = "Created before, RFC 3339 in UTC"),
        ("limit" = Option<u32>, Query, description = "Deliveries per page, 1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    security(("bearer" = [])),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such webhook (`webhookId`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn log(
    State(state): State<AppState>,
    admin: Admin,
    QueryParams(params): QueryParams<LogParams>,
) -> Result<Json<DeliveryPage>, AppError> {
    if let Some(given) = params.state.as_deref()
        && !STATES.contains(&given)
    {
        return Err(AppError::bad_request(
            "invalid_query",
            format!("`state` must be one of {}", STATES.join(", ")),
        ));
    }
    if let Some(given) = params.event.as_deref()
        && !inbox_rules::EventType::ALL
            .iter()
            .any(|e| e.as_str() == given)
    {
        return Err(AppError::bad_request(
            "invalid_query",
            "`event` must be an event type, e.g. TicketCreated",
        ));
    }
    // Another tenant's webhook is not found, as everywhere.
    if let Some(webhook) = params.webhook_id.as_deref() {
        state.webhooks.get(admin.tenant(), webhook).await?;
    }
    let filter = LogFilter {
        webhook_id: params.webhook_id,
        state: params.state,
        event_type: params.event,
        ticket_id: params.ticket_id,
        since: params
            .since
            .as_deref()
            .map(|s| time("since", s))
            .transpose()?,
        until: params
            .until
            .as_deref()
            .map(|u| time("until", u))
            .transpose()?,
    };
    Ok(Json(
        log_page(&state, admin.tenant(), &filter, params.limit, params.cursor).await?,
    ))
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
