//! The credential gate in front of `/api/admin/**` (docs/pexip.md §2): a valid, unexpired
//! Bearer token from `/oauth/token/`, or HTTP Basic when configured. Anything else is 401
//! with an empty body and `WWW-Authenticate: Basic realm="pexip"`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;

use super::state::Shared;

/// Middleware: let the request through only with acceptable credentials.
pub(crate) async fn require_credentials(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accepts(&state, authorization) {
        return next.run(request).await;
    }
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pexip\""),
    );
    response
}

fn accepts(state: &Shared, authorization: &str) -> bool {
    let (scheme, credentials) = authorization.split_once(' ').unwrap_or_default();
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        let now = state.clock.elapsed();
        return state
            .tokens
            .lock()
            .expect("token store lock")
            .is_valid(credentials, now);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, password)) = &state.basic_auth else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(credentials) else {
            return false;
        };
        let expected = format!("{user}:{password}");
        return bool::from(decoded.as_slice().ct_eq(expected.as_bytes()));
    }
    false
}
