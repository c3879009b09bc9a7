//! The public routes: the agent's room read, the Pexip event sink, and health.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use super::AppState;
use super::dto::{ConstrainedConference, EventAck, Health};
use super::error::{ApiError, ErrorBody, ValidationErrorBody};
use super::extract::{ApiBytes, ApiPath, ApiQuery, FromQuery, QueryReader};
use super::rooms::room_name;
use crate::config::EventSinkSettings;
use crate::domain::parse_event_sink_body;

/// The header App Service's front end appends the caller's address to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Read a room, host PIN included, for a contact-centre agent.
///
/// The `x-auth-token` header must hold a Genesys Cloud access token of a user in an allowed
/// division; answers are cached briefly per token. Only rooms this service manages are
/// found; any other room on the Management Node is 404.
#[utoipa::path(get, path = "/public/room/{name}", tag = "public",
    params(("name" = String, Path, description = "Room name")),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The room, with the host PIN", body = ConstrainedConference),
        (status = 400, description = "Invalid room name", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Division not allowed", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "Genesys or Pexip unavailable", body = ErrorBody),
    ))]
pub async fn public_room_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> Result<axum::Json<ConstrainedConference>, ApiError> {
    let name = room_name(&name)?;
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
    state.agents.check(token).await?;
    let room = state.rooms.get_room(&name).await?;
    Ok(axum::Json(ConstrainedConference::with_pin(&room)))
}

/// Receive Pexip event-sink events.
///
/// HTTP Basic with the configured credentials. Accepts single events and `eventsink_bulk`
/// envelopes. `conference_ended` queues the room for deletion after the grace period (the
/// garbage collector checks it is not live again first); every other event is ignored.
///
/// When `EVENT_SINK_ALLOWED_NETWORKS` is set, the caller's address must be in those networks
/// (403 otherwise, before credentials are looked at). It is read from `X-Forwarded-For`: the
/// entry the platform's front end appended, the rightmost by default
/// (`EVENT_SINK_TRUSTED_PROXY_HOPS` counts further proxies); entries left of it are ignored.
#[utoipa::path(post, path = "/public/event_sink", tag = "public",
    request_body(content = serde_json::Value, description = "A Pexip event envelope or an eventsink_bulk envelope",
        example = json!({"node": "10.0.0.1", "seq": 12, "version": 2, "time": 1736003600.2,
            "event": "conference_ended", "data": {"name": "vbv-3q2Kx0wYbqkS4o5cZl7n8A", "service_type": "conference",
            "tag": "https://id.gov.bc.ca/idcheck/protected/video/MTIzNDU2LDc2NTQzMg", "end_time": 1736003600.2}})),
    security(("event_sink_basic" = [])),
    responses(
        (status = 200, description = "Event acknowledged and processed.", body = EventAck),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or wrong credentials", body = ErrorBody),
        (status = 403, description = "Source address outside the allowed networks", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Deletion queue unavailable", body = ErrorBody),
    ))]
pub async fn event_sink(
    State(state): State<AppState>,
    ApiBytes(body): ApiBytes,
) -> Result<axum::Json<EventAck>, ApiError> {
    // The caller's network and credentials were checked by `event_sink_gate`.
    let events = parse_event_sink_body(&body).map_err(|e| ApiError::InvalidEvent(e.to_string()))?;
    let report = state.rooms.handle_events(&events).await?;
    Ok(axum::Json(EventAck {
        detail: "Event acknowledged and processed.".into(),
        events: report.events,
        queued: report.queued,
    }))
}

/// The event sink's gate, a middleware in front of [`event_sink`]: the source network and
/// the credentials are judged on the request head, before a byte of the body is read. As an
/// extractor after the body, they let anyone make the service buffer up to
/// `EVENT_SINK_MAX_BODY_BYTES` per request (or wait for a body that never comes) unchecked.
pub(super) async fn event_sink_gate(
    State(settings): State<Arc<EventSinkSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let checked = check_source(headers, &settings)
        .and_then(|()| check_basic(headers, &settings.username, &settings.password.current()));
    match checked {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Refuse a caller outside `EVENT_SINK_ALLOWED_NETWORKS` with 403: credentials would not
/// help, so 401 would mislead. See [`crate::domain::SourceNetworks`] for which
/// `X-Forwarded-For` entry is trusted and why.
fn check_source(headers: &HeaderMap, settings: &EventSinkSettings) -> Result<(), ApiError> {
    let Some(allowed) = &settings.allowed_sources else {
        return Ok(());
    };
    // A value that is not visible ASCII cannot hold an address; it counts as an empty entry.
    let values = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|v| v.to_str().unwrap_or(""));
    allowed.check(values).map(|_| ()).map_err(ApiError::from)
}

/// Compare the request's Basic credentials with the expected ones in constant time
/// (digests first, so neither content nor length leaks through timing).
fn check_basic(
    headers: &HeaderMap,
    username: &str,
    password: &SecretString,
) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .ok_or(ApiError::MissingCredentials)?;
    let want = format!("{username}:{}", password.expose_secret());
    let a = digest::digest(&digest::SHA256, &given);
    let b = digest::digest(&digest::SHA256, want.as_bytes());
    if bool::from(a.as_ref().ct_eq(b.as_ref())) {
        Ok(())
    } else {
        Err(ApiError::InvalidCredentials)
    }
}

#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// Also check Pexip and the queues (503 when one is down). A boolean as Pydantic reads
    /// it.
    #[param(default = false)]
    deep: bool,
}

impl FromQuery for HealthQuery {
    fn from_query(q: &mut QueryReader) -> Self {
        Self {
            deep: q.bool_or("deep", false),
        }
    }
}

/// Liveness, and with `deep=true` a check of Pexip and the queues.
///
/// The deep result is at most 15 seconds old (one check at a time, shared by every caller,
/// at background priority) and says only `ok` or `failed` per dependency; causes are logged.
#[utoipa::path(get, path = "/public/health", tag = "public", params(HealthQuery),
    responses(
        (status = 200, description = "Alive (and dependencies reachable with deep=true)", body = Health),
        (status = 422, description = "deep is not a boolean", body = ValidationErrorBody),
        (status = 503, description = "A dependency is down (deep=true)", body = Health),
    ))]
pub async fn health(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HealthQuery>,
) -> (StatusCode, axum::Json<Health>) {
    let timestamp = naive_utc_now();
    if !query.deep {
        return (
            StatusCode::OK,
            axum::Json(Health {
                status: "alive".into(),
                timestamp,
                checks: None,
            }),
        );
    }
    let report = state.health.report().await;
    let verdict = |ok: bool| if ok { "ok" } else { "failed" }.to_owned();
    let checks = BTreeMap::from([
        ("pexip".to_owned(), verdict(report.pexip)),
        ("queues".to_owned(), verdict(report.queues)),
    ]);
    let healthy = report.healthy();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(Health {
            status: if healthy { "alive" } else { "degraded" }.into(),
            timestamp,
            checks: Some(checks),
        }),
    )
}

/// Now as naive UTC ISO-8601 with microseconds (`2024-03-05T14:31:06.145782`).
fn naive_utc_now() -> String {
    crate::pexip::naive_utc(time::OffsetDateTime::now_utc())
}
