//! `/v1/webhooks`: a tenant's webhooks. Handlers are thin: authenticate,
//! read the body, call [`crate::webhooks::Webhooks`], shape the answer.

use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Admin, JsonBody, PathId, QueryParams, page, page_limit};
use crate::api::error::{AppError, ErrorBody};
use crate::delivery::breaker::State as BreakerState;
use crate::delivery::tls::{self, CertificateSummary};
use crate::store::{Millis, WebhookRecord, now};
use crate::webhooks::Written;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, replace, patch, delete))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(rotate_secret))
}

/// A webhook as a client writes it: the engine's definition (every key
/// optional on `PATCH`; on `POST` and `PUT` a key left out takes its
/// default), and the client certificate, which is the server's. The engine
/// validates the definition and reports a key it does not have; the
/// server-owned keys a `GET` shows may be sent back and are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "documentation of the body; the services read it")]
pub(super) struct WebhookInput {
    #[serde(flatten)]
    definition: inbox_rules::Webhook,
    /// A client certificate to present to the receiver (mutual TLS); `null`
    /// removes it. Write-only: the key is never shown again.
    tls: Option<TlsInput>,
}

/// A client certificate and its key, both PEM.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "documentation of the body; the service reads it")]
pub(super) struct TlsInput {
    /// The certificate chain, leaf first.
    client_certificate: String,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    client_key: String,
}

/// What is shown of a webhook's client certificate: never its key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TlsView {
    client_certificate: CertificateSummary,
}

/// A stored webhook: its definition in the engine's canonical form, and
/// what the server keeps of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct WebhookView {
    #[serde(flatten)]
    definition: inbox_rules::Webhook,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    updated_at: String,
    /// Why the server disabled it (a `410 Gone`, days of failed
    /// deliveries), when it did; cleared by enabling it.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Its delivery circuit breaker: `closed`, `open` (deliveries wait) or
    /// `half_open` (one probe goes through).
    breaker: BreakerState,
    /// The client certificate it presents, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsView>,
}

/// A webhook just written, with the engine's warnings (valid, but worth a
/// look, such as a condition the expression never uses).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct WrittenView {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The engine's warnings.
    #[schema(value_type = Vec<inbox_rules::Diagnostic>)]
    warnings: Value,
}

/// A webhook just created: its signing secret is shown here and never again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreatedView {
    #[serde(flatten)]
    written: WrittenView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    secret: String,
}

/// A page of webhooks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct WebhookPage {
    data: Vec<WebhookView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A new secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RotatedSecret {
    /// The new `whsec_…`, shown only here.
    secret: String,
    /// Until when (RFC 3339) the previous secret keeps signing alongside.
    previous_expires_at: String,
}

/// Paging through webhooks.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    /// Webhooks per page, 1 to 100 (default 50).
    limit: Option<u32>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// RFC 3339 with milliseconds, UTC.
pub(super) fn rfc3339(at: Millis) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn view(state: &AppState, record: &WebhookRecord) -> Result<WebhookView, AppError> {
    let definition: inbox_rules::Webhook =
        serde_json::from_str(&record.definition).map_err(|e| AppError::internal(&e))?;
    Ok(WebhookView {
        definition,
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
        disabled_reason: record.disabled_reason.clone(),
        // This process's breaker, or another's (or an earlier run's) that
        // the store holds open.
        breaker: match state
            .dispatcher
            .breakers
            .state(&record.id, std::time::Instant::now())
        {
            BreakerState::Closed if record.paused_until.is_some_and(|until| until > now()) => {
                BreakerState::Open
            }
            own => own,
        },
        tls: record
            .client_tls
            .as_ref()
            .and_then(|tls| tls::summary(&tls.certificate))
            .map(|client_certificate| TlsView { client_certificate }),
    })
}

fn written(state: &AppState, written: Written) -> Result<Json<WrittenView>, AppError> {
    Ok(Json(WrittenView {
        webhook: view(state, &written.record)?,
        warnings: written.warnings,
    }))
}

/// Create a webhook.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = WebhookInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the only answer that shows the secret", body = CreatedView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Invalid: the engine's diagnostics", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<impl IntoResponse, AppError> {
    let (done, secret) = state.webhooks.create(admin.tenant(), body).await?;
    let location = format!("/v1/webhooks/{}", done.record.id);
    let Json(written) = written(&state, done)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedView { written, secret }),
    ))
}

