//! Secrets: the Pexip private key (or Basic password) and the event sink's password, from
//! Azure Key Vault through the managed identity, or from the environment. Never logs a value.
//!
//! A [`Secret`] is a cheap, cloneable handle on the *current* value of one secret. Its users
//! read it when they need it (the Pexip client for its next token request, the event sink on
//! every request), so a rotated value is used without a restart:
//!
//! - from the environment (`dev`, tests, deployments without `KEY_VAULT_URL`) a secret is
//!   [`Secret::fixed`]: it never changes;
//! - from Key Vault, [`SecretStore::open`] reads every configured secret once (a failure is a
//!   start-up error naming the vault and the secret), then a background task reads them again
//!   every `KEY_VAULT_REFRESH_SECONDS`. A changed value is published to every handle; a failed
//!   read keeps the last good value and logs a warning with the secret's name (never its
//!   value). The task stops once no handle is left.
//!
//! Handles are `tokio::sync::watch` receivers rather than an `Arc<RwLock<..>>`: readers never
//! block the refresher, and a reader can cheaply ask "did it change since I last looked?",
//! which is what the Pexip client needs to re-parse its key only after a rotation.

mod vault;

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::watch;

use self::vault::VaultClient;
pub use self::vault::VaultOptions;
use crate::config::{Env, KeyVaultSettings, VaultSecret};

/// A handle on the current value of one secret. Clones share the value; each clone tracks
/// on its own which value it last took with [`Secret::take_changed`].
#[derive(Clone)]
pub struct Secret {
    /// What to call it in messages: the setting (`PEXIP_PRIVATE_KEY`) or the vault secret.
    source: Arc<str>,
    value: watch::Receiver<SecretString>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, redacted)", self.source)
    }
}

impl Secret {
    /// A value that never changes (from the environment, or built by a test). `source` names
    /// it in messages, e.g. `PEXIP_PRIVATE_KEY`.
    pub fn fixed(source: impl Into<String>, value: SecretString) -> Self {
        // With the sender gone the receiver still holds the value and never sees a change.
        let (_, value) = watch::channel(value);
        Self {
            source: Arc::from(source.into()),
            value,
        }
    }

    /// Where the value comes from, for messages: a setting name, or
    /// `Key Vault secret <name>`. Never the value.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The current value.
    pub fn current(&self) -> SecretString {
        self.value.borrow().clone()
    }

    /// The new value if it changed since this handle last took one (or since it was made),
    /// marking it taken; `None` otherwise.
    pub fn take_changed(&mut self) -> Option<SecretString> {
        match self.value.has_changed() {
            Ok(true) => Some(self.value.borrow_and_update().clone()),
            // Unchanged, or nobody can change it any more.
            Ok(false) | Err(_) => None,
        }
    }

    /// A secret whose value the returned sender changes (unit tests of its users).
    #[cfg(test)]
    pub(crate) fn for_test(source: &str, value: &str) -> (watch::Sender<SecretString>, Self) {
        let (sender, value) = watch::channel(SecretString::from(value.to_owned()));
        (
            sender,
            Self {
                source: Arc::from(source),
                value,
            },
        )
    }

    /// Wait for the next change and return the new value (marking it taken); `None` when it
    /// can no longer change (a fixed value, or the store's refresher has stopped).
    pub async fn changed(&mut self) -> Option<SecretString> {
        self.value.changed().await.ok()?;
        Some(self.value.borrow_and_update().clone())
    }
}

/// Why a secret could not be read from Key Vault. Messages name the vault and the secret,
/// never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The client cannot be built (bad URL, no identity source).
    #[error("Key Vault {vault}: cannot set up the client: {detail}")]
    Client { vault: String, detail: String },
    /// The managed identity could not get a token for the vault.
    #[error(
        "Key Vault {vault}: the managed identity got no token to read secret {name:?}: {detail}"
    )]
    Identity {
        vault: String,
        name: String,
        detail: String,
    },
    /// The vault has no (enabled) secret of that name.
    #[error("Key Vault {vault} has no secret {name:?} (the value of {setting})")]
    NotFound {
        vault: String,
        name: String,
        setting: String,
    },
    /// The vault refused the identity (no `get` permission / role on secrets).
    #[error(
        "Key Vault {vault} refused to give secret {name:?} to this identity (check its secret get permission): {detail}"
    )]
    Denied {
        vault: String,
        name: String,
        detail: String,
    },
    /// Network trouble, a timeout, throttling or a 5xx: try again later.
    #[error("Key Vault {vault} is unavailable: cannot read secret {name:?}: {detail}")]
    Unavailable {
        vault: String,
        name: String,
        detail: String,
    },
    /// The secret exists but holds no value.
    #[error("Key Vault {vault}: secret {name:?} is empty")]
    Empty { vault: String, name: String },
    /// Anything else (an unexpected answer).
    #[error("Key Vault {vault}: cannot read secret {name:?}: {detail}")]
    Other {
        vault: String,
        name: String,
        detail: String,
    },
}

