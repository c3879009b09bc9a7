//! The Entra ID access-token check in front of the private `/room*` routes. It is a route
//! layer on the rooms router only, so `/public/*`, `/docs`, `/openapi.json`, `GET /` and the
//! timers never see it, and it runs before any extractor: an unauthenticated request has
//! neither its query nor its body parsed.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::error::ApiError;
use crate::entra::EntraAuth;

/// Let the request through only with an accepted and allowed bearer token.
pub(super) async fn require_access_token(
    State(entra): State<EntraAuth>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match entra.authorize(authorization).await {
        Ok(caller) => {
            tracing::Span::current().record(
                "auth.client",
                caller.client_id.as_deref().unwrap_or_default(),
            );
            next.run(request).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
