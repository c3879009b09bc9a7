//! The one HTTP error type, and the one place where every error code and every upstream
//! error's status is defined.
//!
//! Every error answer has the body of the replaced FastAPI service plus our `code`, stable for
//! programs. Errors a handler raises are `{"detail": "<message>", "code": "<snake_case>"}`
//! (FastAPI's `HTTPException`); a request FastAPI would have refused before its handler ran (a
//! missing or ill-typed query parameter, a body that is not the JSON object the route takes) is
//! 422 with FastAPI's list, `{"detail": [{"type", "loc", "msg", "input"}], "code":
//! "validation_error"}` ([`ApiError::RequestValidation`]). Each [`ApiError`] variant is one code
//! with one status; nothing outside this file makes up a code or a status.
//!
//! 5xx details say little. The cause is logged once, by [`log_errors`], a layer that reads the
//! error from the response's extensions (axum's `error-handling` example): a `From` impl or
//! a handler that logged would log twice, or in the wrong span, or not at all when another
//! path built the same error.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::domain::SourceError;
use crate::entra::AccessError;
use crate::genesys::AgentAuthError;
use crate::locks::LockError;
use crate::pexip::PexipError;
use crate::queue::QueueError;
use crate::rooms::{RoomPatchError, RoomsError};

/// The JSON body of every error a handler raises.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "room not found", "code": "room_not_found"}))]
pub struct ErrorBody {
    /// Human-readable message.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
}

/// The 422 body of a request refused before its handler, shaped as FastAPI's
/// `HTTPValidationError` (one item per problem), plus our `code` (`validation_error`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = HTTPValidationError, example = json!({"detail": [{"type": "missing",
    "loc": ["query", "uuiData"], "msg": "Field required", "input": null}],
    "code": "validation_error"}))]
pub struct ValidationErrorBody {
    /// Every problem found, in the order of the request's fields.
    pub detail: Vec<FieldError>,
    /// Always `validation_error`.
    pub code: String,
}

/// One problem with a request, as FastAPI (Pydantic 2) reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ValidationError)]
pub struct FieldError {
    /// Where: `["query", "<name>"]`, `["body"]`, `["body", "<field>"]`, or `["body", <offset>]`
    /// for JSON that does not parse.
    pub loc: Vec<Loc>,
    /// Pydantic's message, e.g. `Field required`.
    pub msg: String,
    /// Pydantic's error type, e.g. `missing`, `bool_parsing`, `json_invalid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value refused (`null` when missing): any JSON value.
    pub input: serde_json::Value,
    /// Details of some types (`json_invalid`: `{"error": "<what the parser said>"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<serde_json::Value>,
}

/// One step of where a problem is: a name, or a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Loc {
    Name(String),
    Index(usize),
}

impl FieldError {
    /// A problem of `kind` with Pydantic's message `msg` at `loc`.
    pub fn new(loc: Vec<Loc>, kind: &str, msg: &str, input: serde_json::Value) -> Self {
        Self {
            loc,
            msg: msg.to_owned(),
            kind: kind.to_owned(),
            input,
            ctx: None,
        }
    }
}

/// `WWW-Authenticate` of the event sink's Basic challenge.
const BASIC_CHALLENGE: &str = "Basic realm=\"event_sink\", charset=\"UTF-8\"";
/// The agent route names its header (there is no registered scheme for it).
const AGENT_CHALLENGE: &str = "x-auth-token";
/// RFC 6750 §3: no error code when no token was presented.
const BEARER_MISSING: &str = "Bearer realm=\"pexip-sdk\"";
const BEARER_INVALID: &str = "Bearer realm=\"pexip-sdk\", error=\"invalid_token\"";
const BEARER_FORBIDDEN: &str = "Bearer realm=\"pexip-sdk\", error=\"insufficient_scope\"";

