//! Genesys Cloud: checks the `x-auth-token` of a contact-centre agent before they may read a
//! room (with its host PIN) through `GET /public/room/{name}`.
//!
//! The token is valid when `GET {api}/api/v2/users/me` accepts it and the user's division is
//! allow-listed. Answers are cached briefly per token (by SHA-256, so no token is kept in
//! memory as a key): the old service called Genesys on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use serde::Deserialize;
use tokio::time::Instant;

use crate::config::GenesysSettings;

pub mod stand_in;

/// Most tokens remembered at once; beyond it the cache is cleared (cheap, and bounded memory
/// matters more than a few extra calls to Genesys).
const MAX_CACHED_TOKENS: usize = 10_000;

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
type TokenCache = HashMap<Vec<u8>, (Instant, Result<(), AgentAuthError>)>;

/// Checks agent tokens against Genesys Cloud, with a short cache.
#[derive(Clone)]
pub struct AgentAuth {
    http: reqwest::Client,
    settings: Arc<GenesysSettings>,
    cache: Arc<Mutex<TokenCache>>,
}

impl AgentAuth {
    /// A checker using `http` for calls to Genesys.
    pub fn new(settings: GenesysSettings, http: reqwest::Client) -> Self {
        Self {
            http,
            settings: Arc::new(settings),
            cache: Arc::default(),
        }
    }

    /// Decide whether `token` belongs to an agent allowed to read rooms. Definite answers
    /// (allowed, invalid, wrong division) are cached; outages are not.
    pub async fn check(&self, token: Option<&str>) -> Result<(), AgentAuthError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AgentAuthError::Missing)?;
        let key = digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .to_vec();
        if let Some(answer) = self.cached(&key) {
            return answer;
        }
        let answer = self.ask_genesys(token).await;
        if !matches!(answer, Err(AgentAuthError::Unavailable(_))) {
            self.remember(key, answer.clone());
        }
        answer
    }

    fn cached(&self, key: &[u8]) -> Option<Result<(), AgentAuthError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.settings.cache_ttl)
            .map(|(_, answer)| answer.clone())
    }

    fn remember(&self, key: Vec<u8>, answer: Result<(), AgentAuthError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), answer));
    }

    async fn ask_genesys(&self, token: &str) -> Result<(), AgentAuthError> {
        let mut url = self.settings.api_base.clone();
        url.set_path("/api/v2/users/me");
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
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

    async fn checker() -> (AgentAuth, RunningStandIn) {
        let genesys = StandIn::new()
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
        };
        (AgentAuth::new(settings, reqwest::Client::new()), genesys)
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
}
