//! Azure Storage plumbing shared by the queues ([`crate::queue`]) and the per-call allocation
//! records ([`crate::locks`]): they live in one account and reach it the same way, so the
//! endpoint choice, the authentication (Shared Key from a connection string, or the managed
//! identity), the SDK retry policy and the classes of storage errors are written once, here.
//!
//! The official SDK crates take only a `TokenCredential`; account keys are signed by
//! [`shared_key::SharedKeyPolicy`], added to the client's per-try policies.

pub(crate) mod shared_key;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport, Url};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use secrecy::ExposeSecret as _;

use self::shared_key::SharedKeyPolicy;
use crate::azure_sdk::describe;
use crate::config::{
    STORAGE_BLOB_SERVICE_URI, STORAGE_CONNECTION, STORAGE_QUEUE_SERVICE_URI, StorageSettings,
};
use crate::telemetry::dependency::StoragePolicy;

/// The storage services this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Queue,
    Blob,
}

/// What a client of one service needs: where it is, how requests are authenticated, and the
/// setting an error should name.
pub(crate) struct Access {
    /// The service URL, without a trailing slash.
    pub(crate) endpoint: Url,
    /// The managed identity, or `None` when requests are signed with the account key.
    pub(crate) credential: Option<Arc<dyn TokenCredential>>,
    /// The Shared Key signer, when there is an account key.
    per_try_policies: Vec<Arc<dyn Policy>>,
    /// The setting the endpoint and credentials come from.
    pub(crate) setting: &'static str,
    /// Which service: how the telemetry names its requests.
    service: Service,
    transport: Option<Transport>,
}

impl Access {
    /// How `settings` reach `service`. `transport` replaces the HTTP client (of the SDK client
    /// and of the managed-identity credential), for tests that trust a test certificate;
    /// production passes `None`. The error names the setting.
    pub(crate) fn new(
        settings: &StorageSettings,
        service: Service,
        transport: Option<Transport>,
    ) -> Result<Self, String> {
        match settings {
            StorageSettings::ConnectionString {
                account,
                key,
                queue_endpoint,
                blob_endpoint,
            } => Ok(Self {
                endpoint: match service {
                    Service::Queue => queue_endpoint.clone(),
                    Service::Blob => blob_endpoint.clone(),
                },
                credential: None,
                per_try_policies: vec![Arc::new(SharedKeyPolicy::new(
                    account.as_str(),
                    key.expose_secret(),
                ))],
                setting: STORAGE_CONNECTION,
                service,
                transport,
            }),
            StorageSettings::ManagedIdentity {
                queue_service_uri,
                blob_service_uri,
                client_id,
            } => {
                let (endpoint, setting) = match service {
                    Service::Queue => (queue_service_uri, STORAGE_QUEUE_SERVICE_URI),
                    Service::Blob => (blob_service_uri, STORAGE_BLOB_SERVICE_URI),
                };
                let credential =
                    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                        client_options: ClientOptions {
                            transport: transport.clone(),
                            ..ClientOptions::default()
                        },
                    }))
                    .map_err(|e| {
                        format!(
                            "{setting}: cannot set up the managed identity: {}",
                            describe(&e)
                        )
                    })?;
                let credential: Arc<dyn TokenCredential> = credential;
                Ok(Self {
                    endpoint: endpoint.clone(),
                    credential: Some(credential),
                    per_try_policies: Vec::new(),
                    setting,
                    service,
                    transport,
                })
            }
            StorageSettings::InMemory => Err("in-memory settings have no Azure client".to_owned()),
        }
    }

    /// Client options with `retry`, the transport, and the per-try policies: first the
    /// dependency telemetry (each attempt, retries included, is one storage dependency, timed
    /// around the signing and the exchange), then the Shared Key signer.
    pub(crate) fn client_options(&self, retry: RetryOptions) -> ClientOptions {
        let mut per_try_policies: Vec<Arc<dyn Policy>> =
            vec![StoragePolicy::new(self.service, &self.endpoint)];
        per_try_policies.extend(self.per_try_policies.iter().cloned());
        ClientOptions {
            retry,
            transport: self.transport.clone(),
            per_try_policies,
            ..ClientOptions::default()
        }
    }
}

/// Whether `name` is a valid queue or container name (the two follow the same rules): 3–63 of
/// `a-z`, `0-9` and `-`, starting and ending with a letter or digit, no `--`
/// (learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata and
/// naming-and-referencing-containers--blobs--and-metadata).
pub(crate) fn is_storage_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !name.contains("--")
}

/// Few, quick retries: the callers (an HTTP request waiting for a room, a timer) prefer a
/// fast failure and their own next attempt over the SDK's default minute of retrying.
pub(crate) fn retry_options() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: azure_core::time::Duration::milliseconds(200),
        max_retries: 3,
        max_total_elapsed: azure_core::time::Duration::seconds(10),
        max_delay: azure_core::time::Duration::seconds(2),
    })
}

/// The service's `x-ms-error-code`, when the error is an HTTP response.
pub(crate) fn error_code(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// Whether a failure says "try again later" rather than "this request is wrong": a network
/// failure, a timeout, throttling, a 5xx, or no token from the identity endpoint.
pub(crate) fn is_unavailable(e: &azure_core::Error) -> bool {
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } => {
            let code = u16::from(*status);
            code >= 500 || code == 408 || code == 429
        }
        ErrorKind::Connection | ErrorKind::Io | ErrorKind::Credential => true,
        _ => false,
    }
}
