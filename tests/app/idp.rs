//! A stand-in for Microsoft Entra ID: signing keys made at test time, a JWKS document served
//! on 127.0.0.1:0 (keys can be published while it runs, fetches are counted), and access
//! tokens shaped like the ones Entra issues to a client-credentials caller.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-0000-4000-8000-2d7cd011db47";
pub const ISSUER: &str =
    "https://login.microsoftonline.com/72f988bf-0000-4000-8000-2d7cd011db47/v2.0";
pub const AUDIENCE: &str = "api://pexip-sdk-tests";
/// The IDIM Video API's client application (allowed).
pub const CLIENT_ID: &str = "5b1d8a3e-1111-4c8e-9d2a-0c2a7f3e9b10";
/// Another application of the tenant (not allowed).
pub const OTHER_CLIENT_ID: &str = "0e6f4c2b-2222-4f1a-8b3c-6d5e4f3a2b1c";
pub const ROLE: &str = "Rooms.Manage";

/// A private key with its kid, and the public JWK the IdP publishes for it.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    /// A fresh RSA-2048 key (what Entra signs with).
    pub fn rsa(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
        Self::new(kid, Algorithm::RS256, key)
    }

    /// A fresh EC P-256 key.
    pub fn es256(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        Self::new(kid, Algorithm::ES256, key)
    }

    fn new(kid: &str, algorithm: Algorithm, key: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.to_owned(),
            algorithm,
            key,
            jwk,
        }
    }

    /// A token with these claims, its header naming this key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// A token signed with this key but whose header names `kid` (a forgery when `kid` is
    /// another published key).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.to_owned());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// RSA key generation is slow in a debug build: one set of keys per test binary.
pub static KEY_A: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::rsa("kid-a"));
pub static KEY_B: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::rsa("kid-b"));
/// Never published.
pub static ROGUE: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::rsa("kid-rogue"));
pub static EC_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::es256("kid-ec"));

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The claims of a valid v2 app-only token of the allowed client.
pub fn claims() -> Value {
    let now = now();
    json!({
        "aud": AUDIENCE, "iss": ISSUER, "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "azp": CLIENT_ID, "azpacr": "1", "idtyp": "app", "oid": "9f0c1d2e-3333-4b5a-8c7d-1e2f3a4b5c6d",
        "roles": [ROLE], "sub": "9f0c1d2e-3333-4b5a-8c7d-1e2f3a4b5c6d", "tid": TENANT, "ver": "2.0",
    })
}

/// `claims()` with some fields replaced (a `null` removes the claim).
pub fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

/// A JWKS endpoint on 127.0.0.1:0.
pub struct Idp {
    pub jwks_url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Idp {
    /// Serve a JWKS with these keys published.
    pub async fn start(published: &[&SigningKey]) -> Self {
        let keys = Arc::new(Mutex::new(
            published.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (served, counted, failing) = (keys.clone(), fetches.clone(), down.clone());
        let app = axum::Router::new().route(
            "/tenant/discovery/v2.0/keys",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = if failing.load(Ordering::SeqCst) {
                    Err(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(axum::Json(JwkSet {
                        keys: served.lock().unwrap().clone(),
                    }))
                };
                async move { answer }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            jwks_url: format!("http://{addr}/tenant/discovery/v2.0/keys"),
            keys,
            fetches,
            down,
        }
    }

    /// Make the JWKS endpoint answer 503 (or recover).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Add a key to the JWKS (Entra publishing a new signing key).
    pub fn publish(&self, key: &SigningKey) {
        self.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// How often the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Settings that turn the check on against this IdP, allowing `CLIENT_ID`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AUTH_JWKS_URL".into(), self.jwks_url.clone()),
            (
                "AUTH_ISSUER".into(),
                format!("https://sts.windows.net/{TENANT}/,{ISSUER}"),
            ),
            (
                "AUTH_AUDIENCE".into(),
                format!("{AUDIENCE},11111111-2222-3333-4444-555555555555"),
            ),
            ("AUTH_ALLOWED_CLIENT_IDS".into(), CLIENT_ID.into()),
        ]
    }
}
