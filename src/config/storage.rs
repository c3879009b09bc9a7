//! Storage settings: which Azure Storage account holds the queues and the per-call allocation
//! records (blobs), and how we authenticate to it, read the way the Azure Functions host reads
//! its own storage setting.
//!
//! - `AzureWebJobsStorage`: a connection string, either `UseDevelopmentStorage=true` (Azurite)
//!   or `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…[;QueueEndpoint=…][;BlobEndpoint=…]
//!   [;EndpointSuffix=…]`. Requests are then signed with the account key (Shared Key).
//! - `AzureWebJobsStorage__queueServiceUri` with `AzureWebJobsStorage__blobServiceUri` (or
//!   `AzureWebJobsStorage__accountName` alone), plus `AzureWebJobsStorage__clientId` for a
//!   user-assigned identity: the Functions identity-based convention, authenticated with the
//!   managed identity. The host itself needs the blob service of this account (timer and
//!   singleton locks), so both URIs are always at hand where it runs.
//!
//! As in the Functions host, a plain `AzureWebJobsStorage` value wins over the `__` settings.
//! Nothing set means "no storage configured" (`None`); `dev` then uses in-memory queues and
//! `serve` refuses to start. Error messages name the setting and never echo the account key.

use base64::Engine as _;
use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Env};

/// The connection-string setting the Functions host itself uses.
pub const STORAGE_CONNECTION: &str = "AzureWebJobsStorage";
/// Identity-based connection: the queue service URL.
pub const STORAGE_QUEUE_SERVICE_URI: &str = "AzureWebJobsStorage__queueServiceUri";
/// Identity-based connection: the blob service URL (the allocation records live there).
pub const STORAGE_BLOB_SERVICE_URI: &str = "AzureWebJobsStorage__blobServiceUri";
/// Identity-based connection: the account name (both URLs are derived for public Azure).
pub const STORAGE_ACCOUNT_NAME: &str = "AzureWebJobsStorage__accountName";
/// Identity-based connection: the client id of a user-assigned managed identity.
pub const STORAGE_CLIENT_ID: &str = "AzureWebJobsStorage__clientId";

/// Azurite's well-known development account (public, documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented by Microsoft).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default queue endpoint (no trailing slash: the SDK appends the queue name).
pub const DEV_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";
/// Azurite's default blob endpoint (no trailing slash: the container name is appended).
pub const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Where the queues and the allocation records live and how requests are authenticated.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// An account key from a connection string; requests are signed with Shared Key.
    ConnectionString {
        /// The storage account name (the Shared Key signer's identity).
        account: String,
        /// The base64 account key.
        key: SecretString,
        /// The queue service URL, without a trailing slash
        /// (e.g. `http://127.0.0.1:10001/devstoreaccount1`).
        queue_endpoint: Url,
        /// The blob service URL, without a trailing slash
        /// (e.g. `http://127.0.0.1:10000/devstoreaccount1`).
        blob_endpoint: Url,
    },
    /// Microsoft Entra ID tokens from the managed identity (production).
    ManagedIdentity {
        /// The https queue service URL, without a trailing slash.
        queue_service_uri: Url,
        /// The https blob service URL, without a trailing slash.
        blob_service_uri: Url,
        /// A user-assigned identity's client id; `None` for the system-assigned identity.
        client_id: Option<String>,
    },
    /// Process-local queues: for `dev` and tests only. Never read from the environment;
    /// `serve` refuses it.
    InMemory,
}

