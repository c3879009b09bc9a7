//! Microsoft Entra ID access tokens: the in-app check of the private `/room*` routes, so the
//! service holds by itself even if API Management in front of it is misconfigured.
//!
//! A token is accepted when it is a JWT signed with one of the tenant's keys (RS256, as Entra
//! issues; ES256 too), by a configured issuer, for a configured audience, inside its `nbf` to
//! `exp` window give or take the clock skew; it is then *allowed* when its client application
//! (`azp` in v2 tokens, `appid` in v1) and its app `roles` pass the configured allow-lists.
//! The first failure is a 401, the second a 403. Keys come from [`jwks`]. Nothing here logs a
//! token or a claim other than the caller's client id.

mod jwks;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::config::AuthSettings;
use jwks::{JwksCache, KeyError};

/// Why a request may not use `/room*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("a bearer access token is required")]
    Missing,
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    #[error("the access token's algorithm is not accepted (RS256 or ES256)")]
    Algorithm,
    #[error("the access token is signed with an unknown key")]
    UnknownKey,
    #[error("the access token's signature is invalid")]
    BadSignature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token is for another audience")]
    Audience,
    #[error("the access token is from another issuer")]
    Issuer,
    #[error("the access token has no {0} claim")]
    MissingClaim(String),
    #[error("the access token is not an application (client credentials) token")]
    NotAppToken,
    #[error("this client application is not allowed")]
    ClientNotAllowed,
    #[error("the access token carries none of the allowed roles")]
    RoleNotAllowed,
    #[error("the token signing keys could not be fetched")]
    KeysUnavailable,
}

impl AccessError {
    /// A valid token whose caller is not allowed (403, not 401).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            AccessError::ClientNotAllowed | AccessError::RoleNotAllowed
        )
    }
}

/// Who called, from an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client application (`azp`, else `appid`), when the token says.
    pub client_id: Option<String>,
    /// The token's app roles.
    pub roles: Vec<String>,
}

/// The claims we read besides the ones `jsonwebtoken` validates (`exp`, `nbf`, `iss`, `aud`).
#[derive(Deserialize)]
struct Claims {
    azp: Option<String>,
    appid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// `app` or `user` (an optional claim in v2 tokens).
    idtyp: Option<String>,
    /// Delegated permissions: only tokens issued on behalf of a user carry it.
    scp: Option<serde_json::Value>,
}

impl Claims {
    /// Only applications call `/room*` (client credentials): a token a user got through some
    /// client app of the tenant is refused even if that app is allowed. Entra marks app-only
    /// tokens with `idtyp=app` when the claim is configured, never gives them `scp`, and
    /// always names their client (`azp` in v2, `appid` in v1).
    fn is_app_token(&self) -> bool {
        self.scp.is_none()
            && self.idtyp.as_deref().is_none_or(|t| t == "app")
            && (self.azp.is_some() || self.appid.is_some())
    }
}

/// Checks bearer tokens on `/room*`. Cheap to clone.
#[derive(Clone)]
pub struct EntraAuth {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AuthSettings,
    keys: JwksCache,
}

impl EntraAuth {
    /// A checker fetching keys with `http` (no request is made until the first token).
    pub fn new(settings: AuthSettings, http: reqwest::Client) -> Self {
        let keys = JwksCache::new(
            http,
            settings.jwks_url.clone(),
            settings.jwks_cache,
            settings.jwks_refresh_min,
            settings.jwks_max_stale,
        );
        Self {
            inner: Arc::new(Inner { settings, keys }),
        }
    }

    /// Check the value of an `Authorization` header.
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<Caller, AccessError> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(AccessError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| AccessError::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AccessError::Algorithm);
        }
        let kid = header.kid.as_deref().ok_or(AccessError::UnknownKey)?;
        let key = self.inner.keys.key(kid).await.map_err(|e| match e {
            KeyError::Unknown => AccessError::UnknownKey,
            KeyError::Unavailable => AccessError::KeysUnavailable,
        })?;
        // The key decides the algorithm, never the token: an RSA key only verifies RS256.
        if key.algorithm != header.alg {
            return Err(AccessError::Algorithm);
        }
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation(key.algorithm))
                .map_err(|e| token_error(e.kind()))?
                .claims;
        if !claims.is_app_token() {
            return Err(AccessError::NotAppToken);
        }
        let caller = Caller {
            client_id: claims.azp.or(claims.appid),
            roles: claims.roles,
        };
        self.check_allowed(&caller)?;
        Ok(caller)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let settings = &self.inner.settings;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&settings.issuers);
        validation.set_audience(&settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.clock_skew.as_secs();
        validation
    }

    /// Every configured allow-list must be satisfied.
    fn check_allowed(&self, caller: &Caller) -> Result<(), AccessError> {
        let settings = &self.inner.settings;
        if !settings.allowed_client_ids.is_empty()
            && !caller
                .client_id
                .as_ref()
                .is_some_and(|id| settings.allowed_client_ids.contains(id))
        {
            tracing::warn!(
                auth.client = caller.client_id.as_deref().unwrap_or(""),
                "token of a client application that is not allowed"
            );
            return Err(AccessError::ClientNotAllowed);
        }
        if !settings.allowed_roles.is_empty()
            && !caller
                .roles
                .iter()
                .any(|role| settings.allowed_roles.contains(role))
        {
            tracing::warn!(
                auth.client = caller.client_id.as_deref().unwrap_or(""),
                "token without an allowed role"
            );
            return Err(AccessError::RoleNotAllowed);
        }
        Ok(())
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn token_error(kind: &ErrorKind) -> AccessError {
    match kind {
        ErrorKind::InvalidSignature => AccessError::BadSignature,
        ErrorKind::ExpiredSignature => AccessError::Expired,
        ErrorKind::ImmatureSignature => AccessError::NotYetValid,
        ErrorKind::InvalidAudience => AccessError::Audience,
        ErrorKind::InvalidIssuer => AccessError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => AccessError::MissingClaim(claim.clone()),
        ErrorKind::InvalidAlgorithm => AccessError::Algorithm,
        _ => AccessError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_app_tokens_pass() {
        let claims = |json: serde_json::Value| serde_json::from_value::<Claims>(json).unwrap();
        for app in [
            serde_json::json!({"azp": "c", "idtyp": "app", "roles": ["r"]}),
            serde_json::json!({"appid": "c"}),
            serde_json::json!({"azp": "c"}),
        ] {
            assert!(claims(app.clone()).is_app_token(), "{app}");
        }
        for not_app in [
            serde_json::json!({"azp": "c", "scp": "Rooms.Read"}),
            serde_json::json!({"azp": "c", "idtyp": "user"}),
            serde_json::json!({"idtyp": "app", "roles": ["r"]}),
            serde_json::json!({}),
        ] {
            assert!(!claims(not_app.clone()).is_app_token(), "{not_app}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        for value in ["", "Bearer", "Bearer ", "Basic abc", "abc.def.ghi"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