/// Every error answer of the service. A variant is one code with one status (see
/// [`ApiError::status`] and [`ApiError::code`]); upstream errors are kept as the cause, for the
/// log line [`log_errors`] writes, never for the body.
#[derive(Debug)]
pub enum ApiError {
    /// 400: `uuiData` does not parse (the message says why, never the value).
    InvalidUuiData(String),
    /// 400: the room name in the path is not a room name.
    InvalidRoomName(String),
    /// 400: the service cannot carry out the request as given.
    InvalidRequest(String),
    /// 400: Pexip refused the change (its one-line summary).
    PexipValidation(String),
    /// 400: a PIN of a room update is not acceptable (format, configured length, equal to
    /// the other PIN).
    InvalidPin(String),
    /// 400: the tag of a room update is neither empty nor a tag URL of our template.
    InvalidTag(String),
    /// 400: the event-sink body is not an event or a bulk envelope.
    InvalidEvent(String),
    /// 400: a path segment does not decode.
    InvalidPath(String),
    /// 400: the body could not be read.
    BodyUnreadable(String),
    /// 400: bulk delete without `confirm=true`.
    ConfirmationRequired,
    /// 401: `/room*` without a bearer token (in-app auth on).
    MissingAccessToken,
    /// 401: a bearer token that is not acceptable.
    InvalidAccessToken(AccessError),
    /// 401: the agent route without `x-auth-token`.
    MissingAgentToken,
    /// 401: Genesys Cloud did not accept the agent's token.
    InvalidAgentToken,
    /// 401: the event sink without Basic credentials.
    MissingCredentials,
    /// 401: the event sink with wrong Basic credentials.
    InvalidCredentials,
    /// 403: a valid token of a client application or role that is not allowed.
    ClientNotAllowed(AccessError),
    /// 403: the agent's Genesys division may not read rooms.
    DivisionNotAllowed,
    /// 403: the event-sink caller is outside `EVENT_SINK_ALLOWED_NETWORKS`.
    SourceNotAllowed(SourceError),
    /// 404: no such room.
    RoomNotFound,
    /// 404: no such route.
    NoRoute,
    /// 405: a known path with another method.
    MethodNotAllowed,
    /// 409: the room is persistent and never deleted by this service.
    PersistentRoom,
    /// 409: a job of this kind is already running (one at a time).
    JobRunning(String),
    /// 413: the body is over the route's limit.
    BodyTooLarge(String),
    /// 414: the request target is too long.
    UriTooLong,
    /// 429: a rate limit of this service; `Retry-After` says when to come back.
    RateLimited {
        detail: String,
        retry_after: std::time::Duration,
    },
    /// 422: what FastAPI's request validation would have refused before the handler.
    RequestValidation(Vec<FieldError>),
    /// 431: the request headers are too large.
    HeadersTooLarge,
    /// 502: Pexip refused our credentials (someone must act).
    PexipRefusedCredentials,
    /// 502: Pexip failed in a way a retry will not mend.
    PexipFailed(PexipError),
    /// 503: Pexip is down, overloaded or rate limiting us.
    PexipUnavailable(PexipError),
    /// 503: the queues cannot be used.
    QueueUnavailable(QueueError),
    /// 503: the video calls' allocation records cannot be used (so no call can be given a
    /// room safely).
    AllocationUnavailable(LockError),
    /// 503: Genesys Cloud cannot be reached.
    GenesysUnavailable(String),
    /// 503: the signing keys of access tokens cannot be fetched.
    AuthUnavailable,
}

