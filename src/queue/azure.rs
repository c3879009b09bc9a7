//! The Azure Storage Queue backend on the official `azure_storage_queue` crate, and the
//! mapping of its errors onto [`QueueError`].
//!
//! Authentication comes from [`StorageSettings`] through [`crate::storage::Access`]: an account
//! key signs every request (plain http allowed, for Azurite), or the managed identity supplies
//! bearer tokens (the SDK then insists on https).
//!
//! REST reference: learn.microsoft.com/rest/api/storageservices/queue-service-rest-api.

use std::sync::Arc;

use azure_core::error::ErrorKind;
use azure_core::http::headers::HeaderName;
use azure_core::http::{RetryOptions, StatusCode, Transport};
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders as _, QueueClientReceiveMessagesOptions,
    QueueClientSendMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueServiceClient, QueueServiceClientOptions};

use super::{QueueError, Receipt, ReceivedMessage};
use crate::azure_sdk::describe;
use crate::config::StorageSettings;
use crate::storage::{Access, Service, error_code, is_unavailable, retry_options};

/// The two service clients of one account: the same endpoint and credentials, with and
/// without the SDK's automatic retries.
pub(super) struct Clients {
    /// Retries transient failures: right for receive, delete, update, count, create, and
    /// for sends whose duplicates do no harm.
    pub(super) retrying: QueueServiceClient,
    /// Never retries: for a send that must not be stored twice (a pool message), where an
    /// ambiguous failure is the caller's to resolve.
    pub(super) once: QueueServiceClient,
}

/// Build the service clients for `settings` (no I/O). `transport` replaces the HTTP client,
/// for tests that must trust a test certificate; production passes `None`.
pub(super) fn connect(
    settings: &StorageSettings,
    transport: Option<Transport>,
) -> Result<Clients, QueueError> {
    let access = Access::new(settings, Service::Queue, transport).map_err(QueueError::Config)?;
    let client = |retry: RetryOptions| {
        QueueServiceClient::new(
            access.endpoint.clone(),
            access.credential.clone(),
            Some(QueueServiceClientOptions {
                client_options: access.client_options(retry),
                ..QueueServiceClientOptions::default()
            }),
        )
        .map_err(|e| QueueError::Config(format!("{}: {}", access.setting, describe(&e))))
    };
    Ok(Clients {
        retrying: client(retry_options())?,
        once: client(RetryOptions::none())?,
    })
}

/// One Azure queue.
#[derive(Clone)]
pub(super) struct AzureQueue {
    client: Arc<QueueClient>,
    /// The same queue through the client that never retries.
    once: Arc<QueueClient>,
}

/// `x-ms-popreceipt`: Update Message returns the message's new pop receipt here.
const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

impl AzureQueue {
    pub(super) fn new(clients: &Clients, name: &str) -> Result<Self, QueueError> {
        let client = clients.retrying.queue_client(name).map_err(map_error)?;
        let once = clients.once.queue_client(name).map_err(map_error)?;
        Ok(Self {
            client: Arc::new(client),
            once: Arc::new(once),
        })
    }

    pub(super) async fn ensure_exists(&self) -> Result<(), QueueError> {
        match self.client.create(None).await {
            Ok(_) => Ok(()),
            // Exists already with other metadata: still "exists", which is all we need.
            Err(e) if error_code(&e) == Some("QueueAlreadyExists") => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    pub(super) async fn send(&self, text: &str, delay_seconds: i32) -> Result<(), QueueError> {
        Self::send_with(&self.client, text, delay_seconds).await
    }

    /// One attempt only: an automatic retry of a send that was stored but whose answer was
    /// lost stores the message twice.
    pub(super) async fn send_once(&self, text: &str, delay_seconds: i32) -> Result<(), QueueError> {
        Self::send_with(&self.once, text, delay_seconds).await
    }

    async fn send_with(
        client: &QueueClient,
        text: &str,
        delay_seconds: i32,
    ) -> Result<(), QueueError> {
        let message = QueueMessage {
            message_text: Some(text.to_owned()),
        };
        client
            .send_message(
                message.try_into().map_err(map_error)?,
                Some(QueueClientSendMessageOptions {
                    visibility_timeout: Some(delay_seconds),
                    // Never expire: a pool room may wait longer than the 7-day default, and a
                    // silently expired message would leak a room until the reconciler runs.
                    message_time_to_live: Some(-1),
                    ..QueueClientSendMessageOptions::default()
                }),
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }

    pub(super) async fn receive(
        &self,
        max: u8,
        visibility_seconds: i32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let response = self
            .client
            .receive_messages(Some(QueueClientReceiveMessagesOptions {
                number_of_messages: Some(i32::from(max)),
                visibility_timeout: Some(visibility_seconds),
                ..QueueClientReceiveMessagesOptions::default()
            }))
            .await
            .map_err(map_error)?;
        let items = response.into_model().map_err(map_error)?.items;
        items
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let (Some(message_id), Some(pop_receipt)) = (m.message_id, m.pop_receipt) else {
                    return Err(QueueError::Other(
                        "the service returned a message without an id or pop receipt".to_owned(),
                    ));
                };
                Ok(ReceivedMessage {
                    receipt: Receipt {
                        message_id,
                        pop_receipt,
                    },
                    text: m.message_text.unwrap_or_default(),
                    dequeue_count: m
                        .dequeue_count
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(1),
                    inserted_at: m.insertion_time,
                })
            })
            .collect()
    }

    pub(super) async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.client
            .delete_message(&receipt.message_id, &receipt.pop_receipt, None)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    pub(super) async fn set_visibility(
        &self,
        receipt: &Receipt,
        seconds: i32,
    ) -> Result<Receipt, QueueError> {
        let response = self
            .client
            .update_message(&receipt.message_id, &receipt.pop_receipt, seconds, None)
            .await
            .map_err(map_error)?;
        let pop_receipt = response
            .headers()
            .get_optional_string(&POP_RECEIPT)
            .ok_or_else(|| {
                QueueError::Other("Update Message returned no new pop receipt".to_owned())
            })?;
        Ok(Receipt {
            message_id: receipt.message_id.clone(),
            pop_receipt,
        })
    }

    pub(super) async fn approximate_count(&self) -> Result<u64, QueueError> {
        let response = self.client.get_properties(None).await.map_err(map_error)?;
        let count = response.approximate_messages_count().map_err(map_error)?;
        Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    pub(super) async fn clear(&self) -> Result<(), QueueError> {
        self.client.clear(None).await.map_err(map_error)?;
        Ok(())
    }
}

/// Classify an SDK error by what a caller can do about it.
/// Error codes: learn.microsoft.com/rest/api/storageservices/queue-service-error-codes.
pub(super) fn map_error(e: azure_core::Error) -> QueueError {
    match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => match (error_code.as_deref(), *status) {
            (Some("PopReceiptMismatch"), _) => QueueError::StaleReceipt,
            (Some("MessageNotFound"), _) => QueueError::MessageNotFound,
            (Some("QueueNotFound"), _) => QueueError::QueueNotFound,
            (_, StatusCode::Unauthorized | StatusCode::Forbidden) => QueueError::Unauthorized,
            _ if is_unavailable(&e) => QueueError::Unavailable(describe(&e)),
            _ => QueueError::Other(describe(&e)),
        },
        // No token (identity endpoint down or refusing): nothing works until it recovers.
        _ if is_unavailable(&e) => QueueError::Unavailable(describe(&e)),
        _ => QueueError::Other(describe(&e)),
    }
}
