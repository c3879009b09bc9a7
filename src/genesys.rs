//! Genesys Cloud: checks the `x-auth-token` of a contact-centre agent before they may read a
//! room (with its host PIN) through `GET /public/room/{name}`.
//!
//! The token is valid when `GET {api}/api/v2/users/me` accepts it and the user's division is
//! allow-listed. The route is public, so what a stranger can make it do is bounded:
//! - answers are cached per token (by SHA-256, so no token is kept in memory as a key) for
//!   `GENESYS_TOKEN_CACHE_SECONDS`, in a least-recently-used cache of [`MAX_CACHED_TOKENS`]:
//!   a flood of made-up tokens evicts only the oldest entries, never every agent's at once
//!   (the old service called Genesys on every request; an earlier version of this one
//!   cleared the whole cache when full);
//! - at most `GENESYS_MAX_IN_FLIGHT` checks are sent to Genesys at once; a check waits up to
//!   [`PERMIT_WAIT`] for its turn, then gets 503, so a flood queues here for a bounded time
//!   instead of spending the organisation's Genesys API rate limit.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use lru::LruCache;
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::GenesysSettings;

pub mod stand_in;

/// Most tokens remembered at once; beyond it the least recently used answer is forgotten.
const MAX_CACHED_TOKENS: usize = 10_000;
/// Timeout of one call to Genesys.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a check waits for one of the `GENESYS_MAX_IN_FLIGHT` slots.
pub const PERMIT_WAIT: Duration = Duration::from_secs(10);

/// Why an agent may not read a room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentAuthError {
    #[error("missing x-auth-token header")]
    Missing,
    #[error("Genesys Cloud did not accept the token")]
    InvalidToken,
    #[error("the agent's division is not allowed to read rooms")]
    DivisionNotAllowed,
    #[error("Genesys Cloud could not be reached: {0}")]
    Unavailable(String),
}

/// A Genesys user as far as we need it.
#[derive(Debug, Clone, Deserialize)]
struct Me {
    #[serde(default)]
    division: Option<Division>,
}

#[derive(Debug, Clone, Deserialize)]
struct Division {
    id: String,
}

/// Token digest → (when it was checked, the answer).
type TokenCache = LruCache<[u8; 32], (Instant, Result<(), AgentAuthError>)>;

/// Checks agent tokens against Genesys Cloud, with a short cache.
#[derive(Clone)]
pub struct AgentAuth {
    http: reqwest::Client,
    settings: Arc<GenesysSettings>,
    cache: Arc<Mutex<TokenCache>>,
    /// Slots for calls to Genesys (`GENESYS_MAX_IN_FLIGHT`).
    calls: Arc<Semaphore>,
}

impl AgentAuth {
    /// A checker using `http` for calls to Genesys.
    pub fn new(settings: GenesysSettings, http: reqwest::Client) -> Self {
        Self::with_capacity(settings, http, MAX_CACHED_TOKENS)
    }

