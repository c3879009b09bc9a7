//! HTTP: the router, its state, handlers and DTOs, and the OpenAPI document. Thin: a handler
//! extracts, parses into a domain type, calls one service function and maps the result.
//!
//! Paths are the public ones (the host's `routePrefix` is empty and forwarding passes the
//! original path). `build_router` is the only constructor, so tests run exactly what
//! production runs.
//!
//! Two habits of the replaced FastAPI service are kept for every route: a path with a
//! trailing slash reaches the route without it (Starlette answered a redirect there; we
//! answer directly, which a client following the redirect cannot tell apart), and every
//! response carries `X-Process-Time`, the seconds the request took, as the replaced service's
//! timing middleware set it.

mod auth;
mod dto;
mod error;
mod extract;
mod public;
mod rooms;
mod timers;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Uri};
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use dto::{AliasDto, ConstrainedConference, EventAck, Health};
pub use error::{ApiError, ErrorBody, FieldError, Loc, ValidationErrorBody};
pub use timers::TimerTurns;

use crate::config::EventSinkSettings;
use crate::entra::EntraAuth;
use crate::genesys::AgentAuth;
use crate::rooms::{DeepHealth, RoomService};
use crate::telemetry;

/// Largest body accepted on routes other than the event sink (room updates are tiny).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer is answered 503 rather than held open. Not applied to the
/// timer invocations: the GC bounds itself (`GC_TIME_BUDGET_SECONDS`, default 8 minutes)
/// and the host bounds the run (`functionTimeout` in host.json); a 60 s cut would drop a
/// large GC run halfway, every run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest total of header names and values accepted (real callers send a few hundred bytes;
/// API Management adds a few more).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest request target (path and query) accepted; 10 KB of uuiData still reaches the
/// handler and gets its own 400.
const MAX_URI_BYTES: usize = 16 * 1024;
/// The response header with the seconds a request took (the replaced service's name).
pub const PROCESS_TIME_HEADER: &str = "X-Process-Time";

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Allocation, deletion, GC, metrics: the service layer over Pexip and the queues.
    pub rooms: RoomService,
    /// The Pexip event sink's settings: credentials (the password a live handle, read on
    /// every request), body limit, allowed networks.
    pub event_sink: Arc<EventSinkSettings>,
    /// Checks contact-centre agents' Genesys tokens.
    pub agents: AgentAuth,
    /// Checks Entra ID access tokens on `/room*`; `None` when `AUTH_JWKS_URL` is unset (the
    /// host's function keys and API Management are then the only gates).
    pub entra: Option<EntraAuth>,
    /// The deep health check, cached and single-flight (the route is public).
    pub health: DeepHealth,
    /// One run of each timer at a time.
    pub timers: TimerTurns,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pexip-sdk",
        description = "Pexip Infinity room broker for identity-verification video calls. \
            Private `/room*` routes are called by the IDIM Video API through Azure API Management \
            with a function key and, when the service is configured for it, a Microsoft Entra ID \
            access token; public routes serve the Genesys agent widget, Pexip's event sink \
            and monitoring.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "rooms", description = "Private room management (function key and Entra ID bearer token)"),
        (name = "public", description = "Agent widget, Pexip event sink, health"),
    ),
    components(schemas(ErrorBody, ValidationErrorBody, FieldError, Loc)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "function_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-functions-key",
                "Azure Functions function key (or the `code` query parameter), checked by the host",
            ))),
        );
        components.add_security_scheme(
            "entra_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Microsoft Entra ID access token (client credentials) for this API: \
                         checked by the service when AUTH_JWKS_URL is set; signature, issuer, \
                         audience, expiry, and an allow-list of client ids or app roles",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "event_sink_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("Credentials configured on Pexip's event sink"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-auth-token",
                "Genesys Cloud access token of a contact-centre agent",
            ))),
        );
    }
}

