//! A webhook and the tenant's history: backtest a draft, replay a window,
//! recover failed deliveries, and the health chart's numbers. Handlers
//! read and check the request, call [`crate::history::History`], and shape
//! the answer.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Admin, EngineAdmin, JsonBody, PathId, QueryParams};
use super::webhooks::rfc3339;
use crate::api::error::{AppError, ErrorBody};
use crate::history::{
    Bucket, DEFAULT_BACKTEST_EVENTS, HistoryError, MAX_BACKTEST_EVENTS, MAX_CHART_ATTEMPTS, Window,
    chart,
};
use crate::store::{EventPlace, Millis, now};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backtest))
        .routes(routes!(replay))
        .routes(routes!(recover))
        .routes(routes!(stats))
}

/// The longest window a health chart covers.
const MAX_CHART_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The most buckets a health chart has.
const MAX_CHART_BUCKETS: u64 = 500;

/// Which stored events a backtest scans.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BacktestParams {
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
}

/// What a draft would have done.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BacktestView {
    /// Stored events looked at: the newest of the draft's event types in
    /// the window, at most `limit`.
    scanned: u32,
    /// How many of them the draft fires for.
    matched: u32,
    /// The matches by event type.
    by_event: BTreeMap<String, u32>,
    /// The newest matches (at most 20), each with the engine's explanation.
    samples: Vec<SampleView>,
    /// When the oldest event scanned was received (`null` when none was).
    from: Option<String>,
    /// When the newest event scanned was received.
    to: Option<String>,
}

/// A stored event the draft fires for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SampleView {
    event_id: String,
    /// The event's `occurredAt`, or when it was received.
    occurred_at: String,
    ticket_id: String,
    /// Why it fires: each check, each condition with the value it saw.
    #[schema(value_type = inbox_rules::Explanation)]
    explanation: Value,
}

/// A window of stored events to replay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayInput {
    /// Received at or after, RFC 3339 in UTC (`2026-12-01T00:00:00Z`).
    since: String,
    /// Received before (default: now).
    until: Option<String>,
    /// `next` of the previous answer, to go on where it stopped.
    cursor: Option<String>,
    /// Store nothing: `created` says how many it would create.
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReplayView {
    /// Stored events of the webhook's types looked at.
    scanned: u32,
    /// How many the webhook fires for now.
    matched: u32,
    /// Deliveries created: the matches that had none yet.
    created: u64,
    /// When the window held more than one request scans, pass as `cursor`
    /// (with the same window) to go on; `null` when the window is done.
    next: Option<String>,
}

/// Since when to recover failed deliveries.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecoverInput {
    /// Deliveries that failed for good at or after this time, RFC 3339 in
    /// UTC.
    since: String,
    /// Send nothing: `recovered` says how many it would send.
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
}

/// What a recover did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RecoverView {
    /// Failed deliveries made pending again (same body, same `webhook-id`).
    recovered: u64,
    /// More failed deliveries remain past the 10,000 one request recovers:
    /// call again.
    more: bool,
}

/// The health chart's window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatsParams {
    window: Option<String>,
    bucket: Option<String>,
}

/// A webhook's attempts over time.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatsView {
    /// The window's start and end (buckets end on a multiple of the
    /// bucket's length).
    since: String,
    until: String,
    /// The bucket's length, in seconds.
    bucket_seconds: u64,
    /// Oldest first.
    buckets: Vec<BucketView>,
    /// `false` when the window held more attempts than one chart reads
    /// (200,000): the last buckets then count only some.
    complete: bool,
}

/// Attempts that started in one bucket, by what became of their delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct BucketView {
    start: String,
    succeeded: u32,
    failed: u32,
    retrying: u32,
    cancelled: u32,
    /// Attempt duration, median, in milliseconds (`null` without attempts).
    latency_p50_ms: Option<i64>,
    /// Attempt duration, 95th percentile.
    latency_p95_ms: Option<i64>,
}

impl From<HistoryError> for AppError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Webhook(error) => error.into(),
            HistoryError::Engine(error) => error.into(),
            HistoryError::Store(error) => error.into(),
            HistoryError::Disabled => Self::new(
                axum::http::StatusCode::CONFLICT,
                "webhook_disabled",
                error.to_string(),
            ),
            HistoryError::Internal(_) => Self::internal(&error),
        }
    }
}

