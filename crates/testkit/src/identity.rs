//! A fake of the App Service managed-identity endpoint (`GET {IDENTITY_ENDPOINT}?api-version=
//! 2019-08-01&resource=…[&client_id=…]` with the `x-identity-header` secret), for tests of
//! `ManagedIdentityCredential` through the real Azure SDK.
//!
//! The SDK picks its identity source from the *process* environment when the credential is
//! built, with no way to pass one in, and the workspace forbids the `unsafe` that
//! `std::env::set_var` needs. So such tests run in a child process
//! ([`crate::harness`]) whose environment [`child_env`] prepares: `IDENTITY_ENDPOINT` names a
//! free loopback port, and the test serves [`IdentityEndpoint`] on it. Each child has its own
//! endpoint, so a test asserts on what its own endpoint was asked.
//!
//! Tokens are JWTs that Azurite's `--oauth basic` accepts (it decodes them without checking
//! the signature, then checks issuer, audience and times); a fake resource reads the
//! audience back with [`audience`].

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use base64::Engine as _;

use crate::recording::{Request, Stub};

/// Where the App Service source of the SDK asks for tokens.
pub const ENDPOINT_VAR: &str = "IDENTITY_ENDPOINT";
/// The secret header value the endpoint expects.
pub const HEADER_VAR: &str = "IDENTITY_HEADER";
/// Sources the SDK would prefer over App Service (Service Fabric, Azure Arc, Cloud Shell).
const OTHER_SOURCES: [&str; 4] = [
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
];
const HEADER_VALUE: &str = "fake-identity-header-value";
const PATH: &str = "/msi/token";
/// The tenant of every token.
const TENANT: &str = "00000000-0000-0000-0000-000000000001";

/// Prepare a child's environment for [`IdentityEndpoint::start`]: the endpoint on a port that
/// was free a moment ago (the child binds it; the window in between is tiny and a clash
/// fails loudly), its header secret, and none of the sources that would take precedence.
pub fn child_env(command: &mut Command) {
    let endpoint = format!("http://127.0.0.1:{}{PATH}", crate::free_port());
    command
        .env(ENDPOINT_VAR, endpoint)
        .env(HEADER_VAR, HEADER_VALUE);
    for name in OTHER_SOURCES {
        command.env_remove(name);
    }
}

/// Hand this process's identity settings on to `command`, a process the test starts with a
/// cleared environment (`serve`, say).
pub fn pass_on(command: &mut Command) {
    for name in [ENDPOINT_VAR, HEADER_VAR] {
        if let Ok(value) = std::env::var(name) {
            command.env(name, value);
        }
    }
}

/// What the endpoint was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub api_version: Option<String>,
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub identity_header: Option<String>,
    pub metadata: Option<String>,
}

impl TokenRequest {
    fn of(request: &Request) -> Self {
        Self {
            api_version: request.query("api-version"),
            resource: request.query("resource"),
            client_id: request.query("client_id"),
            identity_header: request.header("x-identity-header").map(str::to_owned),
            metadata: request.header("metadata").map(str::to_owned),
        }
    }
}

/// The fake endpoint, serving where this process's `IDENTITY_ENDPOINT` points.
pub struct IdentityEndpoint {
    stub: Stub,
}

impl IdentityEndpoint {
    /// Serve tokens for the resource asked for.
    pub async fn start() -> Self {
        Self::start_with_wrong_audience(&[]).await
    }

    /// Serve tokens for the resource asked for, except that tokens for each `(client id,
    /// audience)` listed are for that audience instead (an identity granted the wrong
    /// resource).
    pub async fn start_with_wrong_audience(wrong: &[(&str, &str)]) -> Self {
        let endpoint = std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
            panic!("{ENDPOINT_VAR} is not set: run the test through testkit::harness with identity::child_env")
        });
        let address = endpoint
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix(PATH))
            .unwrap_or_else(|| panic!("{ENDPOINT_VAR}={endpoint} was not made by child_env"));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("cannot serve the identity endpoint on {address}: {e}"));
        let wrong: Arc<HashMap<String, String>> = Arc::new(
            wrong
                .iter()
                .map(|(id, aud)| ((*id).to_owned(), (*aud).to_owned()))
                .collect(),
        );
        let stub = Stub::serve(listener, endpoint.clone(), move |request| {
            let asked = TokenRequest::of(request);
            if request.path() != PATH || asked.identity_header.as_deref() != Some(HEADER_VALUE) {
                return (StatusCode::UNAUTHORIZED, "bad identity header").into_response();
            }
            let resource = asked.resource.unwrap_or_default();
            let audience = asked
                .client_id
                .and_then(|id| wrong.get(&id).cloned())
                .unwrap_or_else(|| resource.clone());
            let (token, expires_on) = token_for(&audience);
            axum::Json(serde_json::json!({
                "access_token": token,
                // A string, as App Service sends it.
                "expires_on": expires_on.to_string(),
                "token_type": "Bearer",
                "resource": resource,
            }))
            .into_response()
        });
        Self { stub }
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.stub.requests().iter().map(TokenRequest::of).collect()
    }

    /// Panics unless the endpoint was asked at least once, and every time as the App Service
    /// protocol says, for `resource` and for `client_id` (`None`: the system-assigned
    /// identity).
    pub fn assert_asked_only_for(&self, resource: &str, client_id: Option<&str>) {
        let seen = self.requests();
        assert!(!seen.is_empty(), "the identity endpoint was never asked");
        for request in &seen {
            let expected = TokenRequest {
                api_version: Some("2019-08-01".to_owned()),
                resource: Some(resource.to_owned()),
                client_id: client_id.map(str::to_owned),
                identity_header: Some(HEADER_VALUE.to_owned()),
                metadata: Some("true".to_owned()),
            };
            assert_eq!(request, &expected);
        }
    }
}

/// A token for `audience` and its expiry (Unix seconds, an hour from now), shaped like one
/// from Entra ID's v1 endpoint; signed with a throwaway secret nobody checks.
fn token_for(audience: &str) -> (String, i64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "aud": audience,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "oid": "00000000-0000-0000-0000-00000000000a",
        "tid": TENANT,
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"nobody-checks-this-signature"),
    )
    .expect("encode a token");
    (token, now + 3600)
}

/// The audience of a token from [`IdentityEndpoint`] (`Bearer ` prefix allowed), for a
/// fake resource deciding whether a caller is authorized.
pub fn audience(token: &str) -> Option<String> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    claims["aud"].as_str().map(str::to_owned)
}