impl ApiError {
    /// The status of this error.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidUuiData(_) | InvalidRoomName(_) | InvalidRequest(_) | PexipValidation(_)
            | InvalidPin(_) | InvalidTag(_) | InvalidEvent(_) | InvalidPath(_)
            | BodyUnreadable(_) | ConfirmationRequired => StatusCode::BAD_REQUEST,
            MissingAccessToken
            | InvalidAccessToken(_)
            | MissingAgentToken
            | InvalidAgentToken
            | MissingCredentials
            | InvalidCredentials => StatusCode::UNAUTHORIZED,
            ClientNotAllowed(_) | DivisionNotAllowed | SourceNotAllowed(_) => StatusCode::FORBIDDEN,
            RoomNotFound | NoRoute => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PersistentRoom | JobRunning(_) => StatusCode::CONFLICT,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UriTooLong => StatusCode::URI_TOO_LONG,
            RequestValidation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            PexipRefusedCredentials | PexipFailed(_) => StatusCode::BAD_GATEWAY,
            PexipUnavailable(_)
            | QueueUnavailable(_)
            | AllocationUnavailable(_)
            | GenesysUnavailable(_)
            | AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidUuiData(_) => "invalid_uui_data",
            InvalidRoomName(_) => "invalid_room_name",
            InvalidRequest(_) => "invalid_request",
            PexipValidation(_) => "pexip_validation",
            InvalidPin(_) => "invalid_pin",
            InvalidTag(_) => "invalid_tag",
            InvalidEvent(_) => "invalid_event",
            InvalidPath(_) => "invalid_path",
            BodyUnreadable(_) | BodyTooLarge(_) => "body_rejected",
            ConfirmationRequired => "confirmation_required",
            MissingAccessToken | MissingAgentToken => "missing_token",
            InvalidAccessToken(_) | InvalidAgentToken => "invalid_token",
            MissingCredentials => "missing_credentials",
            InvalidCredentials => "invalid_credentials",
            ClientNotAllowed(_) => "client_not_allowed",
            DivisionNotAllowed => "division_not_allowed",
            SourceNotAllowed(_) => "source_not_allowed",
            RoomNotFound => "room_not_found",
            NoRoute => "not_found",
            MethodNotAllowed => "method_not_allowed",
            PersistentRoom => "persistent_room",
            JobRunning(_) => "job_running",
            RateLimited { .. } => "rate_limited",
            UriTooLong => "uri_too_long",
            RequestValidation(_) => "validation_error",
            HeadersTooLarge => "headers_too_large",
            PexipRefusedCredentials | PexipFailed(_) => "pexip_error",
            PexipUnavailable(_) => "pexip_unavailable",
            QueueUnavailable(_) => "queue_unavailable",
            AllocationUnavailable(_) => "allocation_unavailable",
            GenesysUnavailable(_) => "genesys_unavailable",
            AuthUnavailable => "auth_unavailable",
        }
    }

    /// The message for the caller: what was wrong with the request, or a short, fixed line
    /// for a failure on our side (its cause goes to the log, not to the caller). For
    /// [`ApiError::RequestValidation`] the body carries the list instead; this is its summary.
    pub fn detail(&self) -> String {
        use ApiError::*;
        match self {
            InvalidUuiData(m) | InvalidRoomName(m) | InvalidRequest(m) | InvalidPin(m)
            | InvalidTag(m) | InvalidEvent(m) | InvalidPath(m) | BodyUnreadable(m)
            | BodyTooLarge(m) | JobRunning(m) => m.clone(),
            RateLimited { detail, .. } => detail.clone(),
            PexipValidation(m) => format!("Pexip refused the change: {m}"),
            ConfirmationRequired => {
                "bulk delete removes every room of this service: pass confirm=true".into()
            }
            MissingAccessToken => AccessError::Missing.to_string(),
            InvalidAccessToken(e) | ClientNotAllowed(e) => e.to_string(),
            MissingAgentToken => AgentAuthError::Missing.to_string(),
            InvalidAgentToken => AgentAuthError::InvalidToken.to_string(),
            MissingCredentials => "HTTP Basic credentials required".into(),
            InvalidCredentials => "wrong credentials".into(),
            DivisionNotAllowed => AgentAuthError::DivisionNotAllowed.to_string(),
            SourceNotAllowed(e) => e.to_string(),
            RoomNotFound => "room not found".into(),
            // Starlette's words, which the replaced service answered.
            NoRoute => "Not Found".into(),
            MethodNotAllowed => "Method Not Allowed".into(),
            PersistentRoom => "this room is persistent and is never deleted by this service".into(),
            UriTooLong => "request target too long".into(),
            RequestValidation(errors) => {
                let items: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        let at: Vec<String> = e
                            .loc
                            .iter()
                            .map(|l| match l {
                                Loc::Name(n) => n.clone(),
                                Loc::Index(i) => i.to_string(),
                            })
                            .collect();
                        format!("{}: {}", at.join("."), e.msg)
                    })
                    .collect();
                items.join("; ")
            }
            HeadersTooLarge => "request headers too large".into(),
            PexipRefusedCredentials => "Pexip refused the request".into(),
            PexipFailed(_) => "Pexip request failed".into(),
            PexipUnavailable(_) => "Pexip is unavailable; try again shortly".into(),
            QueueUnavailable(_) => "the room queues are unavailable".into(),
            AllocationUnavailable(_) => "room allocation is unavailable; try again shortly".into(),
            GenesysUnavailable(_) => "Genesys Cloud is unavailable".into(),
            AuthUnavailable => {
                "access tokens cannot be checked right now; try again shortly".into()
            }
        }
    }

    /// The `WWW-Authenticate` challenge this error carries (RFC 6750 also puts one on a 403).
    fn challenge(&self) -> Option<&'static str> {
        use ApiError::*;
        match self {
            MissingAccessToken => Some(BEARER_MISSING),
            InvalidAccessToken(_) => Some(BEARER_INVALID),
            ClientNotAllowed(_) => Some(BEARER_FORBIDDEN),
            MissingAgentToken | InvalidAgentToken => Some(AGENT_CHALLENGE),
            MissingCredentials | InvalidCredentials => Some(BASIC_CHALLENGE),
            _ => None,
        }
    }

    /// Log this error once, at the level its handling needs: `error!` only where someone must
    /// act (our credentials refused, a failure we cannot explain), `warn!` for an outage or a
    /// refused caller worth watching, nothing for ordinary bad input.
    fn log(&self) {
        use ApiError::*;
        match self {
            PexipRefusedCredentials => tracing::error!("Pexip refused our credentials"),
            PexipFailed(e) => tracing::error!(error = %e, "Pexip request failed"),
            PexipUnavailable(e) => tracing::warn!(error = %e, "Pexip unavailable"),
            QueueUnavailable(e) => tracing::error!(error = %e, "queue request failed"),
            AllocationUnavailable(e) => {
                tracing::error!(error = %e, "allocation record request failed")
            }
            GenesysUnavailable(e) => tracing::warn!(error = %e, "Genesys Cloud unavailable"),
            AuthUnavailable => tracing::warn!("cannot check access tokens: no signing keys"),
            InvalidAccessToken(e) => tracing::info!(reason = %e, "access token refused"),
            InvalidCredentials => tracing::warn!("event sink request with wrong credentials"),
            SourceNotAllowed(SourceError::NotAllowed(ip)) => tracing::warn!(
                source.address = %ip,
                "event sink request from outside the allowed networks"
            ),
            SourceNotAllowed(other) => tracing::warn!(
                reason = %other,
                "event sink request without a usable source address"
            ),
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code().to_owned();
        let mut response = match &self {
            ApiError::RequestValidation(errors) => (
                self.status(),
                axum::Json(ValidationErrorBody {
                    detail: errors.clone(),
                    code,
                }),
            )
                .into_response(),
            _ => (
                self.status(),
                axum::Json(ErrorBody {
                    detail: self.detail(),
                    code,
                }),
            )
                .into_response(),
        };
        if let Some(challenge) = self.challenge() {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let ApiError::RateLimited { retry_after, .. } = &self {
            // Whole seconds, rounded up (RFC 9110 §10.2.3).
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // For `log_errors`: the response carries the error itself, cause included.
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// The layer that logs every error answer once, inside the request's span (so the line
/// carries the invocation id), whichever handler, extractor or fallback produced it.
pub(super) async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(error) = response.extensions().get::<Arc<ApiError>>() {
        error.log();
    }
    response
}

impl From<RoomsError> for ApiError {
    fn from(e: RoomsError) -> Self {
        match e {
            RoomsError::NotFound => Self::RoomNotFound,
            RoomsError::Persistent => Self::PersistentRoom,
            RoomsError::Invalid(detail) => Self::InvalidRequest(detail),
            RoomsError::Patch(e) => match e {
                RoomPatchError::Pin { .. } => Self::InvalidPin(e.to_string()),
                RoomPatchError::Tag => Self::InvalidTag(e.to_string()),
                _ => Self::InvalidRequest(e.to_string()),
            },
            RoomsError::Pexip(e) => e.into(),
            RoomsError::Queue(e) => e.into(),
            RoomsError::Lock(e) => e.into(),
            RoomsError::Busy(detail) => Self::JobRunning(detail),
            RoomsError::QuotaExceeded {
                detail,
                retry_after,
            } => Self::RateLimited {
                detail,
                retry_after,
            },
        }
    }
}

impl From<PexipError> for ApiError {
    fn from(e: PexipError) -> Self {
        match e {
            PexipError::NotFound => Self::RoomNotFound,
            PexipError::Validation { message, .. } => Self::PexipValidation(message),
            PexipError::RateLimited { .. } | PexipError::Unavailable { .. } => {
                Self::PexipUnavailable(e)
            }
            PexipError::Unauthorized => Self::PexipRefusedCredentials,
            other => Self::PexipFailed(other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        Self::QueueUnavailable(e)
    }
}

impl From<LockError> for ApiError {
    fn from(e: LockError) -> Self {
        Self::AllocationUnavailable(e)
    }
}

impl From<AgentAuthError> for ApiError {
    fn from(e: AgentAuthError) -> Self {
        match e {
            AgentAuthError::Missing => Self::MissingAgentToken,
            AgentAuthError::InvalidToken => Self::InvalidAgentToken,
            AgentAuthError::DivisionNotAllowed => Self::DivisionNotAllowed,
            AgentAuthError::Unavailable(cause) => Self::GenesysUnavailable(cause),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Missing => Self::MissingAccessToken,
            AccessError::KeysUnavailable => Self::AuthUnavailable,
            e if e.is_forbidden() => Self::ClientNotAllowed(e),
            e => Self::InvalidAccessToken(e),
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        Self::SourceNotAllowed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant with the status and code callers rely on, and its challenge. A change
    /// here is a change of the wire contract: the replaced service's callers read the status,
    /// programs read the code.
    fn catalogue() -> Vec<(ApiError, u16, &'static str, Option<&'static str>)> {
        use ApiError::*;
        let pexip_down = || PexipError::Unavailable {
            reason: "connect refused".into(),
        };
        vec![
            (InvalidUuiData("x".into()), 400, "invalid_uui_data", None),
            (InvalidRoomName("x".into()), 400, "invalid_room_name", None),
            (InvalidRequest("x".into()), 400, "invalid_request", None),
            (PexipValidation("x".into()), 400, "pexip_validation", None),
            (InvalidPin("x".into()), 400, "invalid_pin", None),
            (InvalidTag("x".into()), 400, "invalid_tag", None),
            (InvalidEvent("x".into()), 400, "invalid_event", None),
            (InvalidPath("x".into()), 400, "invalid_path", None),
            (BodyUnreadable("x".into()), 400, "body_rejected", None),
            (ConfirmationRequired, 400, "confirmation_required", None),
            (
                MissingAccessToken,
                401,
                "missing_token",
                Some(BEARER_MISSING),
            ),
            (
                InvalidAccessToken(AccessError::Expired),
                401,
                "invalid_token",
                Some(BEARER_INVALID),
            ),
            (
                MissingAgentToken,
                401,
                "missing_token",
                Some(AGENT_CHALLENGE),
            ),
            (
                InvalidAgentToken,
                401,
                "invalid_token",
                Some(AGENT_CHALLENGE),
            ),
            (
                MissingCredentials,
                401,
                "missing_credentials",
                Some(BASIC_CHALLENGE),
            ),
            (
                InvalidCredentials,
                401,
                "invalid_credentials",
                Some(BASIC_CHALLENGE),
            ),
            (
                ClientNotAllowed(AccessError::ClientNotAllowed),
                403,
                "client_not_allowed",
                Some(BEARER_FORBIDDEN),
            ),
            (DivisionNotAllowed, 403, "division_not_allowed", None),
            (
                SourceNotAllowed(SourceError::NoForwardedFor),
                403,
                "source_not_allowed",
                None,
            ),
            (RoomNotFound, 404, "room_not_found", None),
            (NoRoute, 404, "not_found", None),
            (MethodNotAllowed, 405, "method_not_allowed", None),
            (PersistentRoom, 409, "persistent_room", None),
            (JobRunning("x".into()), 409, "job_running", None),
            (
                RateLimited {
                    detail: "x".into(),
                    retry_after: std::time::Duration::from_millis(1500),
                },
                429,
                "rate_limited",
                None,
            ),
            (BodyTooLarge("x".into()), 413, "body_rejected", None),
            (UriTooLong, 414, "uri_too_long", None),
            (
                RequestValidation(vec![FieldError::new(
                    vec![Loc::Name("query".into()), Loc::Name("count".into())],
                    "missing",
                    "Field required",
                    serde_json::Value::Null,
                )]),
                422,
                "validation_error",
                None,
            ),
            (HeadersTooLarge, 431, "headers_too_large", None),
            (PexipRefusedCredentials, 502, "pexip_error", None),
            (
                PexipFailed(PexipError::Other {
                    status: Some(500),
                    message: "boom".into(),
                }),
                502,
                "pexip_error",
                None,
            ),
            (
                PexipUnavailable(pexip_down()),
                503,
                "pexip_unavailable",
                None,
            ),
            (
                QueueUnavailable(QueueError::Unavailable("down".into())),
                503,
                "queue_unavailable",
                None,
            ),
            (
                AllocationUnavailable(LockError::Unavailable("down".into())),
                503,
                "allocation_unavailable",
                None,
            ),
            (
                GenesysUnavailable("timeout".into()),
                503,
                "genesys_unavailable",
                None,
            ),
            (AuthUnavailable, 503, "auth_unavailable", None),
        ]
    }

    #[tokio::test]
    async fn every_variant_answers_its_status_code_and_challenge_in_the_envelope() {
        for (error, status, code, challenge) in catalogue() {
            let name = format!("{error:?}");
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status, "{name}");
            assert_eq!(
                response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .map(|v| v.to_str().unwrap()),
                challenge,
                "{name}"
            );
            assert!(
                response.extensions().get::<Arc<ApiError>>().is_some(),
                "{name}: the error rides along for the log layer"
            );
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["code"], code, "{name}");
            if status == 422 {
                // FastAPI's list: every item has where, what and why.
                let items = body["detail"].as_array().expect("a list");
                assert!(!items.is_empty(), "{name}");
                for item in items {
                    assert!(item["loc"].is_array() && item["msg"].is_string(), "{item}");
                    assert!(
                        item["type"].is_string() && item.get("input").is_some(),
                        "{item}"
                    );
                }
            } else {
                assert!(
                    body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                    "{name}"
                );
            }
            assert_eq!(body.as_object().unwrap().len(), 2, "{name}: {body}");
        }
    }

    #[test]
    fn a_rate_limited_answer_says_when_to_come_back_in_whole_seconds() {
        let response = ApiError::RateLimited {
            detail: "x".into(),
            retry_after: std::time::Duration::from_millis(1500),
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_validation_error_has_fastapis_shape_and_a_readable_summary() {
        let error = ApiError::RequestValidation(vec![
            FieldError::new(
                vec![Loc::Name("query".into()), Loc::Name("uuiData".into())],
                "missing",
                "Field required",
                serde_json::Value::Null,
            ),
            FieldError {
                ctx: Some(serde_json::json!({"error": "EOF while parsing a value"})),
                ..FieldError::new(
                    vec![Loc::Name("body".into()), Loc::Index(8)],
                    "json_invalid",
                    "JSON decode error",
                    serde_json::json!({}),
                )
            },
        ]);
        assert_eq!(
            error.detail(),
            "query.uuiData: Field required; body.8: JSON decode error"
        );
        let ApiError::RequestValidation(items) = &error else {
            unreachable!()
        };
        assert_eq!(
            serde_json::to_value(items).unwrap(),
            serde_json::json!([
                {"loc": ["query", "uuiData"], "msg": "Field required", "type": "missing",
                 "input": null},
                {"loc": ["body", 8], "msg": "JSON decode error", "type": "json_invalid",
                 "input": {}, "ctx": {"error": "EOF while parsing a value"}},
            ])
        );
    }

    #[test]
    fn failures_on_our_side_never_show_their_cause_to_the_caller() {
        let secret_cause = "https://mgr.internal.example/api?token=abc";
        let errors = [
            ApiError::PexipFailed(PexipError::Other {
                status: Some(500),
                message: secret_cause.into(),
            }),
            ApiError::PexipUnavailable(PexipError::Unavailable {
                reason: secret_cause.into(),
            }),
            ApiError::QueueUnavailable(QueueError::Unavailable(secret_cause.into())),
            ApiError::AllocationUnavailable(LockError::Unavailable(secret_cause.into())),
            ApiError::GenesysUnavailable(secret_cause.into()),
        ];
        for error in errors {
            assert!(!error.detail().contains("internal"), "{error:?}");
        }
    }

    #[test]
    fn upstream_errors_map_to_their_variants() {
        let cases: Vec<(ApiError, &str)> = vec![
            (RoomsError::NotFound.into(), "room_not_found"),
            (RoomsError::Persistent.into(), "persistent_room"),
            (RoomsError::Invalid("x".into()).into(), "invalid_request"),
            (RoomsError::Busy("x".into()).into(), "job_running"),
            (
                RoomsError::QuotaExceeded {
                    detail: "x".into(),
                    retry_after: std::time::Duration::from_secs(5),
                }
                .into(),
                "rate_limited",
            ),
            (
                RoomsError::Patch(RoomPatchError::Pin {
                    field: "pin",
                    reason: "x".into(),
                })
                .into(),
                "invalid_pin",
            ),
            (RoomsError::Patch(RoomPatchError::Tag).into(), "invalid_tag"),
            (
                RoomsError::Patch(RoomPatchError::Empty).into(),
                "invalid_request",
            ),
            (PexipError::NotFound.into(), "room_not_found"),
            (PexipError::Unauthorized.into(), "pexip_error"),
            (
                PexipError::RateLimited { retry_after: None }.into(),
                "pexip_unavailable",
            ),
            (PexipError::Config("bad key".into()).into(), "pexip_error"),
            (AgentAuthError::Missing.into(), "missing_token"),
            (
                AgentAuthError::DivisionNotAllowed.into(),
                "division_not_allowed",
            ),
            (AccessError::Missing.into(), "missing_token"),
            (AccessError::KeysUnavailable.into(), "auth_unavailable"),
            (AccessError::RoleNotAllowed.into(), "client_not_allowed"),
            (AccessError::BadSignature.into(), "invalid_token"),
            (SourceError::TooFewEntries.into(), "source_not_allowed"),
            (
                RoomsError::Lock(LockError::Changed).into(),
                "allocation_unavailable",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
