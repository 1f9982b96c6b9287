//! The HTTP API: one module per resource, each exposing its routes, merged
//! here with the layers every request goes through (request id, logs,
//! metrics, body limit) and the generated OpenAPI document.
//!
//! Every route is registered through `utoipa_axum::routes!`, which registers
//! the handler and documents it in one step: a route cannot be served
//! without being in `/openapi.json`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::api::error::AppError;
use crate::delivery::Dispatcher;
use crate::history::History;
use crate::ingest::Ingestor;
use crate::metrics::{Metrics, RequestLabels};
use crate::rules::Pool;
use crate::store::Store;
use crate::test_delivery::TestDeliveries;
use crate::webhooks::Webhooks;

mod deliveries;
pub mod error;
mod events;
pub mod extract;
pub mod failures;
mod history;
mod rules;
mod system;
mod webhooks;

/// The largest request body accepted: 1 MiB.
pub const BODY_LIMIT: usize = 1 << 20;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The rule engine, in wasmtime.
    pub engine: Arc<Pool>,
    /// Webhook writes, validated by the engine.
    pub webhooks: Arc<Webhooks>,
    /// Event ingestion.
    pub ingestor: Arc<Ingestor>,
    /// Test deliveries.
    pub tests: Arc<TestDeliveries>,
    /// Backtests, replays, recovers and the health chart.
    pub history: Arc<History>,
    /// Per-key request limits of admin keys.
    pub limiter: Arc<RateLimit>,
    /// Per-key request limits of ingest keys.
    pub ingest_limiter: Arc<RateLimit>,
    /// Failed authentications per client address.
    pub auth_failures: Arc<failures::AuthFailures>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Sends deliveries; its breakers are shown with each webhook.
    pub dispatcher: Arc<Dispatcher>,
    /// The engine's field catalogue, JSON, read once at start.
    pub catalog: Arc<str>,
    /// The built control panel, when there is one.
    pub panel: Option<PathBuf>,
}

/// Requests per key: a token bucket per API key.
#[derive(Debug)]
pub struct RateLimit(DefaultKeyedRateLimiter<String>);

impl RateLimit {
    /// `per_second` on average, `burst` at once.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self(DefaultKeyedRateLimiter::keyed(
            Quota::per_second(per_second).allow_burst(burst),
        ))
    }

    /// Forgets the keys whose bucket has refilled (idle long enough that
    /// remembering them changes nothing), so that the table holds only keys
    /// in use, not every key ever seen (or since revoked).
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }

    /// How many keys are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes one request from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), AppError> {
        self.0.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::rate_limited(wait.as_secs() + 1)
        })
    }
}

/// The OpenAPI document's frame; the routes fill in its paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Inbox Tickets Webhooks",
        description = "Register webhooks for helpdesk ticket events; the server signs and delivers them."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "webhooks", description = "A tenant's webhooks"),
        (name = "events", description = "Ticket events from the helpdesk (ingest key)"),
        (name = "deliveries", description = "Deliveries, their attempts, resending, tests and explanations"),
        (name = "rules", description = "The rule engine: validation and the field catalogue"),
        (name = "system", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// Declares the `Authorization: Bearer <key>` scheme the routes refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its documentation, before the state is attached.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(webhooks::routes())
        .merge(events::routes())
        .merge(deliveries::routes())
        .merge(history::routes())
        .merge(rules::routes())
        .merge(system::routes())
}

/// The OpenAPI document of every route, as JSON (served at
/// `/openapi.json`; the control panel's API types are generated from it).
pub fn openapi_json() -> String {
    let (_, openapi) = routes().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// The whole application: routes, fallbacks and layers, with `state`. A
/// request whose body has not arrived within `body_timeout` is answered
/// 408.
pub fn app(state: AppState, body_timeout: std::time::Duration) -> Router {
    let (router, openapi) = routes().split_for_parts();
    let openapi: Arc<str> = openapi.to_pretty_json().unwrap_or_default().into();
    let x_request_id = HeaderName::from_static("x-request-id");
    router
        .fallback(panel)
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::Extension(system::OpenApiJson(openapi)))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::Extension(extract::BodyTimeout(body_timeout)))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        id,
                        method = %request.method(),
                        route,
                        tenant = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(
                    |response: &Response, latency: std::time::Duration, _: &tracing::Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            latency_ms = latency.as_secs_f64() * 1e3,
                            "answered"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(x_request_id, UlidRequestId))
        .with_state(state)
}

/// Everything that is not an API route: the control panel's files (its
/// `index.html` for any path it does not have), or 404 in the API's shape
/// under `/v1` and when no panel is built.
async fn panel(State(state): State<AppState>, request: Request) -> Response {
    use axum::response::IntoResponse as _;
    use tower::ServiceExt as _;
    let Some(dir) = state
        .panel
        .filter(|_| !request.uri().path().starts_with("/v1"))
    else {
        return AppError::not_found("route").into_response();
    };
    let files = tower_http::services::ServeDir::new(&dir)
        .fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
    match files.oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(error) => AppError::internal(&error).into_response(),
    }
}

/// Request ids: a ULID unless the client sent an `x-request-id`.
#[derive(Debug, Clone, Copy)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = ulid::Ulid::new().to_string();
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// Counts every answered request by route and status.
async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state
        .metrics
        .request(labels, started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::path::Path;
    use std::time::Duration;

    use super::RateLimit;

    #[test]
    fn idle_keys_are_forgotten() {
        let per_second = NonZeroU32::new(1_000).expect("not zero");
        let limit = RateLimit::new(per_second, NonZeroU32::MIN);
        for n in 0..50 {
            limit.check(&format!("key_{n}")).expect("within the limit");
        }
        assert_eq!(limit.len(), 50);
        // One request per millisecond refills a bucket of one.
        std::thread::sleep(Duration::from_millis(20));
        limit.forget_idle();
        assert_eq!(limit.len(), 0);
    }

    /// The control panel's API types are generated from `web/openapi.json`
    /// (`web/build.sh`, with openapi-typescript); this holds that file to
    /// the document the routes make. `UPDATE_OPENAPI=1 cargo test -p
    /// inbox-webhooks --lib openapi` rewrites it.
    #[test]
    fn the_panels_openapi_document_is_the_servers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/openapi.json");
        let document = super::openapi_json() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &document).expect("writable web/openapi.json");
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == document,
            "{} differs from the server's document; run `UPDATE_OPENAPI=1 cargo test -p inbox-webhooks --lib openapi`",
            path.display()
        );
    }
}