/// A time given in a request, RFC 3339 in UTC.
pub(super) fn time(name: &str, text: &str) -> Result<Millis, AppError> {
    let at = humantime::parse_rfc3339(text).map_err(|_| {
        AppError::bad_request(
            "invalid_time",
            format!("`{name}` must be a time in RFC 3339, in UTC: 2026-12-01T00:00:00Z"),
        )
    })?;
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX))
}

/// The window `since`..`until` (the start of time and now when absent).
fn window(since: Option<&str>, until: Option<&str>) -> Result<Window, AppError> {
    let since = since.map(|s| time("since", s)).transpose()?.unwrap_or(0);
    let until = until
        .map(|u| time("until", u))
        .transpose()?
        .unwrap_or_else(|| now() + 1);
    if since >= until {
        return Err(AppError::bad_request(
            "invalid_window",
            "`since` must be before `until`",
        ));
    }
    Ok(Window { since, until })
}

/// A replay's cursor: where its last scan stopped.
fn cursor_text(place: &EventPlace) -> String {
    format!("{}.{}", place.received_at, place.id)
}

fn read_cursor(text: &str) -> Result<EventPlace, AppError> {
    text.split_once('.')
        .and_then(|(at, id)| {
            Some(EventPlace {
                received_at: at.parse().ok()?,
                id: id.to_owned(),
            })
        })
        .ok_or_else(|| AppError::bad_request("invalid_cursor", "`cursor` is not one this API gave"))
}

