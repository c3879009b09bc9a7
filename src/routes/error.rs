//! The one HTTP error type, and the one place where every upstream error becomes a status.
//!
//! Every error answer has the same body, `{"detail": "<message>", "code": "<snake_case>"}`:
//! FastAPI clients of the old service read `detail`; `code` is stable for programs. 5xx
//! details say little; the cause is logged once, here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::entra::AccessError;
use crate::genesys::AgentAuthError;
use crate::locks::LockError;
use crate::pexip::PexipError;
use crate::queue::QueueError;
use crate::rooms::RoomsError;

/// The JSON body of every error.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "room not found", "code": "room_not_found"}))]
pub struct ErrorBody {
    /// Human-readable message.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
}

/// An error answer: status, code, message, and an optional challenge header.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    www_authenticate: Option<&'static str>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            www_authenticate: None,
        }
    }

    /// 400 with a code naming what was wrong.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401 with a `WWW-Authenticate` challenge.
    pub fn unauthorized(
        code: &'static str,
        detail: impl Into<String>,
        challenge: &'static str,
    ) -> Self {
        Self {
            www_authenticate: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, code, detail)
        }
    }

    /// The same error with a `WWW-Authenticate` challenge (RFC 6750 also puts one on a 403).
    pub fn with_challenge(self, challenge: &'static str) -> Self {
        Self {
            www_authenticate: Some(challenge),
            ..self
        }
    }

    /// 404 for an unknown path.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405 for a known path with another method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// The status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: self.detail,
            code: self.code.to_owned(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(challenge) = self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<RoomsError> for ApiError {
    fn from(e: RoomsError) -> Self {
        match e {
            RoomsError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", "room not found")
            }
            RoomsError::Persistent => Self::new(
                StatusCode::CONFLICT,
                "persistent_room",
                "this room is persistent and is never deleted by this service",
            ),
            RoomsError::Invalid(detail) => Self::bad_request("invalid_request", detail),
            RoomsError::Pexip(e) => e.into(),
            RoomsError::Queue(e) => e.into(),
            RoomsError::Lock(e) => e.into(),
        }
    }
}

impl From<PexipError> for ApiError {
    fn from(e: PexipError) -> Self {
        match e {
            PexipError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", "room not found")
            }
            PexipError::Validation { message, .. } => Self::bad_request(
                "pexip_validation",
                format!("Pexip refused the change: {message}"),
            ),
            PexipError::RateLimited { .. } | PexipError::Unavailable { .. } => {
                tracing::warn!(error = %e, "Pexip unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pexip_unavailable",
                    "Pexip is unavailable; try again shortly",
                )
            }
            PexipError::Unauthorized => {
                tracing::error!("Pexip refused our credentials");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "pexip_error",
                    "Pexip refused the request",
                )
            }
            other => {
                tracing::error!(error = %other, "Pexip request failed");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "pexip_error",
                    "Pexip request failed",
                )
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        tracing::error!(error = %e, "queue request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the room queues are unavailable",
        )
    }
}

impl From<LockError> for ApiError {
    fn from(e: LockError) -> Self {
        tracing::error!(error = %e, "allocation record request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "allocation_unavailable",
            "room allocation is unavailable; try again shortly",
        )
    }
}

impl From<AgentAuthError> for ApiError {
    fn from(e: AgentAuthError) -> Self {
        const CHALLENGE: &str = "x-auth-token";
        match e {
            AgentAuthError::Missing => {
                Self::unauthorized("missing_token", e.to_string(), CHALLENGE)
            }
            AgentAuthError::InvalidToken => {
                Self::unauthorized("invalid_token", e.to_string(), CHALLENGE)
            }
            AgentAuthError::DivisionNotAllowed => {
                Self::new(StatusCode::FORBIDDEN, "division_not_allowed", e.to_string())
            }
            AgentAuthError::Unavailable(_) => {
                tracing::warn!(error = %e, "Genesys Cloud unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "genesys_unavailable",
                    "Genesys Cloud is unavailable",
                )
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        // RFC 6750 §3: no error code when no token was presented.
        const MISSING: &str = "Bearer realm=\"pexip-sdk\"";
        const INVALID: &str = "Bearer realm=\"pexip-sdk\", error=\"invalid_token\"";
        const FORBIDDEN: &str = "Bearer realm=\"pexip-sdk\", error=\"insufficient_scope\"";
        match e {
            AccessError::Missing => Self::unauthorized("missing_token", e.to_string(), MISSING),
            AccessError::KeysUnavailable => {
                tracing::warn!(error = %e, "cannot check access tokens");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth_unavailable",
                    "access tokens cannot be checked right now; try again shortly",
                )
            }
            e if e.is_forbidden() => {
                Self::new(StatusCode::FORBIDDEN, "client_not_allowed", e.to_string())
                    .with_challenge(FORBIDDEN)
            }
            e => Self::unauthorized("invalid_token", e.to_string(), INVALID),
        }
    }
}
