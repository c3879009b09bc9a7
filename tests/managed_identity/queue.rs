//! The storage clients with a managed identity end to end: `ManagedIdentityCredential` gets a
//! token from the fake identity endpoint and the queue client (and the allocation records'
//! blob client) use it against Azurite in `--oauth basic` mode over https, with a certificate
//! made here. Each test prints
//! `queue-conformance: azurite ok <test>` for CI's count of queue tests run against Azurite.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pexip_sdk::config::{
    Env, STORAGE_BLOB_SERVICE_URI, STORAGE_CLIENT_ID, STORAGE_QUEUE_SERVICE_URI, StorageSettings,
};
use pexip_sdk::locks::{LockError, LockService, LockStore};
use pexip_sdk::queue::{Queue, QueueError, QueueService};
use testkit::azurite::{Azurite, report};
use testkit::identity::IdentityEndpoint;
use testkit::unique_queue_name;

/// The user-assigned identity the round trip uses.
const CLIENT_ID: &str = "mi-client-1";
/// A client id for which the fake endpoint issues a token for the wrong audience.
const WRONG_AUDIENCE_CLIENT_ID: &str = "mi-client-wrong-audience";
/// The resource storage tokens are for.
const STORAGE_RESOURCE: &str = "https://storage.azure.com";

/// Azurite over https with bearer tokens accepted, and a client transport that trusts the
/// certificate made for it.
struct OauthAzurite {
    azurite: Azurite,
    transport: azure_core::http::Transport,
    dir: PathBuf,
}

impl OauthAzurite {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("pexip-sdk-mi-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("test certificate");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
        std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
        let azurite =
            Azurite::start_https_oauth(&cert_path, &key_path).expect("Azurite over https");
        let certificate =
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("certificate");
        let http = reqwest::Client::builder()
            .tls_certs_only([certificate])
            .build()
            .expect("https client");
        Self {
            azurite,
            transport: azure_core::http::Transport::new(Arc::new(http)),
            dir,
        }
    }

    /// The settings of the user-assigned identity `client_id`, read by config exactly as in
    /// production.
    fn settings_as(&self, client_id: &str) -> StorageSettings {
        let env = Env::from_pairs([
            (
                STORAGE_QUEUE_SERVICE_URI,
                self.azurite.queue_endpoint().as_str(),
            ),
            (
                STORAGE_BLOB_SERVICE_URI,
                self.azurite.blob_endpoint().as_str(),
            ),
            (STORAGE_CLIENT_ID, client_id),
        ]);
        let settings = StorageSettings::from_env(&env)
            .expect("storage settings")
            .expect("storage is configured");
        assert!(
            matches!(settings, StorageSettings::ManagedIdentity { .. }),
            "expected managed identity settings, got {}",
            settings.describe()
        );
        settings
    }

    /// A fresh queue, reached as `client_id`.
    fn queue_as(&self, client_id: &str) -> Queue {
        QueueService::connect_with(&self.settings_as(client_id), Some(self.transport.clone()))
            .expect("queue service")
            .queue(&unique_queue_name("identity"))
            .expect("queue name")
    }

    /// A fresh container of allocation records, reached as `client_id`.
    fn records_as(&self, client_id: &str) -> LockStore {
        LockService::connect_with(&self.settings_as(client_id), Some(self.transport.clone()))
            .expect("record service")
            .store(&unique_queue_name("identity"))
            .expect("container name")
    }
}

impl Drop for OauthAzurite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::main]
pub async fn managed_identity_tokens_from_the_identity_endpoint_authorize_queue_operations() {
    let azurite = OauthAzurite::start();
    let identity = IdentityEndpoint::start().await;
    let queue = azurite.queue_as(CLIENT_ID);

    queue.ensure_exists().await.expect("create");
    queue.send("room-mi", Duration::ZERO).await.expect("send");
    let got = queue
        .receive(1, Duration::from_secs(60))
        .await
        .expect("receive");
    let [message] = got.as_slice() else {
        panic!("expected one message, got {}", got.len());
    };
    assert_eq!(message.text, "room-mi");
    queue.delete(&message.receipt).await.expect("delete");
    assert_eq!(queue.approximate_count().await.expect("count"), 0);

    // The allocation records, the same way: a create-only write, then a read of it.
    let records = azurite.records_as(CLIENT_ID);
    records.ensure_exists().await.expect("container");
    let etag = records.create("call", b"{}").await.expect("create");
    let read = records
        .read("call")
        .await
        .expect("read")
        .expect("the record");
    assert_eq!(read.etag, etag);

    identity.assert_asked_only_for(STORAGE_RESOURCE, Some(CLIENT_ID));
    report(
        "queue-conformance: azurite ok managed_identity_tokens_from_the_identity_endpoint_authorize_queue_operations",
    );
}

#[tokio::main]
pub async fn a_token_for_another_audience_is_unauthorized() {
    let azurite = OauthAzurite::start();
    let identity = IdentityEndpoint::start_with_wrong_audience(&[(
        WRONG_AUDIENCE_CLIENT_ID,
        "https://vault.azure.net",
    )])
    .await;
    let queue = azurite.queue_as(WRONG_AUDIENCE_CLIENT_ID);

    let outcome = queue.ensure_exists().await;
    assert!(
        matches!(outcome, Err(QueueError::Unauthorized)),
        "expected Unauthorized, got {outcome:?}"
    );
    let records = azurite
        .records_as(WRONG_AUDIENCE_CLIENT_ID)
        .ensure_exists()
        .await;
    assert!(
        matches!(records, Err(LockError::Unauthorized)),
        "expected Unauthorized, got {records:?}"
    );

    identity.assert_asked_only_for(STORAGE_RESOURCE, Some(WRONG_AUDIENCE_CLIENT_ID));
    report("queue-conformance: azurite ok a_token_for_another_audience_is_unauthorized");
}