    fn with_capacity(settings: GenesysSettings, http: reqwest::Client, tokens: usize) -> Self {
        let capacity = NonZeroUsize::new(tokens).unwrap_or(NonZeroUsize::MIN);
        Self {
            http,
            calls: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            settings: Arc::new(settings),
            cache: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// Decide whether `token` belongs to an agent allowed to read rooms. Definite answers
    /// (allowed, invalid, wrong division) are cached; outages are not.
    pub async fn check(&self, token: Option<&str>) -> Result<(), AgentAuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AgentAuthError::Missing)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        if let Some(answer) = self.cached(&key) {
            return answer;
        }
        let answer = self.ask_in_turn(token).await;
        if !matches!(answer, Err(AgentAuthError::Unavailable(_))) {
            self.remember(key, answer.clone());
        }
        answer
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Result<(), AgentAuthError>> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // `get` makes the entry the most recently used one.
        match cache.get(key) {
            Some((at, answer)) if at.elapsed() < self.settings.cache_ttl => Some(answer.clone()),
            Some(_) => {
                cache.pop(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: [u8; 32], answer: Result<(), AgentAuthError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Evicts the least recently used entry when full.
        cache.put(key, (Instant::now(), answer));
    }

    /// Ask Genesys once one of the call slots is free (waiting at most [`PERMIT_WAIT`]).
    async fn ask_in_turn(&self, token: &str) -> Result<(), AgentAuthError> {
        let permit = tokio::time::timeout(PERMIT_WAIT, self.calls.acquire())
            .await
            .map_err(|_| AgentAuthError::Unavailable("too many token checks in flight".into()))?
            // The semaphore is never closed.
            .map_err(|_| AgentAuthError::Unavailable("token checks are shut down".into()))?;
        let answer = self.ask_genesys(token).await;
        drop(permit);
        answer
    }

    async fn ask_genesys(&self, token: &str) -> Result<(), AgentAuthError> {
        let mut url = self.settings.api_base.clone();
        url.set_path("/api/v2/users/me");
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| AgentAuthError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(AgentAuthError::InvalidToken);
        }
        if !status.is_success() {
            return Err(AgentAuthError::Unavailable(format!(
                "users/me answered {status}"
            )));
        }
        let me: Me = response.json().await.map_err(|_| {
            AgentAuthError::Unavailable("users/me answered something that is not a user".into())
        })?;
        let division = me.division.map(|d| d.id).unwrap_or_default();
        if self.settings.allowed_divisions.contains(&division) {
            Ok(())
        } else {
            tracing::warn!(genesys.division = %division, "agent from a division that may not read rooms");
            Err(AgentAuthError::DivisionNotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stand_in::{RunningStandIn, StandIn};
    use super::*;
    use axum::http::StatusCode;

    async fn checker_with(
        max_in_flight: usize,
        tokens: usize,
        genesys: StandIn,
    ) -> (AgentAuth, RunningStandIn) {
        let genesys = genesys
            .agent("agent-ok", "u1", "div-sbc")
            .agent("agent-other", "u2", "div-x")
            .answering("genesys-down", StatusCode::SERVICE_UNAVAILABLE)
            .start()
            .await
            .unwrap();
        let settings = GenesysSettings {
            api_base: genesys.url().parse().unwrap(),
            allowed_divisions: vec!["div-sbc".into()],
            cache_ttl: Duration::from_secs(60),
            max_in_flight,
        };
        (
            AgentAuth::with_capacity(settings, reqwest::Client::new(), tokens),
            genesys,
        )
    }

    async fn checker() -> (AgentAuth, RunningStandIn) {
        checker_with(10, MAX_CACHED_TOKENS, StandIn::new()).await
    }

    #[tokio::test]
    async fn tokens_are_judged_by_genesys_and_the_division_list() {
        let (auth, _) = checker().await;
        assert_eq!(auth.check(Some("agent-ok")).await, Ok(()));
        assert_eq!(
            auth.check(Some("agent-other")).await,
            Err(AgentAuthError::DivisionNotAllowed)
        );
        assert_eq!(
            auth.check(Some("forged")).await,
            Err(AgentAuthError::InvalidToken)
        );
        assert_eq!(auth.check(Some(" ")).await, Err(AgentAuthError::Missing));
        assert_eq!(auth.check(None).await, Err(AgentAuthError::Missing));
        assert!(matches!(
            auth.check(Some("genesys-down")).await,
            Err(AgentAuthError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn answers_are_cached_but_outages_are_not() {
        let (auth, genesys) = checker().await;
        for _ in 0..5 {
            auth.check(Some("agent-ok")).await.unwrap();
            let _ = auth.check(Some("forged")).await;
            let _ = auth.check(Some("genesys-down")).await;
        }
        // One call each for the two definite answers, five for the outage.
        assert_eq!(genesys.calls(), 1 + 1 + 5);
    }

    /// Issue 13, item 13: a full cache forgets its least recently used answer, not all of
    /// them (the agent who keeps reading rooms stays cached through a flood of new tokens).
    #[tokio::test]
    async fn a_full_cache_evicts_the_least_recently_used_token_only() {
        let (auth, genesys) = checker_with(10, 3, StandIn::new()).await;
        for token in ["agent-ok", "forged-b", "forged-c"] {
            let _ = auth.check(Some(token)).await;
        }
        auth.check(Some("agent-ok")).await.unwrap();
        // Full: this one evicts forged-b, the least recently used.
        let _ = auth.check(Some("forged-d")).await;
        assert_eq!(genesys.calls(), 4);
        auth.check(Some("agent-ok")).await.unwrap();
        let _ = auth.check(Some("forged-c")).await;
        assert_eq!(genesys.calls(), 4, "both still cached");
        let _ = auth.check(Some("forged-b")).await;
        assert_eq!(genesys.calls(), 5, "forged-b was evicted");
    }

    /// Issue 13, item 13: many concurrent checks of new tokens reach Genesys at most
    /// `GENESYS_MAX_IN_FLIGHT` at a time, and every one of them is still answered.
    #[tokio::test]
    async fn concurrent_checks_are_capped() {
        // Every answer takes 100 ms, so checks overlap unless the cap holds them back.
        let slow = StandIn::new().answer_after(Duration::from_millis(100));
        let (auth, genesys) = checker_with(3, MAX_CACHED_TOKENS, slow).await;
        let checks: Vec<_> = (0..24)
            .map(|i| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.check(Some(&format!("slow-{i}"))).await })
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.unwrap(), Err(AgentAuthError::InvalidToken));
        }
        assert_eq!(genesys.calls(), 24);
        let peak = genesys.peak_in_flight();
        assert!((1..=3).contains(&peak), "peak {peak}");
    }
}
