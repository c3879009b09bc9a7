//! Settings of the secret store: whether secrets come from Azure Key Vault (through the
//! managed identity) or from the environment, and under which Key Vault names.
//!
//! With `KEY_VAULT_URL` set, the secret settings (`PEXIP_PRIVATE_KEY`, `PEXIP_PASSWORD`,
//! `EVENT_SINK_PASSWORD`) are read from the vault by [`crate::secrets::SecretStore`] and must
//! not also be set in the environment: two sources for one credential would leave an operator
//! guessing which one is in use. Without it, nothing here applies and the values come from the
//! environment as the other settings modules read them.

use std::time::Duration;

use url::Url;

use super::storage::STORAGE_CLIENT_ID;
use super::{ConfigError, Env};

/// The vault's URL, `https://<vault>.vault.azure.net/`. Selects the Key Vault backend.
pub const KEY_VAULT_URL: &str = "KEY_VAULT_URL";
/// Client id of a user-assigned managed identity for Key Vault.
pub const KEY_VAULT_CLIENT_ID: &str = "KEY_VAULT_CLIENT_ID";
/// Seconds between two reads of every secret (default 300).
pub const KEY_VAULT_REFRESH_SECONDS: &str = "KEY_VAULT_REFRESH_SECONDS";
/// Key Vault name of the Pexip OAuth2 private key (default `pexip-jwt-key`).
pub const KV_SECRET_PEXIP_PRIVATE_KEY: &str = "KV_SECRET_PEXIP_PRIVATE_KEY";
/// Key Vault name of the Pexip Basic password (default `pexip-password`).
pub const KV_SECRET_PEXIP_PASSWORD: &str = "KV_SECRET_PEXIP_PASSWORD";
/// Key Vault name of the event sink's Basic password (default `event-sink-password`).
pub const KV_SECRET_EVENT_SINK_PASSWORD: &str = "KV_SECRET_EVENT_SINK_PASSWORD";

/// The environment variable each vault secret stands in for.
pub const PEXIP_PRIVATE_KEY: &str = "PEXIP_PRIVATE_KEY";
/// See [`PEXIP_PRIVATE_KEY`].
pub const PEXIP_PASSWORD: &str = "PEXIP_PASSWORD";
/// See [`PEXIP_PRIVATE_KEY`].
pub const EVENT_SINK_PASSWORD: &str = "EVENT_SINK_PASSWORD";

/// Default of [`KEY_VAULT_REFRESH_SECONDS`].
pub const DEFAULT_REFRESH_SECONDS: u64 = 300;

/// One secret read from the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSecret {
    /// The setting whose value it supplies (`PEXIP_PRIVATE_KEY`, ...).
    pub setting: &'static str,
    /// Its name in the vault.
    pub name: String,
}

/// Where Key Vault is and what to read from it.
#[derive(Debug, Clone)]
pub struct KeyVaultSettings {
    /// `KEY_VAULT_URL`: `https://<vault>.vault.azure.net/` (the SDK refuses plain http).
    pub url: Url,
    /// `KEY_VAULT_CLIENT_ID`, else `AzureWebJobsStorage__clientId`: a user-assigned identity's
    /// client id; `None` means the system-assigned identity.
    pub client_id: Option<String>,
    /// `KEY_VAULT_REFRESH_SECONDS` (default 300, 1–86,400): how often every secret is read
    /// again, so a rotated value is used without a restart.
    pub refresh_interval: Duration,
    /// The secrets this configuration needs: the Pexip key with `PEXIP_CLIENT_ID`, the Pexip
    /// password with `PEXIP_USERNAME`, and always the event sink's password.
    pub secrets: Vec<VaultSecret>,
}

impl KeyVaultSettings {
    /// `None` without `KEY_VAULT_URL`. With it, the vault settings, and an error naming any
    /// secret setting that is also given in the environment.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = env.get(KEY_VAULT_URL) else {
            return Ok(None);
        };
        let url = parse_vault_url(raw)?;
        let client_id = env
            .get(KEY_VAULT_CLIENT_ID)
            .or_else(|| env.get(STORAGE_CLIENT_ID))
            .map(str::to_owned);
        // Up to a day: a rotated secret must reach the service without a restart.
        let refresh_interval = env.seconds_within(
            KEY_VAULT_REFRESH_SECONDS,
            DEFAULT_REFRESH_SECONDS,
            1..=86_400,
        )?;

        let mut wanted = Vec::new();
        if env.get("PEXIP_CLIENT_ID").is_some() {
            wanted.push((
                PEXIP_PRIVATE_KEY,
                KV_SECRET_PEXIP_PRIVATE_KEY,
                "pexip-jwt-key",
            ));
        }
        if env.get("PEXIP_USERNAME").is_some() {
            wanted.push((PEXIP_PASSWORD, KV_SECRET_PEXIP_PASSWORD, "pexip-password"));
        }
        wanted.push((
            EVENT_SINK_PASSWORD,
            KV_SECRET_EVENT_SINK_PASSWORD,
            "event-sink-password",
        ));
        for setting in [
            PEXIP_PRIVATE_KEY,
            "PEXIP_PRIVATE_KEY_FILE",
            PEXIP_PASSWORD,
            EVENT_SINK_PASSWORD,
        ] {
            if env.get(setting).is_some() {
                return Err(ConfigError::invalid(
                    setting,
                    format!("must not be set with {KEY_VAULT_URL}: the value comes from Key Vault"),
                ));
            }
        }
        let secrets = wanted
            .into_iter()
            .map(|(setting, name_setting, default)| {
                let name = env.get(name_setting).unwrap_or(default);
                if !is_secret_name(name) {
                    return Err(ConfigError::invalid(
                        name_setting,
                        "a Key Vault secret name is 1-127 letters, digits and dashes",
                    ));
                }
                Ok(VaultSecret {
                    setting,
                    name: name.to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Self {
            url,
            client_id,
            refresh_interval,
            secrets,
        }))
    }
}

