//! The one error type of the HTTP API, and its one JSON shape:
//! `{"error": code, "message": …}`, plus the engine's `diagnostics` and
//! `warnings` when a webhook is invalid.
//!
//! The services (webhooks, ingest, the store, the engine) return errors of
//! their own; this module alone chooses their statuses and codes, with
//! `From`. Internal failures (the database, the engine trapping) are logged
//! here, with their details, and answered with a generic 500: SQL, file
//! paths, keys and secrets never reach a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::ingest::IngestError;
use crate::rules;
use crate::store::StoreError;
use crate::test_delivery::TestError;
use crate::webhooks::WebhookError;

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    /// Boxed: errors travel in every handler's `Result`, keep it small.
    body: Box<ErrorBody>,
    retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `invalid_webhook`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// A sentence for a person.
    pub message: String,
    /// The engine's errors, exactly as every surface reports them (only for
    /// `invalid_webhook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<inbox_rules::Diagnostic>>)]
    pub diagnostics: Option<Value>,
    /// The engine's warnings, alongside `diagnostics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<inbox_rules::Diagnostic>>)]
    pub warnings: Option<Value>,
}

impl AppError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: code,
                message: message.into(),
                diagnostics: None,
                warnings: None,
            }),
            retry_after: None,
        }
    }

    /// 404 for anything that does not exist *for this caller*: another
    /// tenant's webhook answers exactly like one that never existed.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// 401: no key, a malformed one, a revoked one or one of the wrong kind.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer <key>`",
        )
    }

    /// 400 for a request that cannot be read.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422 for a request that was read but cannot be accepted.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 `invalid_webhook` with the engine's report.
    pub fn invalid_webhook(message: impl Into<String>, errors: Value, warnings: Value) -> Self {
        Self::diagnosed("invalid_webhook", message, errors, Some(warnings))
    }

    /// 422 with diagnostics (and warnings, when there are any to show).
    pub fn diagnosed(
        code: &'static str,
        message: impl Into<String>,
        diagnostics: Value,
        warnings: Option<Value>,
    ) -> Self {
        let mut error = Self::unprocessable(code, message);
        error.body.diagnostics = Some(diagnostics);
        error.body.warnings = warnings;
        error
    }

    /// 429 with the seconds to wait.
    pub fn rate_limited(wait_seconds: u64) -> Self {
        Self::too_many(
            "rate_limited",
            format!("too many requests with this key; retry in {wait_seconds} s"),
            wait_seconds,
        )
    }

    /// 429 with `Retry-After: wait_seconds`.
    pub fn too_many(code: &'static str, message: impl Into<String>, wait_seconds: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(wait_seconds)
    }

    /// The same error, answered with `Retry-After: seconds`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 500 for a failure that is not the caller's; `detail` goes to the log
    /// only.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; the request may be retried",
        )
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} does not exist"),
            ),
            StoreError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            StoreError::IdempotencyMismatch(mismatch) => {
                Self::unprocessable("idempotency_mismatch", mismatch.to_string())
            }
            StoreError::WebhookQuota(_) => {
                Self::unprocessable("too_many_webhooks", error.to_string())
            }
            StoreError::PatternWeightQuota { .. } => {
                Self::unprocessable("too_costly", error.to_string())
            }
            // Nothing was written; the database is expected back.
            StoreError::Unavailable(_) => {
                tracing::error!(%error, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database cannot be reached now; nothing was changed, retry later",
                )
                .retry_after(DATABASE_RETRY_AFTER)
            }
            other => Self::internal(&other),
        }
    }
}

impl From<rules::Error> for AppError {
    fn from(error: rules::Error) -> Self {
        match error {
            // Only runaway input meets the engine's budgets; the body limit
            // keeps that rare, and it is the input's doing.
            rules::Error::Timeout(_) | rules::Error::OutOfMemory(_) => Self::unprocessable(
                "too_complex",
                format!("the input is too large or complex to check: {error}"),
            ),
            rules::Error::Input(message) => Self::unprocessable("invalid_body", message),
            rules::Error::Busy(wait) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "engine_busy",
                error.to_string(),
            )
            .retry_after(wait.as_secs() + 1),
            rules::Error::Starved(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "engine_unavailable",
                format!("{error}; retry later"),
            )
            .retry_after(ENGINE_RETRY_AFTER),
            rules::Error::Trap(_) => Self::internal(&error),
        }
    }
}

impl From<WebhookError> for AppError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotFound => Self::not_found("webhook"),
            WebhookError::Invalid(invalid) => {
                Self::invalid_webhook(invalid.summary, invalid.errors, invalid.warnings)
            }
            WebhookError::Conflict => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            WebhookError::OverlapTooLong(_) => {
                Self::unprocessable("invalid_duration", error.to_string())
            }
            WebhookError::Engine(error) => error.into(),
            WebhookError::Store(error) => error.into(),
            WebhookError::Internal(_) => Self::internal(&error),
        }
    }
}

/// The `Retry-After` of a request the database could not serve, in
/// seconds.
const DATABASE_RETRY_AFTER: u64 = 2;

/// The `Retry-After` of an ingest request the engine could not take in, in
/// seconds.
const ENGINE_RETRY_AFTER: u64 = 5;

impl From<IngestError> for AppError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::NotEvents(_) => Self::unprocessable("invalid_body", error.to_string()),
            IngestError::TooMany(_) => Self::unprocessable("too_many_events", error.to_string()),
            IngestError::TooManyDeliveries { .. } => {
                Self::unprocessable("too_many_deliveries", error.to_string())
            }
            IngestError::InvalidEvents { message, problems } => {
                Self::diagnosed("invalid_event", message, problems, None)
            }
            // The events were valid; the engine could not take them in now
            // (a deadline, or a batch too big for its memory). Retryable:
            // a 4xx would tell the client to drop valid events.
            IngestError::Engine(
                error @ (rules::Error::Timeout(_) | rules::Error::OutOfMemory(_)),
            ) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "engine_unavailable",
                format!("{error}; nothing was stored, retry later (or in smaller batches)"),
            )
            .retry_after(ENGINE_RETRY_AFTER),
            IngestError::Engine(error) => error.into(),
            IngestError::Store(error) => error.into(),
            IngestError::Internal(_) => Self::internal(&error),
        }
    }
}

impl From<TestError> for AppError {
    fn from(error: TestError) -> Self {
        let message = error.to_string();
        match error {
            TestError::Webhook(error) => error.into(),
            TestError::NoSuchEvent { errors, .. } => {
                Self::diagnosed("invalid_event", message, errors, None)
            }
            TestError::Engine(error) => error.into(),
            TestError::Store(error) => error.into(),
            TestError::Internal(detail) => Self::internal(&detail),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;

    use super::AppError;

    #[tokio::test]
    async fn internal_details_stay_in_the_log() {
        let detail = "error returned from database: no such column secret in SELECT secret FROM webhook_secrets";
        let response = AppError::internal(&detail).into_response();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            !body.contains("SELECT") && !body.contains("secret"),
            "{body}"
        );
        assert!(body.contains(r#""error":"internal""#), "{body}");
    }

    #[tokio::test]
    async fn a_lost_database_is_a_retryable_503_without_its_details() {
        let lost = crate::store::StoreError::Unavailable(
            "connection to 10.0.0.7:5432 refused (password=hunter2)".into(),
        );
        let response = AppError::from(lost).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(body.contains(r#""error":"database_unavailable""#), "{body}");
        assert!(
            !body.contains("10.0.0.7") && !body.contains("hunter2"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn rate_limits_say_when_to_retry() {
        let response = AppError::rate_limited(3).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
    }
}
