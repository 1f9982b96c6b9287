//! Extractors that turn a request into trusted values, answering every
//! refusal in the API's one error shape: the caller ([`Admin`]), a JSON body
//! ([`JsonBody`]), the id in a route ([`PathId`]) and query parameters
//! ([`QueryParams`]).

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::api::error::AppError;
use crate::connections;
use crate::keys::{self, KeyKind};
use crate::store::Caller;

/// The caller of the admin API: a valid, unrevoked admin key, within its
/// rate limit. Its tenant is recorded on the request's log span.
#[derive(Debug)]
pub struct Admin(pub Caller);

impl Admin {
    /// The caller's tenant.
    pub fn tenant(&self) -> &str {
        &self.0.tenant_id
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = authenticate(parts, state, KeyKind::Admin).await?;
        Ok(Self(caller))
    }
}

/// An [`Admin`] whose tenant has engine time left ([`crate::rules::Shares`]),
/// for the routes that run the engine on the request's body: a tenant past
/// its share is refused (429 `engine_busy`) before the body is read.
#[derive(Debug)]
pub struct EngineAdmin(pub Admin);

impl FromRequestParts<AppState> for EngineAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let admin = Admin::from_request_parts(parts, state).await?;
        state.engine.admits(admin.tenant())?;
        Ok(Self(admin))
    }
}

/// The caller of the ingest API: a valid, unrevoked ingest key, within its
/// rate limit.
#[derive(Debug)]
pub struct Ingest(pub Caller);

impl FromRequestParts<AppState> for Ingest {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(Self(authenticate(parts, state, KeyKind::Ingest).await?))
    }
}

/// Finds the caller of a `kind` key, checks its rate limit, and records its
/// tenant on the log span. Never logs the key. A client address with too
/// many failures is refused before its key is looked up
/// ([`super::failures`]).
pub async fn authenticate(
    parts: &Parts,
    state: &AppState,
    kind: KeyKind,
) -> Result<Caller, AppError> {
    let client = connections::client(parts).map(|addr| addr.ip());
    let failed = || {
        if let Some(client) = client {
            state.auth_failures.failed(client, Instant::now());
        }
        AppError::unauthorized()
    };
    if let Some(client) = client {
        state.auth_failures.check(client, Instant::now())?;
    }
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer)
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(failed)?;
    let caller = state
        .store
        .caller(&keys::digest(presented))
        .await?
        .filter(|caller| caller.kind == kind)
        .ok_or_else(failed)?;
    tracing::Span::current().record("tenant", caller.tenant_id.as_str());
    let limiter = match kind {
        KeyKind::Admin => &state.limiter,
        KeyKind::Ingest => &state.ingest_limiter,
    };
    limiter.check(&caller.key_id)?;
    Ok(caller)
}

/// The token of a `Bearer` credential; the scheme in any letter case (RFC
/// 7235: schemes are case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// How long a request's whole body may take to arrive (`body_timeout`), put
/// on every request by [`super::app`].
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// A JSON body: `Content-Type: application/json` (415 otherwise), at most
/// the body limit (413), arrived within `body_timeout` (408), well-formed (400 naming the line and column), of
/// the expected shape (422).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|essence| essence.trim().to_ascii_lowercase())
            .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"));
        if !is_json {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        let BodyTimeout(timeout) = request
            .extensions()
            .get::<BodyTimeout>()
            .copied()
            .unwrap_or_else(|| BodyTimeout(crate::config::Config::default().body_timeout));
        let bytes = tokio::time::timeout(timeout, Bytes::from_request(request, state))
            .await
            .map_err(|_| {
                AppError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the body did not arrive within {} (body_timeout)",
                        humantime::format_duration(timeout)
                    ),
                )
            })?
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body is over the limit of {} bytes", super::BODY_LIMIT),
                ),
                _ => AppError::bad_request("unreadable_body", "the body could not be read"),
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| match error.classify() {
                serde_json::error::Category::Data => {
                    AppError::unprocessable("invalid_body", error.to_string())
                }
                _ => AppError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {error}"),
                ),
            })
    }
}

/// The `{id}` of a route. An id that is not UTF-8 once percent-decoded
/// (`%FF`) answers 400 in the API's error shape, not axum's plain text.
#[derive(Debug)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|rejection| AppError::bad_request("invalid_path", rejection.body_text()))
    }
}

/// Query parameters; a bad one answers 400.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(params)| Self(params))
            .map_err(|rejection| AppError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// A page size from `limit`: 1 to 100, 50 when absent; 400 otherwise.
pub fn page_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit.unwrap_or(50) {
        limit @ 1..=100 => Ok(limit),
        _ => Err(AppError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 100",
        )),
    }
}

/// Cuts a page out of `limit + 1` rows: the first `limit`, and the cursor of
/// the next page (from the last row kept) when there was one more.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(cursor)).flatten();
    (rows, next)
}
