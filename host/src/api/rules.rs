//! `/v1/rules/validate` and `/v1/catalog`: the rule engine, asked directly.
//! Answers are the engine's JSON text, passed through untouched, so they are
//! byte for byte what the browser and the npm package answer.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Admin, EngineAdmin, JsonBody};
use crate::api::error::{AppError, ErrorBody};
use crate::rules::Op;
use crate::webhooks::{TLS, without_read_only};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(validate))
        .routes(routes!(catalog))
}

/// What to validate: an expression with the condition ids it may use, or a
/// whole webhook under `webhook`.
#[derive(Debug, ToSchema)]
#[allow(dead_code, reason = "documentation of the body; the engine reads it")]
pub(super) struct ValidateInput {
    /// A logic expression, e.g. `(1 or 2) and 3`.
    expression: Option<String>,
    /// The condition ids the expression may use.
    ids: Option<Vec<u32>>,
    /// A webhook definition, as `POST /v1/webhooks` takes it.
    #[schema(value_type = Option<inbox_rules::Webhook>)]
    webhook: Option<Value>,
}

fn json(text: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], text)
}

/// Validate an expression or a webhook without storing anything. An
/// invalid input is a successful validation: 200 with `valid: false`.
#[utoipa::path(post, path = "/v1/rules/validate", tag = "rules",
    request_body = ValidateInput,
    security(("bearer" = [])),
    responses((status = 200, description = "The engine's report", body = inbox_rules::Report),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "Not an expression or webhook", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, description = "The server's own work left the engine too little time; retry after `Retry-After`", body = ErrorBody)))]
async fn validate(
    State(state): State<AppState>,
    EngineAdmin(admin): EngineAdmin,
    JsonBody(mut body): JsonBody<Map<String, Value>>,
) -> Result<impl IntoResponse, AppError> {
    let (op, input) = match body.remove("webhook") {
        Some(Value::Object(mut webhook)) => {
            // What `POST /v1/webhooks` hands the engine: the body less the
            // server's keys and the client certificate, which are the
            // host's; the engine reports any other key it does not know.
            webhook.remove(TLS);
            (Op::Validate, Value::Object(without_read_only(webhook)))
        }
        Some(_) => {
            return Err(AppError::unprocessable(
                "invalid_body",
                "`webhook` must be an object",
            ));
        }
        None => (Op::Check, Value::Object(body)),
    };
    let input = input.to_string();
    let report = state
        .engine
        .run_for(admin.tenant(), move |s| s.call(op, &input))
        .await?;
    Ok(json(report))
}

/// The fields conditions can test, the operators each allows and the value
/// each operator takes.
#[utoipa::path(get, path = "/v1/catalog", tag = "rules",
    security(("bearer" = [])),
    responses((status = 200, description = "The engine's catalogue", body = Object),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn catalog(State(state): State<AppState>, _admin: Admin) -> impl IntoResponse {
    json(state.catalog.to_string())
}
