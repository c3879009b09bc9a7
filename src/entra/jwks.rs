//! The tenant's signing keys (a JWKS document), fetched on first use and cached.
//!
//! - Keys are used for `AUTH_JWKS_CACHE_SECONDS`, then fetched again by the next request, so a
//!   key Entra withdrew stops being trusted.
//! - A token whose `kid` we do not know refreshes the keys at once (Entra rolls its keys and
//!   may sign with a new one before our cache expires), but at most once per
//!   `AUTH_JWKS_REFRESH_MIN_SECONDS`: a flood of made-up `kid`s costs the JWKS endpoint one
//!   request per interval, not one per token.
//! - One fetch at a time (a `tokio` mutex held across it): concurrent first requests wait for
//!   one fetch instead of each making their own.
//! - A failed fetch keeps the last good keys (with a warning) and is not retried for
//!   `AUTH_JWKS_REFRESH_MIN_SECONDS`; with no keys at all the caller gets
//!   [`KeyError::Unavailable`] (503, not a 401 the client could do nothing about) and the
//!   fetch is retried after [`RETRY_AFTER_FAILURE`].
//! - The last good keys are kept for at most `AUTH_JWKS_MAX_STALE_SECONDS` past
//!   `AUTH_JWKS_CACHE_SECONDS`: Entra withdraws a compromised key by leaving it out of the
//!   JWKS, and an endpoint we cannot reach must not keep such a key trusted for ever. Beyond
//!   that, it is as if no keys were ever fetched.
//!
//! Only signature keys of the algorithms Entra uses are kept: RSA (RS256) and EC P-256
//! (ES256). Symmetric keys in a JWKS are ignored, so no token can be "signed" with a public
//! value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

/// After a failed first fetch, requests get 503 for this long before the endpoint is tried
/// again.
pub(super) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Timeout of one JWKS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A key from the JWKS and the one algorithm a token signed with it may use.
pub(super) struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

/// Why no key could be found for a `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyError {
    /// The keys are known and this `kid` is not among them.
    Unknown,
    /// No keys could ever be fetched.
    Unavailable,
}

/// Why the keys are fetched (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    FirstUse,
    Expired,
    UnknownKid,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::FirstUse => "first use",
            Reason::Expired => "cache expired",
            Reason::UnknownKid => "unknown kid",
        }
    }
}

/// One successful fetch.
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Instant,
}

/// Bookkeeping of refreshes, guarded by the fetch mutex.
#[derive(Default)]
struct RefreshState {
    /// Last refresh caused by an unknown `kid`.
    forced_at: Option<Instant>,
    /// Last failed fetch.
    failed_at: Option<Instant>,
}