impl StorageSettings {
    /// Read the storage settings; `Ok(None)` when none of them is set.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        if let Some(raw) = env.get(STORAGE_CONNECTION) {
            return parse_connection_string(raw).map(Some);
        }
        let client_id = env.get(STORAGE_CLIENT_ID).map(str::to_owned);
        let queue_uri = env.get(STORAGE_QUEUE_SERVICE_URI);
        let blob_uri = env.get(STORAGE_BLOB_SERVICE_URI);
        if queue_uri.is_some() || blob_uri.is_some() {
            // Both or neither, as the Functions host reads them: naming only one service
            // leaves the other without an endpoint.
            let queue_service_uri = https_endpoint(
                queue_uri.ok_or_else(|| ConfigError::missing(STORAGE_QUEUE_SERVICE_URI))?,
                STORAGE_QUEUE_SERVICE_URI,
            )?;
            let blob_service_uri = https_endpoint(
                blob_uri.ok_or_else(|| ConfigError::missing(STORAGE_BLOB_SERVICE_URI))?,
                STORAGE_BLOB_SERVICE_URI,
            )?;
            return Ok(Some(Self::ManagedIdentity {
                queue_service_uri,
                blob_service_uri,
                client_id,
            }));
        }
        if let Some(name) = env.get(STORAGE_ACCOUNT_NAME) {
            if !is_account_name(name) {
                return Err(ConfigError::invalid(
                    STORAGE_ACCOUNT_NAME,
                    "a storage account name is 3 to 24 lowercase letters and digits",
                ));
            }
            let derived = |service: &str| {
                parse_endpoint(
                    &format!("https://{name}.{service}.core.windows.net"),
                    STORAGE_ACCOUNT_NAME,
                )
            };
            return Ok(Some(Self::ManagedIdentity {
                queue_service_uri: derived("queue")?,
                blob_service_uri: derived("blob")?,
                client_id,
            }));
        }
        if client_id.is_some() {
            // A client id alone is a half-finished identity setup: say what is missing.
            return Err(ConfigError::missing(STORAGE_QUEUE_SERVICE_URI));
        }
        Ok(None)
    }

    /// The settings for Azurite's development account at `queue_endpoint` and
    /// `blob_endpoint` (what `UseDevelopmentStorage=true` means, on other ports).
    pub fn development(queue_endpoint: Url, blob_endpoint: Url) -> Self {
        Self::ConnectionString {
            account: DEV_ACCOUNT.to_owned(),
            key: SecretString::from(DEV_ACCOUNT_KEY),
            queue_endpoint,
            blob_endpoint,
        }
    }

    /// A short description for start-up logs: the backend and endpoint, never a key.
    pub fn describe(&self) -> String {
        match self {
            Self::ConnectionString {
                account,
                queue_endpoint,
                blob_endpoint,
                ..
            } => {
                format!("shared key for account {account} at {queue_endpoint} and {blob_endpoint}")
            }
            Self::ManagedIdentity {
                queue_service_uri,
                blob_service_uri,
                client_id,
            } => match client_id {
                Some(id) => {
                    format!("managed identity {id} at {queue_service_uri} and {blob_service_uri}")
                }
                None => format!(
                    "system-assigned managed identity at {queue_service_uri} and {blob_service_uri}"
                ),
            },
            Self::InMemory => "in-memory queues and allocation records".to_owned(),
        }
    }
}

