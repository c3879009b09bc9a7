//! `POST /oauth/token/`: OAuth2 client credentials with a signed JWT client assertion
//! (RFC 7523 `private_key_jwt`, docs/pexip.md §2.1; the simulator's checks are in §10).
//!
//! The assertion must be ES256-signed by the key registered for its `iss`, with
//! `iss == sub`, `aud` == this token URL (trailing slash tolerated), `exp` in the future,
//! `iat` at most 60 s ahead, and a `jti` not seen before. Those times are checked against the
//! wall clock, because the client signs with its wall clock; the tokens issued expire by the
//! simulator clock, so tests can expire them with `advance_clock`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;

use super::clock::wall_unix_now;
use super::state::Shared;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far ahead of our clock an assertion's `iat` may be (clock skew).
const IAT_SKEW_SECONDS: f64 = 60.0;

/// Issued access tokens and the assertion ids already used.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    /// Token → expiry on the simulator clock.
    tokens: HashMap<String, Duration>,
    /// `jti` → the assertion's `exp` (wall clock), kept until then to refuse replays.
    seen_jti: HashMap<String, f64>,
}

impl TokenStore {
    /// Whether `token` was issued and has not expired at `now` (simulator clock).
    pub(crate) fn is_valid(&self, token: &str, now: Duration) -> bool {
        self.tokens.get(token).is_some_and(|expiry| now < *expiry)
    }

    /// Every unexpired token issued (a test hook: the log-secrets test looks for them).
    pub(crate) fn issued(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    fn issue(&mut self, now: Duration, lifetime: Duration) -> String {
        self.tokens.retain(|_, expiry| now < *expiry);
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        self.tokens.insert(token.clone(), now + lifetime);
        token
    }

    /// Record `jti`; `false` if it was used before.
    fn first_use_of(&mut self, jti: &str, exp: f64, wall_now: f64) -> bool {
        self.seen_jti.retain(|_, until| *until > wall_now);
        self.seen_jti.insert(jti.to_owned(), exp).is_none()
    }
}

/// A token-endpoint refusal (RFC 6749 §5.2 shape, plus a description for humans).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl Refusal {
    fn client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
        }
    }

    fn request(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    exp: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, accepted: &[String]) -> bool {
        let same = |a: &str| {
            accepted
                .iter()
                .any(|url| url.trim_end_matches('/') == a.trim_end_matches('/'))
        };
        match self {
            Audience::One(a) => same(a),
            Audience::Many(list) => list.iter().any(|a| same(a)),
        }
    }
}

/// `POST /oauth/token/`.
pub(crate) async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match issue(&state, &headers, &body) {
        Ok(response) => response,
        Err(refusal) => {
            tracing::info!(sim.oauth.error = refusal.error, sim.oauth.reason = %refusal.description, "token request refused");
            refusal.into_response()
        }
    }
}

fn issue(state: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, Refusal> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(Refusal::request(
                "unsupported_grant_type",
                "grant_type must be client_credentials",
            ));
        }
        None => return Err(Refusal::request("invalid_request", "grant_type is missing")),
    }
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(Refusal::client(format!(
            "client_assertion_type must be {JWT_BEARER}"
        )));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(Refusal::client("client_assertion is missing"));
    };
    // `scope` is ignored: pexshell sends none, others send "is_admin use_api".

    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Refusal::client("the assertion is not a JWT"))?;
    if header.alg != Algorithm::ES256 {
        return Err(Refusal::client("the assertion must be signed with ES256"));
    }
    // Peek at `iss` to choose the key; nothing is trusted until the signature is verified.
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| Refusal::client("the assertion's claims are not readable"))?;
    let client_id = unverified
        .iss
        .ok_or_else(|| Refusal::client("the assertion has no iss"))?;
    let key = state
        .clients
        .key(&client_id)
        .ok_or_else(|| Refusal::client("unknown client"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    // Claims are checked below, with our own messages and our tolerance rules.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &validation)
        .map_err(|_| Refusal::client("the assertion's signature does not verify"))?
        .claims;

    if claims.sub.as_deref() != Some(client_id.as_str()) {
        return Err(Refusal::client("sub must equal iss (the client id)"));
    }
    let accepted = [
        state.token_url.clone(),
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("http://{host}/oauth/token/"))
            .unwrap_or_default(),
    ];
    if !claims
        .aud
        .as_ref()
        .is_some_and(|aud| aud.contains(&accepted))
    {
        return Err(Refusal::client(format!(
            "aud must be the token URL {}",
            state.token_url
        )));
    }
    let now = wall_unix_now();
    let exp = claims
        .exp
        .ok_or_else(|| Refusal::client("the assertion has no exp"))?;
    if exp <= now {
        return Err(Refusal::client("the assertion has expired"));
    }
    let iat = claims
        .iat
        .ok_or_else(|| Refusal::client("the assertion has no iat"))?;
    if iat > now + IAT_SKEW_SECONDS {
        return Err(Refusal::client("the assertion's iat is in the future"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| Refusal::client("the assertion has no jti"))?;

    let sim_now = state.clock.elapsed();
    let token = {
        let mut tokens = state.tokens.lock().expect("token store lock");
        if !tokens.first_use_of(&jti, exp, now) {
            return Err(Refusal::client("the assertion's jti was used before"));
        }
        tokens.issue(sim_now, state.token_lifetime)
    };
    state.counters.token_issued();
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.token_lifetime.as_secs(),
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_by_the_given_clock() {
        let mut store = TokenStore::default();
        let token = store.issue(Duration::from_secs(10), Duration::from_secs(60));
        assert!(store.is_valid(&token, Duration::from_secs(69)));
        assert!(!store.is_valid(&token, Duration::from_secs(70)));
        assert!(!store.is_valid("other", Duration::from_secs(11)));
    }

    #[test]
    fn a_jti_is_refused_the_second_time_until_it_expires() {
        let mut store = TokenStore::default();
        assert!(store.first_use_of("a", 100.0, 50.0));
        assert!(!store.first_use_of("a", 100.0, 60.0));
        // Past its exp the assertion is refused as expired anyway, so the id may be forgotten.
        assert!(store.first_use_of("a", 300.0, 200.0));
    }

    #[test]
    fn audience_tolerates_a_trailing_slash_difference() {
        let accepted = ["http://h/oauth/token/".to_owned()];
        assert!(Audience::One("http://h/oauth/token".into()).contains(&accepted));
        assert!(
            Audience::Many(vec!["x".into(), "http://h/oauth/token/".into()]).contains(&accepted)
        );
        assert!(!Audience::One("http://h/oauth/other/".into()).contains(&accepted));
    }
}