/// The cached JWKS of one URL.
pub(super) struct JwksCache {
    http: reqwest::Client,
    url: Url,
    max_age: Duration,
    refresh_min: Duration,
    /// Keys older than `max_age + max_stale` are not used, whatever happens to refreshes.
    max_stale: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl JwksCache {
    pub fn new(
        http: reqwest::Client,
        url: Url,
        max_age: Duration,
        refresh_min: Duration,
        max_stale: Duration,
    ) -> Self {
        Self {
            http,
            url,
            max_age,
            refresh_min,
            max_stale,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        }
    }

    /// The key named `kid`, fetching or refreshing the set when needed.
    pub async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, KeyError> {
        // Fast path: fresh keys that know this kid; no lock beyond a read.
        if let Some(set) = self.current()
            && self.is_fresh(&set, Instant::now())
            && let Some(key) = set.keys.get(kid)
        {
            return Ok(key.clone());
        }
        let mut state = self.refresh.lock().await;
        let now = Instant::now();
        // Decided under the lock: another request may have fetched while we waited. Keys
        // past their maximum staleness count as none.
        let current = self.usable(now);
        let reason = match &current {
            None => Some(Reason::FirstUse),
            Some(set) if !self.is_fresh(set, now) => Some(Reason::Expired),
            Some(set) if set.keys.contains_key(kid) => None,
            Some(_) if state.forced_at.is_some_and(|t| now - t < self.refresh_min) => None,
            Some(_) => Some(Reason::UnknownKid),
        };
        // After a failure: with last good keys in hand there is no hurry (they verify until
        // Entra stops using them); with none, every request is failing, so retry soon.
        let pause = if current.is_some() {
            self.refresh_min
        } else {
            RETRY_AFTER_FAILURE
        };
        let backing_off = state.failed_at.is_some_and(|t| now - t < pause);
        // Keys this call fetched verify its token whatever the staleness limit says.
        let mut fetched = None;
        if let Some(reason) = reason
            && !backing_off
        {
            if reason == Reason::UnknownKid {
                state.forced_at = Some(now);
            }
            match self.fetch().await {
                Ok(keys) => {
                    tracing::info!(
                        jwks.keys = keys.len(),
                        jwks.reason = reason.as_str(),
                        "signing keys fetched"
                    );
                    state.failed_at = None;
                    let set = Arc::new(KeySet {
                        keys,
                        fetched_at: Instant::now(),
                    });
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(set.clone());
                    fetched = Some(set);
                }
                Err(e) => {
                    state.failed_at = Some(Instant::now());
                    tracing::warn!(
                        error = %e,
                        jwks.reason = reason.as_str(),
                        "could not fetch the signing keys; keeping the last good ones"
                    );
                }
            }
        }
        drop(state);
        match fetched.or_else(|| self.usable(Instant::now())) {
            None => Err(KeyError::Unavailable),
            Some(set) => set.keys.get(kid).cloned().ok_or(KeyError::Unknown),
        }
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn is_fresh(&self, set: &KeySet, now: Instant) -> bool {
        now - set.fetched_at < self.max_age
    }

    /// The current keys unless they are older than `max_age + max_stale`.
    fn usable(&self, now: Instant) -> Option<Arc<KeySet>> {
        self.current().filter(|set| {
            let usable = now - set.fetched_at < self.max_age + self.max_stale;
            if !usable {
                tracing::warn!(
                    age_s = (now - set.fetched_at).as_secs(),
                    "the last good signing keys are too old to trust (AUTH_JWKS_MAX_STALE_SECONDS)"
                );
            }
            usable
        })
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyingKey>>, FetchError> {
        let response = self
            .http
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| FetchError::Http(without_url(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let document: JwksDocument = response
            .json()
            .await
            .map_err(|e| FetchError::Http(without_url(e)))?;
        let keys = usable_keys(document);
        if keys.is_empty() {
            // An empty or foreign document would lock every caller out; keep the old keys.
            return Err(FetchError::NoUsableKeys);
        }
        Ok(keys)
    }
}

/// The URL is configuration, not a secret, but reqwest repeats it in every error; the
/// setting names it already.
fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("JWKS request failed: {0}")]
    Http(reqwest::Error),
    #[error("JWKS endpoint answered {0}")]
    Status(u16),
    #[error("the JWKS holds no RS256 or ES256 signature key with a kid")]
    NoUsableKeys,
}

/// `{"keys": [...]}`; each key is parsed on its own so one odd entry cannot hide the others.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

fn usable_keys(document: JwksDocument) -> HashMap<String, Arc<VerifyingKey>> {
    document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|u| *u != PublicKeyUse::Signature)
            {
                return None;
            }
            let (algorithm, declared) = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    (Algorithm::ES256, KeyAlgorithm::ES256)
                }
                _ => return None,
            };
            // A key that names another algorithm (RS384, PS256, ...) is not ours to use.
            if jwk.common.key_algorithm.is_some_and(|a| a != declared) {
                return None;
            }
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, Arc::new(VerifyingKey { key, algorithm })))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rsa_and_p256_signature_keys_with_a_kid_are_kept() {
        // n/e of a real 2048-bit key are not needed to parse; any base64url will do for RSA.
        let rsa = |kid: &str| json!({"kty": "RSA", "use": "sig", "kid": kid, "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"});
        let document = JwksDocument {
            keys: vec![
                rsa("rsa-1"),
                json!({"kty": "RSA", "use": "enc", "kid": "rsa-enc", "n": "AQAB", "e": "AQAB"}),
                json!({"kty": "RSA", "alg": "RS384", "kid": "rsa-384", "n": "AQAB", "e": "AQAB"}),
                json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}),
                json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AQAB", "y": "AQAB"}),
                json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                json!({"kty": "weird", "kid": "w"}),
                json!("not even an object"),
            ],
        };
        let keys = usable_keys(document);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["rsa-1"]);
        assert_eq!(keys["rsa-1"].algorithm, Algorithm::RS256);
    }
}
