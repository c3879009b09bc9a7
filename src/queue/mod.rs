//! The pool and deletion queues: one facade ([`QueueService`], [`Queue`]) over two backends
//! chosen by configuration, Azure Storage Queues (official `azure_storage_queue` SDK) and an
//! in-memory backend with the same semantics for `dev` and tests.
//!
//! The flows rely on the queue service's rules: a received message is hidden for its
//! visibility timeout and then reappears with a higher dequeue count; only its latest pop
//! receipt can delete or update it (an older one is [`QueueError::StaleReceipt`]); a message
//! can be sent hidden (the pool's "ready in 90 s", the deletion grace period). The
//! conformance suite (`tests/queue_conformance.rs`) checks both backends against Azurite's
//! implementation of those rules.
//!
//! Visibility times are whole seconds, as in the service: a [`Duration`] is rounded up, so a
//! message is never visible earlier than asked. The maximum is 7 days.
//!
//! Message formats are in [`messages`]. This module knows nothing about Pexip.

mod azure;
mod memory;
pub mod messages;

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::Transport;

pub use messages::{DeletionMessage, GarbledMessage, PoolMessage, PooledRoom, QUARANTINE_REASON};

use crate::config::StorageSettings;
use crate::storage::is_storage_name;

/// The pool of ready rooms.
pub const POOL_QUEUE: &str = "room-creation-queue";
/// Rooms waiting to be deleted after their conference ended.
pub const DELETION_QUEUE: &str = "room-deletion-queue";

/// The poison queue of `queue`: `<queue>-poison`, the Functions host's convention.
pub fn poison_name(queue: &str) -> String {
    format!("{queue}-poison")
}

/// The longest visibility timeout or delay the service accepts.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The most messages one receive can return.
pub const MAX_RECEIVE: u8 = 32;
/// The largest message text the service accepts (64 KiB of UTF-8 in the XML body).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What went wrong with a queue operation, classified by what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The pop receipt is no longer the message's latest (someone received or updated it
    /// since): the caller no longer owns the message.
    #[error("the pop receipt is stale: the message was received or updated again since")]
    StaleReceipt,
    /// The message is gone (deleted, or never existed).
    #[error("the message does not exist (already deleted?)")]
    MessageNotFound,
    /// The queue does not exist: call [`Queue::ensure_exists`] first.
    #[error("the queue does not exist")]
    QueueNotFound,
    /// The storage account refused our credentials or their permissions.
    #[error("the storage account refused the credentials (check the key or the identity's role)")]
    Unauthorized,
    /// Network trouble, a timeout, throttling, a 5xx or no token: retry later.
    #[error("the queue service is unavailable: {0}")]
    Unavailable(String),
    /// The settings cannot build a client; names the setting.
    #[error("queue configuration: {0}")]
    Config(String),
    /// Anything else, including arguments the service would refuse.
    #[error("queue error: {0}")]
    Other(String),
}

/// Identifies a received message for delete and update: its id and latest pop receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The message id (stable for the message's life).
    pub message_id: String,
    /// The pop receipt from the latest receive or update (changes on each).
    pub pop_receipt: String,
}

/// A message taken from a queue: hidden from other receivers until its visibility timeout.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    /// What deleting or deferring this message needs.
    pub receipt: Receipt,
    /// The message text as sent (no base64: we neither write nor expect it).
    pub text: String,
    /// How many times the message has been received, this time included.
    pub dequeue_count: u32,
    /// When the message was first sent, when the backend says.
    pub inserted_at: Option<time::OffsetDateTime>,
}

/// The queue service: hands out [`Queue`]s. Cheap to clone (shared state inside).
#[derive(Clone)]
pub struct QueueService {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Azure(Arc<azure::Clients>),
    InMemory(Arc<memory::MemoryQueues>),
}

impl std::fmt::Debug for QueueService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Azure(clients) => format!("Azure({})", clients.retrying.url()),
            Backend::InMemory(_) => "InMemory".to_owned(),
        };
        f.debug_struct("QueueService")
            .field("backend", &backend)
            .finish()
    }
}

impl QueueService {
    /// Build the service for `settings`. No I/O: a wrong endpoint or key shows on first use.
    pub fn connect(settings: &StorageSettings) -> Result<Self, QueueError> {
        Self::connect_with(settings, None)
    }

    /// [`Self::connect`] with a replacement HTTP transport (for the Azure client and the
    /// managed-identity credential), so tests can trust a test certificate. Production
    /// passes `None`.
    pub fn connect_with(
        settings: &StorageSettings,
        transport: Option<Transport>,
    ) -> Result<Self, QueueError> {
        match settings {
            StorageSettings::InMemory => Ok(Self::in_memory()),
            _ => Ok(Self {
                backend: Backend::Azure(Arc::new(azure::connect(settings, transport)?)),
            }),
        }
    }