/// The secrets read from Key Vault, kept current by a background refresher.
pub struct SecretStore {
    /// Each configured secret with its handle, in configuration order.
    secrets: Vec<(VaultSecret, Secret)>,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.secrets.iter().map(|(s, _)| &s.name))
            .finish()
    }
}

impl SecretStore {
    /// Read every secret of `settings` from the vault through the managed identity, then keep
    /// them current every `settings.refresh_interval`. Fails, naming the vault and the
    /// secret, when any first read fails: the service cannot run without its credentials.
    /// Must be called within a tokio runtime (it spawns the refresher).
    pub async fn open(settings: &KeyVaultSettings) -> Result<Self, SecretsError> {
        Self::open_with(settings, VaultOptions::default()).await
    }

    /// [`Self::open`] with client options for tests (a transport trusting a test certificate,
    /// a fake vault that is not under `vault.azure.net`). Production uses the defaults.
    pub async fn open_with(
        settings: &KeyVaultSettings,
        options: VaultOptions,
    ) -> Result<Self, SecretsError> {
        let client = VaultClient::connect(settings, options)?;
        let mut secrets = Vec::with_capacity(settings.secrets.len());
        let mut senders = Vec::with_capacity(settings.secrets.len());
        for secret in &settings.secrets {
            let value = client.read(secret).await?;
            tracing::info!(
                secret.name = %secret.name,
                secret.setting = secret.setting,
                "read secret from Key Vault"
            );
            let (sender, receiver) = watch::channel(value);
            secrets.push((
                secret.clone(),
                Secret {
                    source: Arc::from(format!("Key Vault secret {}", secret.name)),
                    value: receiver,
                },
            ));
            senders.push((secret.clone(), sender));
        }
        // The schedule starts now, not when the task is first polled, so "one interval after
        // the first read" holds however busy the runtime is.
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.refresh_interval,
            settings.refresh_interval,
        );
        // After a slow round (a vault retrying), wait a full interval again rather than
        // catching up with a burst of reads.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(refresh(client, senders, ticks));
        Ok(Self { secrets })
    }

    /// Hand every secret's live handle to `env`, under the name of the setting it supplies
    /// (`PEXIP_PRIVATE_KEY`, ...), so the settings read from `env` hold these handles and
    /// nothing else: one source per secret, and a rotated value reaches every user.
    pub fn supply(&self, env: &mut Env) {
        for (secret, handle) in &self.secrets {
            env.supply_secret(secret.setting, handle.clone());
        }
    }
}

/// Read every secret again on every tick until no handle is left. A changed value is
/// published; a failed read keeps the last good value and says so.
async fn refresh(
    client: VaultClient,
    senders: Vec<(VaultSecret, watch::Sender<SecretString>)>,
    mut ticks: tokio::time::Interval,
) {
    loop {
        ticks.tick().await;
        if senders.iter().all(|(_, sender)| sender.is_closed()) {
            tracing::debug!("no secret handle left; Key Vault refresh stops");
            return;
        }
        for (secret, sender) in &senders {
            match client.read(secret).await {
                Ok(value) => {
                    let rotated = sender.send_if_modified(|current| {
                        let changed = current.expose_secret() != value.expose_secret();
                        if changed {
                            *current = value;
                        }
                        changed
                    });
                    if rotated {
                        tracing::info!(
                            secret.name = %secret.name,
                            secret.setting = secret.setting,
                            "Key Vault secret changed; using the new value"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    secret.name = %secret.name,
                    secret.setting = secret.setting,
                    error = %e,
                    "Key Vault refresh failed; keeping the last good value"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fixed_secret_never_changes_and_never_shows_its_value() {
        let mut secret = Secret::fixed("EVENT_SINK_PASSWORD", SecretString::from("hunter2"));
        assert_eq!(secret.current().expose_secret(), "hunter2");
        assert_eq!(secret.source(), "EVENT_SINK_PASSWORD");
        assert!(secret.take_changed().is_none());
        assert!(secret.changed().await.is_none());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn each_handle_sees_a_change_once() {
        let (sender, value) = watch::channel(SecretString::from("one"));
        let mut a = Secret {
            source: Arc::from("test"),
            value,
        };
        let mut b = a.clone();
        sender.send_replace(SecretString::from("two"));
        assert_eq!(a.current().expose_secret(), "two");
        assert_eq!(a.take_changed().unwrap().expose_secret(), "two");
        assert!(a.take_changed().is_none());
        // The clone tracks its own view.
        assert_eq!(b.changed().await.unwrap().expose_secret(), "two");
        assert!(b.take_changed().is_none());
    }
}
