//! The Key Vault client: the official `azure_security_keyvault_secrets::SecretClient` with
//! `azure_identity::ManagedIdentityCredential`, and the mapping of its errors onto
//! [`SecretsError`].
//!
//! The client authenticates the way Key Vault asks (docs/azure.md §8 Key Vault): its first
//! request goes out without a token, the vault answers 401 with a `WWW-Authenticate`
//! challenge naming the resource, and the client gets a token for that resource from the
//! identity endpoint and retries. REST reference:
//! learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RetryOptions, StatusCode, Transport,
};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use secrecy::SecretString;

use super::SecretsError;
use crate::azure_sdk::describe;
use crate::config::{KeyVaultSettings, VaultSecret};

/// Options of the Key Vault and identity clients that only tests change.
#[derive(Clone, Default)]
pub struct VaultOptions {
    /// Replaces the HTTP client of both clients (a test trusts its own certificate).
    pub transport: Option<Transport>,
    /// Accept a challenge whose resource is not a parent domain of the vault's host. The SDK
    /// checks it by default so a token is never sent to a look-alike host; a fake vault on
    /// 127.0.0.1 cannot pass that check. Never set in production.
    pub skip_challenge_resource_check: bool,
}

/// A `SecretClient` for one vault.
pub(super) struct VaultClient {
    client: SecretClient,
    /// The vault URL, for messages.
    vault: String,
}

impl VaultClient {
    /// Build the credential and the client (no I/O: the identity source is chosen from the
    /// process environment, `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` on App Service).
    pub(super) fn connect(
        settings: &KeyVaultSettings,
        options: VaultOptions,
    ) -> Result<Self, SecretsError> {
        let vault = settings.url.to_string();
        let client_error = |e: azure_core::Error| SecretsError::Client {
            vault: vault.clone(),
            detail: describe(&e),
        };
        let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: settings.client_id.clone().map(UserAssignedId::ClientId),
            client_options: ClientOptions {
                transport: options.transport.clone(),
                retry: retry_options(),
                ..ClientOptions::default()
            },
        }))
        .map_err(client_error)?;
        let credential: Arc<dyn TokenCredential> = credential;
        let client = SecretClient::new(
            settings.url.as_str(),
            credential,
            Some(SecretClientOptions {
                client_options: ClientOptions {
                    transport: options.transport,
                    retry: retry_options(),
                    ..ClientOptions::default()
                },
                verify_challenge_resource: Some(!options.skip_challenge_resource_check),
                ..SecretClientOptions::default()
            }),
        )
        .map_err(client_error)?;
        Ok(Self { client, vault })
    }

    /// The latest version of `secret`.
    pub(super) async fn read(&self, secret: &VaultSecret) -> Result<SecretString, SecretsError> {
        let vault = || self.vault.clone();
        let name = || secret.name.clone();
        let model = self
            .client
            .get_secret(&secret.name, None)
            .await
            .and_then(|response| response.into_model())
            .map_err(|e| classify(&e, vault(), name(), secret.setting))?;
        match model.value {
            Some(value) if !value.is_empty() => Ok(SecretString::from(value)),
            _ => Err(SecretsError::Empty {
                vault: vault(),
                name: name(),
            }),
        }
    }
}

/// A few quick retries, then an answer: at start a down vault should become a clear error in
/// seconds (the Functions host waits at most a minute for the handler), and a refresh that
/// fails is simply tried again at the next interval.
fn retry_options() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_retries: 3,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(2),
    })
}

/// Classify an SDK error by what an operator can do about it.
fn classify(e: &azure_core::Error, vault: String, name: String, setting: &str) -> SecretsError {
    let detail = describe(e);
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } => match *status {
            StatusCode::NotFound => SecretsError::NotFound {
                vault,
                name,
                setting: setting.to_owned(),
            },
            StatusCode::Unauthorized | StatusCode::Forbidden => SecretsError::Denied {
                vault,
                name,
                detail,
            },
            status
                if u16::from(status) >= 500
                    || matches!(
                        status,
                        StatusCode::RequestTimeout | StatusCode::TooManyRequests
                    ) =>
            {
                SecretsError::Unavailable {
                    vault,
                    name,
                    detail,
                }
            }
            _ => SecretsError::Other {
                vault,
                name,
                detail,
            },
        },
        ErrorKind::Credential => SecretsError::Identity {
            vault,
            name,
            detail,
        },
        ErrorKind::Connection | ErrorKind::Io => SecretsError::Unavailable {
            vault,
            name,
            detail,
        },
        _ => SecretsError::Other {
            vault,
            name,
            detail,
        },
    }
}