    /// A fresh in-memory service. Every [`Self::queue`] call with the same name, on this
    /// value or its clones, sees the same messages.
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::InMemory(Arc::default()),
        }
    }

    /// Whether this is the in-memory backend (which `serve` refuses).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.backend, Backend::InMemory(_))
    }

    /// A handle on the queue `name` (no I/O; see [`Queue::ensure_exists`]). Names follow the
    /// service's rules: 3–63 lowercase letters, digits and single hyphens, starting and
    /// ending with a letter or digit.
    pub fn queue(&self, name: &str) -> Result<Queue, QueueError> {
        if !is_storage_name(name) {
            return Err(QueueError::Other(format!(
                "{name:?} is not a valid queue name"
            )));
        }
        let inner = match &self.backend {
            Backend::Azure(service) => Inner::Azure(azure::AzureQueue::new(service, name)?),
            Backend::InMemory(store) => Inner::InMemory(store.clone()),
        };
        Ok(Queue {
            name: name.into(),
            service: self.clone(),
            inner,
        })
    }
}

/// One queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    name: Arc<str>,
    service: QueueService,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Azure(azure::AzureQueue),
    InMemory(Arc<memory::MemoryQueues>),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("service", &self.service)
            .finish()
    }
}

/// Whole seconds, rounded up, at most 7 days; `what` names the argument in the error.
fn whole_seconds(duration: Duration, what: &str) -> Result<i32, QueueError> {
    if duration > MAX_VISIBILITY {
        return Err(QueueError::Other(format!("{what} is longer than 7 days")));
    }
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    Ok(i32::try_from(seconds).expect("7 days of seconds fit in i32"))
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Create the queue if it does not exist (idempotent).
    pub async fn ensure_exists(&self) -> Result<(), QueueError> {
        match &self.inner {
            Inner::Azure(q) => q.ensure_exists().await,
            Inner::InMemory(store) => {
                store.ensure_exists(&self.name);
                Ok(())
            }
        }
    }

    /// Send `text` at most once: like [`Self::send`], but never retried, so the message can
    /// never be stored twice. An error does not say whether it was stored. The pool uses it:
    /// two messages for one room would let two callers claim that room at once.
    pub async fn send_once(
        &self,
        text: &str,
        visibility_delay: Duration,
    ) -> Result<(), QueueError> {
        self.check_size(text)?;
        let seconds = whole_seconds(visibility_delay, "the visibility delay")?;
        match &self.inner {
            Inner::Azure(q) => q.send_once(text, seconds).await,
            Inner::InMemory(store) => store.send(
                &self.name,
                text,
                Duration::from_secs(seconds.unsigned_abs().into()),
            ),
        }
    }

    fn check_size(&self, text: &str) -> Result<(), QueueError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::Other(format!(
                "message of {} bytes is over the 64 KiB limit",
                text.len()
            )));
        }
        Ok(())
    }

    /// Send `text`, hidden for `visibility_delay` (zero: visible at once). Messages never
    /// expire. Transient failures are retried, so a message can (rarely) be stored twice.
    pub async fn send(&self, text: &str, visibility_delay: Duration) -> Result<(), QueueError> {
        self.check_size(text)?;
        let seconds = whole_seconds(visibility_delay, "the visibility delay")?;
        match &self.inner {
            Inner::Azure(q) => q.send(text, seconds).await,
            Inner::InMemory(store) => store.send(
                &self.name,
                text,
                Duration::from_secs(seconds.unsigned_abs().into()),
            ),
        }
    }

    /// Receive up to `max` (1–32) visible messages, hiding each for `visibility_timeout`
    /// (at least 1 s, as the service requires). An empty vector means nothing is visible.
    pub async fn receive(
        &self,
        max: u8,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if !(1..=MAX_RECEIVE).contains(&max) {
            return Err(QueueError::Other(format!(
                "can receive 1 to {MAX_RECEIVE} messages at once, not {max}"
            )));
        }
        let seconds = whole_seconds(visibility_timeout, "the visibility timeout")?.max(1);
        match &self.inner {
            Inner::Azure(q) => q.receive(max, seconds).await,
            Inner::InMemory(store) => store.receive(
                &self.name,
                usize::from(max),
                Duration::from_secs(seconds.unsigned_abs().into()),
            ),
        }
    }

    /// Delete a received message. [`QueueError::StaleReceipt`] if it was received or
    /// updated again since; [`QueueError::MessageNotFound`] if it is gone.
    pub async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        match &self.inner {
            Inner::Azure(q) => q.delete(receipt).await,
            Inner::InMemory(store) => store.delete(&self.name, receipt),
        }
    }

    /// Hide a received message for `timeout` from now (defer it; zero makes it visible at
    /// once). Returns the new receipt: the old one is stale from now on.
    pub async fn set_visibility(
        &self,
        receipt: &Receipt,
        timeout: Duration,
    ) -> Result<Receipt, QueueError> {
        let seconds = whole_seconds(timeout, "the visibility timeout")?;
        match &self.inner {
            Inner::Azure(q) => q.set_visibility(receipt, seconds).await,
            Inner::InMemory(store) => store.set_visibility(
                &self.name,
                receipt,
                Duration::from_secs(seconds.unsigned_abs().into()),
            ),
        }
    }

    /// How many messages the queue holds, hidden ones included (approximate on Azure).
    pub async fn approximate_count(&self) -> Result<u64, QueueError> {
        match &self.inner {
            Inner::Azure(q) => q.approximate_count().await,
            Inner::InMemory(store) => store.count(&self.name),
        }
    }

    /// Delete every message, hidden ones included.
    pub async fn clear(&self) -> Result<(), QueueError> {
        match &self.inner {
            Inner::Azure(q) => q.clear().await,
            Inner::InMemory(store) => store.clear(&self.name),
        }
    }

    /// Send the message's text to `poison` (visible at once) and delete it here. The send
    /// comes first, so a failure in between duplicates a message rather than losing it. The
    /// poison queue is created if missing. Logging is the caller's (see
    /// [`Self::move_to_poison`] for the logged variant).
    pub async fn move_to(
        &self,
        message: &ReceivedMessage,
        poison: &Queue,
    ) -> Result<(), QueueError> {
        match poison.send(&message.text, Duration::ZERO).await {
            Err(QueueError::QueueNotFound) => {
                poison.ensure_exists().await?;
                poison.send(&message.text, Duration::ZERO).await?;
            }
            other => other?,
        }
        self.delete(&message.receipt).await
    }

    /// This queue's poison queue (`<name>-poison`).
    pub fn poison_queue(&self) -> Result<Queue, QueueError> {
        self.service.queue(&poison_name(&self.name))
    }

    /// Move a message this queue cannot process (garbled, or failed too often) to its
    /// poison queue, with a warning naming the queue, the message id, its dequeue count and
    /// `reason`; never the text, which may be anything.
    pub async fn move_to_poison(
        &self,
        message: &ReceivedMessage,
        reason: &str,
    ) -> Result<(), QueueError> {
        let poison = self.poison_queue()?;
        self.move_to(message, &poison).await?;
        tracing::warn!(
            queue.name = %self.name,
            queue.poison = %poison.name(),
            queue.message_id = %message.receipt.message_id,
            queue.dequeue_count = message.dequeue_count,
            reason,
            "moved a message to the poison queue"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_queues_take_the_functions_host_suffix() {
        assert_eq!(poison_name(POOL_QUEUE), "room-creation-queue-poison");
        assert!(is_storage_name(&poison_name(DELETION_QUEUE)));
    }

    #[test]
    fn queue_names_follow_the_service_rules() {
        for good in ["abc", "room-creation-queue", "q1-2-3", &"a".repeat(63)] {
            assert!(is_storage_name(good), "{good:?}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "Abc",
            "room_deletion_queue",
            &"a".repeat(64),
        ] {
            assert!(!is_storage_name(bad), "{bad:?}");
            assert!(QueueService::in_memory().queue(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn visibility_rounds_up_to_whole_seconds_and_stops_at_seven_days() {
        assert_eq!(whole_seconds(Duration::ZERO, "t").unwrap(), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1), "t").unwrap(), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500), "t").unwrap(), 2);
        assert_eq!(whole_seconds(MAX_VISIBILITY, "t").unwrap(), 604_800);
        assert!(whole_seconds(MAX_VISIBILITY + Duration::from_secs(1), "t").is_err());
    }

    #[tokio::test]
    async fn receive_refuses_batches_the_service_would_refuse() {
        let queue = QueueService::in_memory().queue("q-batch").unwrap();
        queue.ensure_exists().await.unwrap();
        assert!(queue.receive(0, Duration::from_secs(1)).await.is_err());
        assert!(queue.receive(33, Duration::from_secs(1)).await.is_err());
    }

    #[test]
    fn connecting_in_memory_settings_gives_the_in_memory_backend() {
        let service = QueueService::connect(&StorageSettings::InMemory).unwrap();
        assert!(service.is_in_memory());
        let azure = QueueService::connect(&StorageSettings::development(
            url::Url::parse(crate::config::DEV_QUEUE_ENDPOINT).unwrap(),
            url::Url::parse(crate::config::DEV_BLOB_ENDPOINT).unwrap(),
        ))
        .unwrap();
        assert!(!azure.is_in_memory());
    }
}