/// Run a draft rule over the tenant's stored events: how many of them it
/// would have fired for, by type, and the newest matches explained.
/// Nothing is stored or sent. The draft is a create's body, validated as a
/// create would (422 with the engine's diagnostics). Events are scanned
/// newest first: at most `limit` (1 to 10,000; default 1,000) of the
/// draft's event types, received in the window, and no more than 16 MiB
/// of them.
#[utoipa::path(post, path = "/v1/webhooks/backtest", tag = "history",
    params(
        ("since" = Option<String>, Query, description = "Events received at or after, RFC 3339 in UTC (default: the oldest kept)"),
        ("until" = Option<String>, Query, description = "Events received before (default: now)"),
        ("limit" = Option<u32>, Query, description = "Events to scan, 1 to 10,000 (default 1,000)"),
    ),
    request_body = super::webhooks::WebhookInput,
    security(("bearer" = [])),
    responses((status = 200, body = BacktestView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "Invalid: the engine's diagnostics", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn backtest(
    State(state): State<AppState>,
    EngineAdmin(admin): EngineAdmin,
    QueryParams(params): QueryParams<BacktestParams>,
    JsonBody(draft): JsonBody<Map<String, Value>>,
) -> Result<Json<BacktestView>, AppError> {
    let limit = match params.limit.unwrap_or(DEFAULT_BACKTEST_EVENTS) {
        limit @ 1..=MAX_BACKTEST_EVENTS => limit,
        _ => {
            return Err(AppError::bad_request(
                "invalid_query",
                format!("`limit` must be between 1 and {MAX_BACKTEST_EVENTS}"),
            ));
        }
    };
    let window = window(params.since.as_deref(), params.until.as_deref())?;
    let done = state
        .history
        .backtest(admin.tenant(), draft, window, limit)
        .await?;
    Ok(Json(BacktestView {
        scanned: done.scanned,
        matched: done.matched,
        by_event: done.by_event,
        samples: done
            .samples
            .into_iter()
            .map(|s| SampleView {
                occurred_at: s.occurred_at.unwrap_or_else(|| rfc3339(s.received_at)),
                event_id: s.event_id,
                ticket_id: s.ticket_id,
                explanation: serde_json::from_str(&s.explanation).unwrap_or(Value::Null),
            })
            .collect(),
        from: done.span.map(|(oldest, _)| rfc3339(oldest)),
        to: done.span.map(|(_, newest)| rfc3339(newest)),
    }))
}

/// Give the webhook a delivery for every stored event of the window that
/// it fires for now (its rule as it is today) and has none for yet: for a
/// new webhook that wants history, or after a rule was fixed. However
/// often it is called, an event gets at most one delivery per webhook.
/// One call scans at most 10,000 events, oldest first; `next` says where
/// to go on.
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "history",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body = ReplayInput,
    security(("bearer" = [])),
    responses((status = 200, body = ReplayView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The webhook is disabled", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    EngineAdmin(admin): EngineAdmin,
    PathId(id): PathId,
    JsonBody(input): JsonBody<ReplayInput>,
) -> Result<Json<ReplayView>, AppError> {
    let window = window(Some(&input.since), input.until.as_deref())?;
    let after = input.cursor.as_deref().map(read_cursor).transpose()?;
    let done = state
        .history
        .replay(admin.tenant(), &id, window, after, input.dry_run)
        .await?;
    Ok(Json(ReplayView {
        scanned: done.scanned,
        matched: done.matched,
        created: done.created,
        next: done.next.as_ref().map(cursor_text),
    }))
}

/// Send every delivery of the webhook that failed for good since `since`
/// again: the same body and `webhook-id`, on the retry schedule again.
/// One call recovers at most 10,000, oldest first; `more` says whether to
/// call again.
#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "history",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body = RecoverInput,
    security(("bearer" = [])),
    responses((status = 200, body = RecoverView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn recover(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    JsonBody(input): JsonBody<RecoverInput>,
) -> Result<Json<RecoverView>, AppError> {
    let since = time("since", &input.since)?;
    let (recovered, more) = state
        .history
        .recover(admin.tenant(), &id, since, input.dry_run)
        .await?;
    Ok(Json(RecoverView { recovered, more }))
}

/// A duration given in a request (`24h`, `15m`).
fn duration(name: &str, text: &str) -> Result<Duration, AppError> {
    humantime::parse_duration(text).map_err(|_| {
        AppError::bad_request(
            "invalid_query",
            format!("`{name}` must be a duration such as 24h or 15m"),
        )
    })
}

/// The webhook's attempts over a window (default the last 24 hours), in
/// buckets (default an hour): by what became of their delivery, and their
/// latency. At most 7 days and 500 buckets, a bucket at least a minute.
#[utoipa::path(get, path = "/v1/webhooks/{id}/stats", tag = "history",
    params(
        ("id" = String, Path, description = "`wh_…`"),
        ("window" = Option<String>, Query, description = "How far back, e.g. `24h` (default), at most `7days`"),
        ("bucket" = Option<String>, Query, description = "Each bucket's length, e.g. `1h` (default), at least `1m`"),
    ),
    security(("bearer" = [])),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn stats(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    QueryParams(params): QueryParams<StatsParams>,
) -> Result<Json<StatsView>, AppError> {
    let span = duration("window", params.window.as_deref().unwrap_or("24h"))?;
    let bucket = duration("bucket", params.bucket.as_deref().unwrap_or("1h"))?;
    if span > MAX_CHART_WINDOW || span < bucket {
        return Err(AppError::bad_request(
            "invalid_query",
            "`window` must be at most 7 days and at least one bucket",
        ));
    }
    if bucket < Duration::from_secs(60) || span.as_secs() / bucket.as_secs() > MAX_CHART_BUCKETS {
        return Err(AppError::bad_request(
            "invalid_query",
            format!(
                "`bucket` must be at least a minute, and at most {MAX_CHART_BUCKETS} of them fill the window"
            ),
        ));
    }
    let bucket_ms = Millis::try_from(bucket.as_millis()).unwrap_or(Millis::MAX);
    let span_ms = Millis::try_from(span.as_millis()).unwrap_or(Millis::MAX);
    // The last bucket ends at the next multiple of its length: hours on
    // the hour, whenever the chart is asked for.
    let until = (now() / bucket_ms + 1) * bucket_ms;
    let window = Window {
        since: until - (span_ms + bucket_ms - 1) / bucket_ms * bucket_ms,
        until,
    };
    let points = state
        .history
        .attempts(admin.tenant(), &id, window, MAX_CHART_ATTEMPTS)
        .await?;
    let complete = points.len() < MAX_CHART_ATTEMPTS as usize;
    let buckets = chart(&points, window, bucket_ms);
    Ok(Json(StatsView {
        since: rfc3339(window.since),
        until: rfc3339(window.until),
        bucket_seconds: bucket.as_secs(),
        buckets: buckets.into_iter().map(bucket_view).collect(),
        complete,
    }))
}

fn bucket_view(bucket: Bucket) -> BucketView {
    BucketView {
        start: rfc3339(bucket.start),
        succeeded: bucket.succeeded,
        failed: bucket.failed,
        retrying: bucket.retrying,
        cancelled: bucket.cancelled,
        latency_p50_ms: bucket.latency.map(|(p50, _)| p50),
        latency_p95_ms: bucket.latency.map(|(_, p95)| p95),
    }
}