/// Parse a storage connection string. Keys are case-insensitive (as in the .NET SDK the
/// Functions host uses); unknown keys such as `TableEndpoint` are ignored.
fn parse_connection_string(raw: &str) -> Result<StorageSettings, ConfigError> {
    let invalid = |reason: &str| ConfigError::invalid(STORAGE_CONNECTION, reason);
    let mut dev = false;
    let mut account = None;
    let mut key = None;
    let mut protocol = None;
    let mut suffix = None;
    let mut queue_endpoint = None;
    let mut blob_endpoint = None;
    for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        // Split on the first '=' only: base64 keys end with '='.
        let Some((name, value)) = part.split_once('=') else {
            return Err(invalid(
                "expected Name=Value pairs separated by ';' (a connection string)",
            ));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "usedevelopmentstorage" => dev = value.eq_ignore_ascii_case("true"),
            "developmentstorageproxyuri" => {
                return Err(invalid("DevelopmentStorageProxyUri is not supported"));
            }
            "accountname" => account = Some(value),
            "accountkey" => key = Some(value),
            "defaultendpointsprotocol" => protocol = Some(value),
            "endpointsuffix" => suffix = Some(value),
            "queueendpoint" => queue_endpoint = Some(value),
            "blobendpoint" => blob_endpoint = Some(value),
            "sharedaccesssignature" => {
                return Err(invalid(
                    "SharedAccessSignature connection strings are not supported; \
                     use an account key or a managed identity",
                ));
            }
            _ => {}
        }
    }
    if dev {
        let url = |raw: &str| Url::parse(raw).map_err(|e| invalid(&e.to_string()));
        return Ok(StorageSettings::development(
            url(DEV_QUEUE_ENDPOINT)?,
            url(DEV_BLOB_ENDPOINT)?,
        ));
    }
    let account = account
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("AccountName is missing (or use UseDevelopmentStorage=true)"))?;
    if account.contains(['/', '?', '#', ' ']) {
        return Err(invalid(
            "AccountName contains characters an account name cannot",
        ));
    }
    let key = key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("AccountKey is missing"))?;
    if base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_or(true, |bytes| bytes.is_empty())
    {
        // Never echo the key, not even a fragment of it.
        return Err(invalid("AccountKey is not valid base64"));
    }
    let protocol = protocol.unwrap_or("https").to_ascii_lowercase();
    if protocol != "https" && protocol != "http" {
        return Err(invalid("DefaultEndpointsProtocol must be http or https"));
    }
    let suffix = suffix.unwrap_or("core.windows.net");
    // An explicit endpoint wins; otherwise it is derived from the account, as the SDKs do.
    let endpoint = |explicit: Option<&str>, service: &str| match explicit {
        Some(endpoint) => parse_endpoint(endpoint, STORAGE_CONNECTION),
        None => parse_endpoint(
            &format!("{protocol}://{account}.{service}.{suffix}"),
            STORAGE_CONNECTION,
        ),
    };
    Ok(StorageSettings::ConnectionString {
        account: account.to_owned(),
        key: SecretString::from(key.to_owned()),
        queue_endpoint: endpoint(queue_endpoint, "queue")?,
        blob_endpoint: endpoint(blob_endpoint, "blob")?,
    })
}

/// An identity-based service URL: https only (tokens are never sent over plain http).
fn https_endpoint(raw: &str, setting: &str) -> Result<Url, ConfigError> {
    let url = parse_endpoint(raw, setting)?;
    if url.scheme() != "https" {
        return Err(ConfigError::invalid(
            setting,
            "must be an https URL (tokens are never sent over plain http)",
        ));
    }
    Ok(url)
}

