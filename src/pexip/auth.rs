//! Credentials for `/api/admin/**`: HTTP Basic, or an OAuth2 access token obtained with an
//! ES256 JWT client assertion (docs/pexip.md §2.1 OAuth2) and cached.
//!
//! The token cache renews ahead of expiry (when less than `min(5 min, 20 % of the lifetime)`
//! is left) with a single request however many callers are waiting: a `tokio` mutex serialises
//! renewals and every waiter re-checks the cache once it holds the mutex. A 401 from
//! `/api/admin` forces one renewal, also single flight: a token is identified by a generation
//! number, and a caller whose token was already replaced by someone else's renewal just uses
//! the new one. Expiry is measured with `tokio::time::Instant` so tests can pause time.
//!
//! The private key and the Basic password are [`Secret`] handles, read when needed: a key
//! rotated in Key Vault signs the next token request, a rotated password goes out with the
//! next request. A rotated key that does not parse is refused with a warning and the previous
//! key keeps signing (the secret store already keeps the last value the vault gave; this
//! guards against a value that is readable but not a key). A token already issued stays in use
//! until it is due for renewal or refused: Pexip does not revoke tokens when a client's key
//! changes, and a refusal (401) forces a renewal with the current key anyway.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::PexipError;
use super::key::SigningKey;
use super::stats::Counters;
use crate::secrets::Secret;

/// Lifetime of a client assertion (`exp - iat`). Short: it is used once, right away.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
/// Renew when less than this is left (pexshell uses 5 minutes)...
pub const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// ...or less than this share of the lifetime, whichever is smaller, so short-lived tokens
/// (tests, aggressive server settings) are still used for most of their life.
pub const RENEW_MARGIN_SHARE: u32 = 5; // 1/5 = 20 %

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How requests to `/api/admin` authenticate.
pub(crate) enum Auth {
    /// `Authorization: Basic ..` from the account name and the current password.
    Basic { username: String, password: Secret },
    /// Cached OAuth2 bearer tokens.
    OAuth2(Box<OAuth2>),
}

/// An `Authorization` header value plus, for OAuth2, which token it is.
#[derive(Clone)]
pub(crate) struct Credential {
    pub header: HeaderValue,
    /// `Some(generation)` for a bearer token, `None` for Basic.
    pub generation: Option<u64>,
}

impl Auth {
    /// Basic auth with the password `password` holds at each request. The current one is
    /// checked now, so bad credentials fail at start.
    pub fn basic(username: &str, password: Secret) -> Result<Self, PexipError> {
        basic_header(username, &password.current())?;
        Ok(Auth::Basic {
            username: username.to_owned(),
            password,
        })
    }

    /// OAuth2 with the key `key` holds. The current key is parsed now, so a bad key fails at
    /// start; the error names where the key came from.
    pub fn oauth2(client_id: &str, mut key: Secret, token_url: String) -> Result<Self, PexipError> {
        let current = key.take_changed().unwrap_or_else(|| key.current());
        let parsed = SigningKey::parse(current.expose_secret())
            .map_err(|e| PexipError::Config(format!("{}: {e}", key.source())))?;
        Ok(Auth::OAuth2(Box::new(OAuth2 {
            client_id: client_id.to_owned(),
            signer: Mutex::new(Signer {
                key: parsed.encoding_key(),
                secret: key,
            }),
            token_url,
            cache: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
        })))
    }
}