/// An https URL with a host and nothing after the path, kept with a trailing slash (the form
/// the portal shows; the SDK appends `/secrets/...` either way).
fn parse_vault_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::invalid(KEY_VAULT_URL, e))?;
    if url.scheme() != "https" {
        return Err(ConfigError::invalid(
            KEY_VAULT_URL,
            "must be an https URL (Key Vault refuses tokens over plain http)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(KEY_VAULT_URL, "the URL has no host"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
    {
        return Err(ConfigError::invalid(
            KEY_VAULT_URL,
            "expected https://<vault>.vault.azure.net/ with no path, query or credentials",
        ));
    }
    Ok(url)
}

/// Key Vault object names: 1-127 characters, ASCII letters, digits and dashes. Checked here
/// because the SDK puts the name into the request path as given.
fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            (KEY_VAULT_URL, "https://kv-pexip.vault.azure.net"),
            ("PEXIP_CLIENT_ID", "client-1"),
            ("EVENT_SINK_USERNAME", "pexip"),
        ]
    }

    #[test]
    fn without_a_vault_url_secrets_come_from_the_environment() {
        let env = Env::from_pairs([(PEXIP_PRIVATE_KEY, "pem"), (EVENT_SINK_PASSWORD, "pw")]);
        assert!(KeyVaultSettings::from_env(&env).unwrap().is_none());
    }

    #[test]
    fn defaults_name_the_secrets_an_oauth2_deployment_needs() {
        let kv = KeyVaultSettings::from_env(&Env::from_pairs(base()))
            .unwrap()
            .unwrap();
        assert_eq!(kv.url.as_str(), "https://kv-pexip.vault.azure.net/");
        assert_eq!(kv.client_id, None);
        assert_eq!(kv.refresh_interval, Duration::from_secs(300));
        assert_eq!(
            kv.secrets,
            [
                VaultSecret {
                    setting: PEXIP_PRIVATE_KEY,
                    name: "pexip-jwt-key".into()
                },
                VaultSecret {
                    setting: EVENT_SINK_PASSWORD,
                    name: "event-sink-password".into()
                },
            ]
        );
    }

    #[test]
    fn basic_auth_reads_the_pexip_password_under_its_configured_name() {
        let env = Env::from_pairs([
            (KEY_VAULT_URL, "https://kv.vault.azure.net/"),
            ("PEXIP_USERNAME", "admin"),
            (KV_SECRET_PEXIP_PASSWORD, "mgr-admin-pw"),
            (KV_SECRET_EVENT_SINK_PASSWORD, "sink-pw-2"),
            (KEY_VAULT_REFRESH_SECONDS, "60"),
        ]);
        let kv = KeyVaultSettings::from_env(&env).unwrap().unwrap();
        let names: Vec<(&str, &str)> = kv
            .secrets
            .iter()
            .map(|s| (s.setting, s.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (PEXIP_PASSWORD, "mgr-admin-pw"),
                (EVENT_SINK_PASSWORD, "sink-pw-2")
            ]
        );
        assert_eq!(kv.refresh_interval, Duration::from_secs(60));
    }

    #[test]
    fn the_identity_falls_back_to_the_storage_client_id() {
        let mut pairs = base();
        pairs.push((STORAGE_CLIENT_ID, "storage-mi"));
        let kv = KeyVaultSettings::from_env(&Env::from_pairs(pairs.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(kv.client_id.as_deref(), Some("storage-mi"));
        pairs.push((KEY_VAULT_CLIENT_ID, "vault-mi"));
        let kv = KeyVaultSettings::from_env(&Env::from_pairs(pairs))
            .unwrap()
            .unwrap();
        assert_eq!(kv.client_id.as_deref(), Some("vault-mi"));
    }

    #[test]
    fn bad_values_and_duplicate_sources_name_the_variable() {
        let cases = [
            (KEY_VAULT_URL, "http://kv.vault.azure.net/"),
            (KEY_VAULT_URL, "kv.vault.azure.net"),
            (KEY_VAULT_URL, "https://kv.vault.azure.net/secrets/x"),
            (KEY_VAULT_URL, "https://kv.vault.azure.net/?a=b"),
            (KEY_VAULT_REFRESH_SECONDS, "0"),
            (KEY_VAULT_REFRESH_SECONDS, "soon"),
            (KV_SECRET_PEXIP_PRIVATE_KEY, "../keys/other"),
            (KV_SECRET_EVENT_SINK_PASSWORD, "a_b"),
            (PEXIP_PRIVATE_KEY, "-----BEGIN PRIVATE KEY-----"),
            ("PEXIP_PRIVATE_KEY_FILE", "/tmp/key.pem"),
            (EVENT_SINK_PASSWORD, "pw"),
        ];
        for (name, value) in cases {
            let mut pairs = base();
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = KeyVaultSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{name} is invalid")),
                "{name}={value}: {err}"
            );
            // Refusals never echo a secret value back.
            assert!(
                !err.to_string().contains("BEGIN PRIVATE KEY"),
                "{name}: {err}"
            );
        }
    }
}