/// List webhooks, oldest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", 
    params(
        ("limit" = Option<u32>, Query, description = "Webhooks per page, 1 to 100 (default 50)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    security(("bearer" = [])),
    responses((status = 200, body = WebhookPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    admin: Admin,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<WebhookPage>, AppError> {
    let limit = page_limit(params.limit)?;
    // One more than asked tells whether there is a next page.
    let records = state
        .store
        .webhooks(admin.tenant(), params.cursor.as_deref(), limit + 1)
        .await?;
    let (records, next_cursor) = page(records, limit, |r| r.id.clone());
    let data = records
        .iter()
        .map(|r| view(&state, r))
        .collect::<Result<_, _>>()?;
    Ok(Json(WebhookPage { data, next_cursor }))
}

/// Get a webhook.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    security(("bearer" = [])),
    responses((status = 200, body = WebhookView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<Json<WebhookView>, AppError> {
    Ok(Json(view(
        &state,
        &state.webhooks.get(admin.tenant(), &id).await?,
    )?))
}

/// Replace a webhook's definition.
#[utoipa::path(put, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body = WebhookInput,
    security(("bearer" = [])),
    responses((status = 200, body = WrittenView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn replace(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<WrittenView>, AppError> {
    written(
        &state,
        state.webhooks.replace(admin.tenant(), &id, body).await?,
    )
}

/// Change some of a webhook's keys (JSON merge patch, RFC 7396).
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body(content = WebhookInput, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, body = WrittenView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn patch(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<WrittenView>, AppError> {
    written(
        &state,
        state.webhooks.patch(admin.tenant(), &id, body).await?,
    )
}

/// Delete a webhook and its secrets.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<StatusCode, AppError> {
    state.webhooks.delete(admin.tenant(), &id).await?;
    state.dispatcher.breakers.reset(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    state: &AppState,
    admin: &Admin,
    id: &str,
    enabled: bool,
) -> Result<Json<WrittenView>, AppError> {
    let mut patch = Map::new();
    patch.insert("enabled".to_owned(), Value::Bool(enabled));
    let done = state.webhooks.patch(admin.tenant(), id, patch).await?;
    if enabled {
        // Enabled by hand: give the receiver a fresh start. Only once the
        // write succeeded for this caller: another tenant's id is a 404
        // above and leaves that webhook's breaker alone.
        state.dispatcher.breakers.reset(id);
        state.store.pause_webhook(id, None).await?;
    }
    written(state, done)
}

/// Enable a webhook.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    security(("bearer" = [])),
    responses((status = 200, body = WrittenView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<Json<WrittenView>, AppError> {
    set_enabled(&state, &admin, &id, true).await
}

/// Disable a webhook: it stops firing at once.
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    security(("bearer" = [])),
    responses((status = 200, body = WrittenView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
) -> Result<Json<WrittenView>, AppError> {
    set_enabled(&state, &admin, &id, false).await
}

/// How long the previous secret keeps signing after a rotation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RotateInput {
    /// A duration such as `0s` (cut the previous secret off at once, for
    /// one that leaked) or `1h`, at most `secret_overlap`, the default.
    previous_expires_in: Option<String>,
}

/// Give a webhook a new signing secret. The previous one keeps signing
/// alongside for the configured overlap (`secret_overlap`, 24 h by
/// default), or for `previousExpiresIn`; any older one stops at once.
#[utoipa::path(post, path = "/v1/webhooks/{id}/secret/rotate", tag = "webhooks",
    params(("id" = String, Path, description = "`wh_…`")),
    request_body(content = Option<RotateInput>, content_type = "application/json"),
    security(("bearer" = [])),
    responses((status = 200, body = RotatedSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    PathId(id): PathId,
    body: axum::body::Bytes,
) -> Result<Json<RotatedSecret>, AppError> {
    let input: RotateInput = match body.is_empty() {
        true => RotateInput {
            previous_expires_in: None,
        },
        false => serde_json::from_slice(&body).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => {
                AppError::unprocessable("invalid_body", error.to_string())
            }
            _ => AppError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {error}"),
            ),
        })?,
    };
    let expires_in = input
        .previous_expires_in
        .map(|text| {
            humantime::parse_duration(&text).map_err(|e| {
                AppError::unprocessable(
                    "invalid_duration",
                    format!("previousExpiresIn {text:?} is not a duration such as 0s or 1h ({e})"),
                )
            })
        })
        .transpose()?;
    let (secret, until) = state
        .webhooks
        .rotate_secret(admin.tenant(), &id, expires_in)
        .await?;
    Ok(Json(RotatedSecret {
        secret,
        previous_expires_at: rfc3339(until),
    }))
}
