//! Environment builders: the settings that point the service at its test peers, built once
//! here instead of as `("PEXIP_BASE_URL", …)` pairs in every test and benchmark. The result
//! is either config's [`Env`] (an app built in the test's process) or the pairs for a child
//! process ([`crate::serve::ServeProcess`]).

use pexip_sdk::config::{EVENT_SINK_PASSWORD, Env, STORAGE_CONNECTION};
use pexip_sdk::genesys::stand_in::RunningStandIn;
use pexip_sim::SimHandle;

use crate::azurite::Azurite;

/// Settings as `(variable, value)` pairs; a later value for a variable replaces the earlier.
#[derive(Debug, Clone, Default)]
pub struct AppEnv {
    pairs: Vec<(String, String)>,
}

impl AppEnv {
    /// No settings yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `name` (replacing an earlier value).
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((name.to_owned(), value)),
        }
        self
    }

    /// Set every pair of `pairs`, in order.
    pub fn extend<K: AsRef<str>, V: Into<String>>(
        self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        pairs
            .into_iter()
            .fold(self, |env, (k, v)| env.set(k.as_ref(), v))
    }

    /// Pexip is `sim`, over OAuth2 with its client ([`SimHandle::client_env`]).
    pub fn pexip(self, sim: &SimHandle) -> Self {
        self.extend(sim.client_env())
    }

    /// The event sink's Basic credentials.
    pub fn event_sink(self, username: &str, password: &str) -> Self {
        self.set("EVENT_SINK_USERNAME", username)
            .set(EVENT_SINK_PASSWORD, password)
    }

    /// The queues are on `azurite` (its connection string in `AzureWebJobsStorage`).
    pub fn storage(self, azurite: &Azurite) -> Self {
        self.set(STORAGE_CONNECTION, azurite.connection_string())
    }

    /// Queue names start with `prefix`, so runs sharing one Azurite keep apart.
    pub fn queue_prefix(self, prefix: impl Into<String>) -> Self {
        self.set("QUEUE_NAME_PREFIX", prefix)
    }

    /// Agents are checked against `genesys` ([`crate::genesys::start`]), whose allowed
    /// division is [`crate::genesys::ALLOWED_DIVISION`].
    pub fn genesys(self, genesys: &RunningStandIn) -> Self {
        self.set("GENESYS_API_BASE", genesys.url()).set(
            "GENESYS_ALLOWED_DIVISIONS",
            crate::genesys::ALLOWED_DIVISION,
        )
    }

    /// The pairs, for a child process.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The settings as config reads them, for an app built in this process.
    pub fn to_env(&self) -> Env {
        Env::from_pairs(self.pairs.iter().cloned())
    }
}