/// `Basic base64(username:password)`, marked sensitive so it never shows in debug output.
pub(crate) fn basic_header(
    username: &str,
    password: &SecretString,
) -> Result<HeaderValue, PexipError> {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose_secret()));
    let mut header = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| PexipError::Config("the Basic credentials are not a valid header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// The OAuth2 client and its token cache.
pub(crate) struct OAuth2 {
    client_id: String,
    /// The key assertions are signed with, and where rotated keys come from.
    signer: Mutex<Signer>,
    /// The exact token URL, which is also the assertion's `aud`.
    token_url: String,
    cache: Mutex<Option<CachedToken>>,
    /// Held while a renewal is in flight (single flight).
    refresh: tokio::sync::Mutex<()>,
    /// Tokens issued so far; each new token's generation is the next value.
    generations: AtomicU64,
}

/// The parsed signing key and the secret it was parsed from.
struct Signer {
    key: EncodingKey,
    secret: Secret,
}

#[derive(Clone)]
struct CachedToken {
    header: HeaderValue,
    renew_at: Instant,
    generation: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl OAuth2 {
    /// A token that is not due for renewal, fetching one (single flight) if needed.
    pub async fn credential(
        &self,
        http: &reqwest::Client,
        counters: &Counters,
    ) -> Result<Credential, PexipError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _renewing = self.refresh.lock().await;
        // Someone else may have renewed while we waited for the mutex.
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        self.renew_now(http, counters).await
    }

    /// After `/api/admin` refused token `rejected`: renew once, unless another caller already
    /// replaced that token, in which case use theirs.
    pub async fn renew_after_rejection(
        &self,
        rejected: u64,
        http: &reqwest::Client,
        counters: &Counters,
    ) -> Result<Credential, PexipError> {
        let _renewing = self.refresh.lock().await;
        {
            let mut cache = self.lock_cache();
            match cache.as_ref() {
                Some(current) if current.generation != rejected => {
                    return Ok(Credential {
                        header: current.header.clone(),
                        generation: Some(current.generation),
                    });
                }
                // Forget the refused token so nobody else tries it while we renew.
                Some(_) => *cache = None,
                None => {}
            }
        }
        self.renew_now(http, counters).await
    }

    /// The cached token if it is fresh and newer than `credential`.
    pub fn newer_than(&self, credential: &Credential) -> Option<Credential> {
        let fresh = self.fresh()?;
        (fresh.generation > credential.generation).then_some(fresh)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<CachedToken>> {
        self.cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn fresh(&self) -> Option<Credential> {
        let cache = self.lock_cache();
        let token = cache.as_ref()?;
        (Instant::now() < token.renew_at).then(|| Credential {
            header: token.header.clone(),
            generation: Some(token.generation),
        })
    }

    /// Fetch a token and cache it under a new generation. Callers hold `refresh`.
    async fn renew_now(
        &self,
        http: &reqwest::Client,
        counters: &Counters,
    ) -> Result<Credential, PexipError> {
        let requested_at = Instant::now();
        let (header, lifetime) = self.fetch(http).await.inspect_err(|e| {
            counters.failed(e.class());
            tracing::warn!(pexip.path = super::paths::TOKEN_PATH, error = %e, "pexip token request failed");
        })?;
        counters.token_renewed();
        let margin = RENEW_MARGIN.min(lifetime / RENEW_MARGIN_SHARE);
        // Measured from before the request, so the token is never older than we think.
        let renew_at = requested_at + lifetime.saturating_sub(margin);
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *self.lock_cache() = Some(CachedToken {
            header: header.clone(),
            renew_at,
            generation,
        });
        tracing::info!(
            pexip.token_lifetime_s = lifetime.as_secs(),
            "pexip access token renewed"
        );
        Ok(Credential {
            header,
            generation: Some(generation),
        })
    }

    /// One `POST /oauth/token/` with a fresh assertion.
    async fn fetch(&self, http: &reqwest::Client) -> Result<(HeaderValue, Duration), PexipError> {
        let assertion = self.assertion()?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let started = Instant::now();
        let dependency = crate::telemetry::dependency::token_span(&self.token_url);
        let exchange = async {
            let response = http.post(&self.token_url).form(&form).send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        }
        .instrument(dependency.clone())
        .await;
        crate::telemetry::dependency::record_outcome(
            &dependency,
            exchange.as_ref().ok().map(|(status, _, _)| status.as_u16()),
            exchange
                .as_ref()
                .map_or(true, |(status, _, _)| !status.is_success()),
        );
        let (status, headers, body) = exchange.map_err(|e| PexipError::from_transport(&e))?;
        tracing::debug!(
            pexip.method = "POST",
            pexip.path = super::paths::TOKEN_PATH,
            pexip.status = status.as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "pexip request"
        );
        if !status.is_success() {
            return Err(match status.as_u16() {
                // RFC 6749 §5.2: invalid_client / invalid_grant come back as 400 or 401.
                400 | 401 | 403 => PexipError::Unauthorized,
                _ => PexipError::from_response(status, &headers, &body),
            });
        }
        let token: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| PexipError::Other {
                status: Some(status.as_u16()),
                message: "the token response is not the expected JSON".to_owned(),
            })?;
        if let Some(kind) = &token.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(PexipError::Other {
                status: Some(status.as_u16()),
                message: format!("unexpected token_type {kind:?}"),
            });
        }
        // Pexip's default lifetime is one hour (`api_oauth2_expiration`).
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        let mut header =
            HeaderValue::from_str(&format!("Bearer {}", token.access_token)).map_err(|_| {
                PexipError::Other {
                    status: Some(status.as_u16()),
                    message: "the access token is not a valid header value".to_owned(),
                }
            })?;
        header.set_sensitive(true);
        Ok((header, lifetime))
    }

    /// A signed client assertion: iss = sub = client id, aud = the token URL, a 5-minute
    /// lifetime and a random jti (Pexip may refuse a reused one).
    fn assertion(&self) -> Result<String, PexipError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| PexipError::Config("the system clock is before 1970".into()))?
            .as_secs();
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.token_url,
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut signer = self.signer.lock().unwrap_or_else(|p| p.into_inner());
        signer.pick_up_rotation();
        // Header::new sets typ "JWT"; no kid (Pexip issues one key per client).
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &signer.key)
            .map_err(|e| PexipError::Config(format!("cannot sign the client assertion: {e}")))
    }
}

impl Signer {
    /// Switch to the secret's new key if it changed and parses; otherwise keep the old one.
    fn pick_up_rotation(&mut self) {
        let Some(rotated) = self.secret.take_changed() else {
            return;
        };
        match SigningKey::parse(rotated.expose_secret()) {
            Ok(key) => {
                self.key = key.encoding_key();
                tracing::info!(
                    secret.source = self.secret.source(),
                    "pexip private key rotated; signing with the new key"
                );
            }
            Err(e) => tracing::warn!(
                secret.source = self.secret.source(),
                error = %e,
                "the rotated pexip private key is unusable; still signing with the previous key"
            ),
        }
    }
}