/// The documented routes and the OpenAPI document describing them: the private rooms
/// router (which `build_router` puts behind the access-token check) and the public one.
///
/// `event_sink` holds the sink's settings for its gate (`None` only when building the
/// document, which no request reaches).
fn api_routes(
    event_sink: Option<&Arc<EventSinkSettings>>,
) -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (rooms, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(rooms::create_room))
        .routes(routes!(rooms::list_rooms))
        .routes(routes!(
            rooms::get_room,
            rooms::update_room,
            rooms::delete_room
        ))
        .routes(routes!(rooms::bulk_create, rooms::bulk_delete))
        .split_for_parts();
    let (public, public_api) = OpenApiRouter::new()
        .routes(routes!(public::public_room_get))
        .routes(routes!(public::health))
        .split_for_parts();
    // The event sink has its own body limit (bulk envelopes can be large), and its gate
    // (source network, credentials) runs before the body is read.
    let limit = event_sink.map_or(MAX_BODY_BYTES, |s| s.max_body_bytes);
    let mut sink = OpenApiRouter::new()
        .routes(routes!(public::event_sink))
        .layer(DefaultBodyLimit::max(limit));
    if let Some(settings) = event_sink {
        sink = sink.route_layer(axum::middleware::from_fn_with_state(
            settings.clone(),
            public::event_sink_gate,
        ));
    }
    let (sink, sink_api) = sink.split_for_parts();
    let mut api = api;
    api.merge(public_api);
    api.merge(sink_api);
    document_process_time(&mut api);
    (
        rooms.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        public
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .merge(sink),
        api,
    )
}

/// The OpenAPI document (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes(None).2
}

/// Every response of every operation carries `X-Process-Time` (one header component,
/// referenced from each response).
fn document_process_time(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, RefOr, header::HeaderBuilder};
    let header = HeaderBuilder::new()
        .description(Some(
            "Seconds the service spent on the request, as a decimal number (e.g. 0.0123)",
        ))
        .build();
    api.components
        .get_or_insert_with(Default::default)
        .headers
        .insert(PROCESS_TIME_HEADER.to_owned(), RefOr::T(header));
    let reference = format!("#/components/headers/{PROCESS_TIME_HEADER}");
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.headers.insert(
                        PROCESS_TIME_HEADER.to_owned(),
                        RefOr::Ref(Ref::new(reference.clone())),
                    );
                }
            }
        }
    }
}

/// Build the whole HTTP surface: documented routes, timers, readiness, docs, with trailing
/// slashes trimmed before routing and `X-Process-Time` on every answer.
pub fn build_router(state: AppState) -> Router {
    let routes = routes(state);
    // The rewrite must happen before routing, which `Router::layer` cannot do (its layers run
    // on the matched route): the routed app sits behind a fallback that rewrites first.
    Router::new()
        .fallback_service(
            tower::ServiceBuilder::new()
                .map_request(trim_trailing_slash)
                .service(routes),
        )
        .layer(axum::middleware::from_fn(process_time))
}

/// `/room/` → `/room`, `/room/x/?a=b` → `/room/x?a=b`: the route without the slash (Starlette
/// redirected there). `/` and the Swagger UI under `/docs/` keep theirs: the UI's index is
/// `/docs/`, and `/docs` redirects to it.
fn trim_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs/") {
        return request;
    }
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let target = match request.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = target.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Add `X-Process-Time` (seconds, as a decimal number) to every response.
async fn process_time(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = tokio::time::Instant::now();
    let mut response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(PROCESS_TIME_HEADER, value);
    }
    response
}

/// The routed application.
fn routes(state: AppState) -> Router {
    let (rooms, public, doc) = api_routes(Some(&state.event_sink));
    // `route_layer`: only requests that matched a `/room*` route are checked, so an unknown
    // path still gets 404 and a wrong method 405.
    let rooms = match &state.entra {
        Some(entra) => rooms.route_layer(axum::middleware::from_fn_with_state(
            entra.clone(),
            auth::require_access_token,
        )),
        None => rooms,
    };
    let timers = Router::new()
        .route("/gc_timer", post(timers::gc_timer))
        .route("/metrics_timer", post(timers::metrics_timer));
    Router::new()
        .merge(rooms)
        .merge(public)
        .route("/", get(timers::readiness))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(limit_request_head))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        // Layers apply to the routes added before them: the timers come after the timeout.
        .merge(timers)
        // Inside the request span, so each error's one log line carries the invocation id.
        .layer(axum::middleware::from_fn(error::log_errors))
        // Status and latency onto the request span (its telemetry), inside it too.
        .layer(axum::middleware::from_fn(telemetry::http::track))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::http::request_span))
        .with_state(state)
}

/// Refuse oversized request heads before any handler parses them: 414 for a long target,
/// 431 for large headers, both with the error envelope.
async fn limit_request_head(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}