/// Parse a queue or blob service URL: http(s), no query or fragment, no trailing slash. The
/// SDKs append the queue or container name as a path segment, so `…/devstoreaccount1/` would
/// address `…/devstoreaccount1//queue`.
fn parse_endpoint(raw: &str, setting: &str) -> Result<Url, ConfigError> {
    let mut url = Url::parse(raw)
        .map_err(|e| ConfigError::invalid(setting, format!("the endpoint is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(ConfigError::invalid(
            setting,
            "the endpoint must be an http or https URL",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::invalid(setting, "the endpoint has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            setting,
            "the endpoint must not carry a query or fragment",
        ));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

/// Azure storage account names: 3–24 lowercase letters and digits.
fn is_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<StorageSettings>, ConfigError> {
        StorageSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    fn connection(raw: &str) -> Result<StorageSettings, ConfigError> {
        read(&[(STORAGE_CONNECTION, raw)]).map(|s| s.expect("settings"))
    }

    #[test]
    fn nothing_set_means_no_storage_configured() {
        assert!(read(&[]).unwrap().is_none());
    }

    #[test]
    fn use_development_storage_means_azurite_with_the_well_known_account() {
        let StorageSettings::ConnectionString {
            account,
            key,
            queue_endpoint,
            blob_endpoint,
        } = connection("UseDevelopmentStorage=true").unwrap()
        else {
            panic!("expected a connection string");
        };
        assert_eq!(account, DEV_ACCOUNT);
        assert_eq!(key.expose_secret(), DEV_ACCOUNT_KEY);
        assert_eq!(queue_endpoint.as_str(), DEV_QUEUE_ENDPOINT);
        assert_eq!(blob_endpoint.as_str(), DEV_BLOB_ENDPOINT);
    }

    #[test]
    fn a_full_connection_string_with_explicit_endpoints_loses_their_trailing_slashes() {
        let raw = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};\
             QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1/;\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;"
        );
        let StorageSettings::ConnectionString {
            account,
            key,
            queue_endpoint,
            blob_endpoint,
        } = connection(&raw).unwrap()
        else {
            panic!("expected a connection string");
        };
        assert_eq!(account, "devstoreaccount1");
        assert_eq!(key.expose_secret(), DEV_ACCOUNT_KEY);
        assert_eq!(
            queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(
            blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
    }

    #[test]
    fn an_endpoint_is_derived_from_protocol_account_and_suffix() {
        let raw = format!(
            "defaultendpointsprotocol=https;accountname=acct1;accountkey={DEV_ACCOUNT_KEY};\
             EndpointSuffix=core.usgovcloudapi.net"
        );
        let StorageSettings::ConnectionString {
            queue_endpoint,
            blob_endpoint,
            ..
        } = connection(&raw).unwrap()
        else {
            panic!("expected a connection string");
        };
        assert_eq!(
            queue_endpoint.as_str(),
            "https://acct1.queue.core.usgovcloudapi.net/"
        );
        assert_eq!(
            blob_endpoint.as_str(),
            "https://acct1.blob.core.usgovcloudapi.net/"
        );
    }

    #[test]
    fn malformed_connection_strings_give_one_line_naming_the_setting_without_the_key() {
        let secret_key = "c2VjcmV0LWtleS1ieXRlcw==";
        let cases = [
            ("just-a-word", "Name=Value pairs"),
            (
                "AccountKey=c2VjcmV0LWtleS1ieXRlcw==",
                "AccountName is missing",
            ),
            ("AccountName=acct1", "AccountKey is missing"),
            (
                "AccountName=acct1;AccountKey=not base64!!",
                "not valid base64",
            ),
            (
                "AccountName=acct1;AccountKey=c2VjcmV0LWtleS1ieXRlcw==;QueueEndpoint=nope",
                "not a URL",
            ),
            (
                "AccountName=acct1;AccountKey=c2VjcmV0LWtleS1ieXRlcw==;QueueEndpoint=ftp://x/y",
                "http or https",
            ),
            (
                "AccountName=acct1;AccountKey=c2VjcmV0LWtleS1ieXRlcw==;BlobEndpoint=http://h/x?y=1",
                "query or fragment",
            ),
            (
                "AccountName=acct1;AccountKey=c2VjcmV0LWtleS1ieXRlcw==;DefaultEndpointsProtocol=gopher",
                "http or https",
            ),
            (
                "AccountName=acct1;SharedAccessSignature=sv=2020&sig=abc",
                "not supported",
            ),
        ];
        for (raw, expected) in cases {
            let err = connection(raw).unwrap_err();
            let line = err.to_string();
            assert!(
                line.starts_with("AzureWebJobsStorage is invalid: "),
                "{raw:?} -> {line}"
            );
            assert!(line.contains(expected), "{raw:?} -> {line}");
            assert!(!line.contains('\n'), "{raw:?} -> {line}");
            assert!(!line.contains(secret_key), "{raw:?} leaked the key: {line}");
        }
    }

    #[test]
    fn managed_identity_reads_the_functions_identity_convention() {
        let settings = read(&[
            (
                STORAGE_QUEUE_SERVICE_URI,
                "https://acct1.queue.core.windows.net/",
            ),
            (
                STORAGE_BLOB_SERVICE_URI,
                "https://acct1.blob.core.windows.net/",
            ),
            (STORAGE_CLIENT_ID, "1a2b3c"),
        ])
        .unwrap()
        .unwrap();
        let StorageSettings::ManagedIdentity {
            queue_service_uri,
            blob_service_uri,
            client_id,
        } = settings
        else {
            panic!("expected managed identity");
        };
        assert_eq!(
            queue_service_uri.as_str(),
            "https://acct1.queue.core.windows.net/"
        );
        assert_eq!(
            blob_service_uri.as_str(),
            "https://acct1.blob.core.windows.net/"
        );
        assert_eq!(client_id.as_deref(), Some("1a2b3c"));
    }

    #[test]
    fn one_service_uri_without_the_other_names_the_missing_setting() {
        let queue_only = read(&[(
            STORAGE_QUEUE_SERVICE_URI,
            "https://acct1.queue.core.windows.net",
        )]);
        assert_eq!(
            queue_only.unwrap_err(),
            ConfigError::missing(STORAGE_BLOB_SERVICE_URI)
        );
        let blob_only = read(&[(
            STORAGE_BLOB_SERVICE_URI,
            "https://acct1.blob.core.windows.net",
        )]);
        assert_eq!(
            blob_only.unwrap_err(),
            ConfigError::missing(STORAGE_QUEUE_SERVICE_URI)
        );
    }

    #[test]
    fn an_account_name_alone_means_the_public_cloud_endpoints() {
        let settings = read(&[(STORAGE_ACCOUNT_NAME, "acct1")]).unwrap().unwrap();
        let StorageSettings::ManagedIdentity {
            queue_service_uri,
            blob_service_uri,
            client_id,
        } = settings
        else {
            panic!("expected managed identity");
        };
        assert_eq!(
            queue_service_uri.as_str(),
            "https://acct1.queue.core.windows.net/"
        );
        assert_eq!(
            blob_service_uri.as_str(),
            "https://acct1.blob.core.windows.net/"
        );
        assert_eq!(client_id, None);
    }

    #[test]
    fn managed_identity_refuses_plain_http() {
        let err = read(&[
            (
                STORAGE_QUEUE_SERVICE_URI,
                "http://acct1.queue.core.windows.net",
            ),
            (
                STORAGE_BLOB_SERVICE_URI,
                "https://acct1.blob.core.windows.net",
            ),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AzureWebJobsStorage__queueServiceUri is invalid"),
            "{err}"
        );
        let err = read(&[
            (
                STORAGE_QUEUE_SERVICE_URI,
                "https://acct1.queue.core.windows.net",
            ),
            (
                STORAGE_BLOB_SERVICE_URI,
                "http://acct1.blob.core.windows.net",
            ),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("AzureWebJobsStorage__blobServiceUri is invalid"),
            "{err}"
        );
    }

    #[test]
    fn a_client_id_without_an_endpoint_names_the_missing_setting() {
        let err = read(&[(STORAGE_CLIENT_ID, "1a2b3c")]).unwrap_err();
        assert_eq!(err, ConfigError::missing(STORAGE_QUEUE_SERVICE_URI));
    }

    #[test]
    fn a_connection_string_wins_over_identity_settings_as_in_the_functions_host() {
        let settings = read(&[
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (
                STORAGE_QUEUE_SERVICE_URI,
                "https://acct1.queue.core.windows.net",
            ),
        ])
        .unwrap()
        .unwrap();
        assert!(matches!(settings, StorageSettings::ConnectionString { .. }));
    }

    #[test]
    fn debug_output_and_descriptions_never_show_the_key() {
        let settings = connection("UseDevelopmentStorage=true").unwrap();
        assert!(!format!("{settings:?}").contains(DEV_ACCOUNT_KEY));
        assert!(!settings.describe().contains(DEV_ACCOUNT_KEY));
    }
}
