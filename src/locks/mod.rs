//! The per-video-call allocation records: one small JSON blob per video call in Blob Storage
//! (official `azure_storage_blob` SDK, same account as the queues), or in memory with the same
//! semantics for `dev` and tests. This is what makes "one room per call" hold across
//! instances, which Pexip cannot: it has no conditional update and no unique tag.
//!
//! Two layers:
//! - [`LockService`] / [`LockStore`]: conditional blob operations on one container — create
//!   only if absent (`If-None-Match: *`), replace or delete only if unchanged (`If-Match` on
//!   the ETag), read, list. The backend is an enum chosen by configuration (`Azure |
//!   InMemory`); the conformance suite (`tests/lock_conformance.rs`) holds both to Azurite's
//!   behaviour.
//! - [`AllocationLocks`] (`record.rs`): the record protocol on top — claim a call, record the
//!   room being tagged, confirm it, wait for another owner, take over an owner that died.
//!
//! This module knows nothing about Pexip: a room is an id, a name and an opaque view.

mod azure;
mod memory;
mod record;

use std::sync::Arc;

use azure_core::http::Transport;
use time::OffsetDateTime;

pub use record::{
    AllocationLocks, AllocationRecord, Claim, Claimed, HeldRoom, RecordState, Sighting, Stale,
    SweepReport, Waited, record_key,
};

use crate::config::StorageSettings;
use crate::storage::is_storage_name;

/// The container of the allocation records (`QUEUE_NAME_PREFIX` is put before it).
pub const ALLOCATION_CONTAINER: &str = "room-allocations";

/// What went wrong with a record operation, classified by what the caller can do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// A create-only write found the record already there.
    #[error("the record exists already")]
    Exists,
    /// A conditional write or delete found the record changed (or gone) since its ETag was
    /// read: someone else wrote it.
    #[error("the record changed since it was read")]
    Changed,
    /// The container does not exist: call [`LockStore::ensure_exists`] first.
    #[error("the container does not exist")]
    ContainerNotFound,
    /// The storage account refused our credentials or their permissions.
    #[error("the storage account refused the credentials (check the key or the identity's role)")]
    Unauthorized,
    /// Network trouble, a timeout, throttling, a 5xx or no token: retry later.
    #[error("the blob service is unavailable: {0}")]
    Unavailable(String),
    /// The settings cannot build a client; names the setting.
    #[error("lock configuration: {0}")]
    Config(String),
    /// Anything else, including a record we cannot read.
    #[error("lock record error: {0}")]
    Other(String),
}

/// A record's version as the service reports it (an opaque ETag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Etag(pub(crate) String);

/// A record as stored: its bytes and version.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The record's bytes.
    pub body: Vec<u8>,
    /// Its current version.
    pub etag: Etag,
}

/// One record in a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The record's key (its blob name).
    pub key: String,
    /// Its current version.
    pub etag: Etag,
    /// When it was last written, by the service's clock.
    pub last_modified: OffsetDateTime,
}

/// The record service: hands out [`LockStore`]s. Cheap to clone.
#[derive(Clone)]
pub struct LockService {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Azure(Arc<azure::Service>),
    InMemory(Arc<memory::MemoryBlobs>),
}

impl std::fmt::Debug for LockService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Azure(service) => format!("Azure({})", service.endpoint()),
            Backend::InMemory(_) => "InMemory".to_owned(),
        };
        f.debug_struct("LockService")
            .field("backend", &backend)
            .finish()
    }
}

impl LockService {
    /// Build the service for `settings`: Blob Storage of the account, or in memory for
    /// [`StorageSettings::InMemory`]. No I/O.
    pub fn connect(settings: &StorageSettings) -> Result<Self, LockError> {
        Self::connect_with(settings, None)
    }

    /// [`Self::connect`] with a replacement HTTP transport (tests that trust a test
    /// certificate). Production passes `None`.
    pub fn connect_with(
        settings: &StorageSettings,
        transport: Option<Transport>,
    ) -> Result<Self, LockError> {
        match settings {
            StorageSettings::InMemory => Ok(Self::in_memory()),
            _ => Ok(Self {
                backend: Backend::Azure(Arc::new(azure::Service::connect(settings, transport)?)),
            }),
        }
    }

    /// A fresh in-memory service; its clones share the records.
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::InMemory(Arc::default()),
        }
    }

    /// Whether this is the in-memory backend.
    pub fn is_in_memory(&self) -> bool {
        matches!(self.backend, Backend::InMemory(_))
    }

    /// A handle on the container `name` (no I/O; see [`LockStore::ensure_exists`]). Names
    /// follow the service's rules: 3–63 lowercase letters, digits and single hyphens,
    /// starting and ending with a letter or digit.
    pub fn store(&self, name: &str) -> Result<LockStore, LockError> {
        if !is_storage_name(name) {
            return Err(LockError::Other(format!(
                "{name:?} is not a valid container name"
            )));
        }
        let inner = match &self.backend {
            Backend::Azure(service) => Inner::Azure(service.container(name)?),
            Backend::InMemory(blobs) => Inner::InMemory(blobs.clone()),
        };
        Ok(LockStore {
            name: name.into(),
            inner,
        })
    }
}

/// One container of records. Cheap to clone.
#[derive(Clone)]
pub struct LockStore {
    name: Arc<str>,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Azure(azure::Container),
    InMemory(Arc<memory::MemoryBlobs>),
}

impl std::fmt::Debug for LockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockStore")
            .field("name", &self.name)
            .finish()
    }
}

impl LockStore {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Create the container if it does not exist (idempotent).
    pub async fn ensure_exists(&self) -> Result<(), LockError> {
        match &self.inner {
            Inner::Azure(c) => c.ensure_exists().await,
            Inner::InMemory(blobs) => {
                blobs.ensure_exists(&self.name);
                Ok(())
            }
        }
    }

    /// Write `body` under `key` only if no record is there ([`LockError::Exists`]
    /// otherwise). A missing container is created and the write tried once more.
    pub async fn create(&self, key: &str, body: &[u8]) -> Result<Etag, LockError> {
        self.creating_container(|| async {
            match &self.inner {
                Inner::Azure(c) => c.create(key, body).await,
                Inner::InMemory(blobs) => blobs.create(&self.name, key, body),
            }
        })
        .await
    }

    /// The record under `key`, or `None`.
    pub async fn read(&self, key: &str) -> Result<Option<Stored>, LockError> {
        let read = match &self.inner {
            Inner::Azure(c) => c.read(key).await,
            Inner::InMemory(blobs) => blobs.read(&self.name, key),
        };
        match read {
            // No container, no record: the first create makes it.
            Err(LockError::ContainerNotFound) => Ok(None),
            other => other,
        }
    }

    /// Replace the record under `key` only if it still has version `etag`
    /// ([`LockError::Changed`] if it changed or is gone).
    pub async fn replace(&self, key: &str, body: &[u8], etag: &Etag) -> Result<Etag, LockError> {
        match &self.inner {
            Inner::Azure(c) => c.replace(key, body, etag).await,
            Inner::InMemory(blobs) => blobs.replace(&self.name, key, body, etag),
        }
    }

    /// Delete the record under `key`, only if it still has version `etag` when one is given
    /// ([`LockError::Changed`] otherwise, also when it is gone: the service answers a
    /// condition on a missing blob 412). `false` when an unconditional delete found nothing.
    pub async fn delete(&self, key: &str, etag: Option<&Etag>) -> Result<bool, LockError> {
        let deleted = match &self.inner {
            Inner::Azure(c) => c.delete(key, etag).await,
            Inner::InMemory(blobs) => blobs.delete(&self.name, key, etag),
        };
        match deleted {
            Err(LockError::ContainerNotFound) => Ok(false),
            other => other,
        }
    }

    /// Every record: key, version and last write time.
    pub async fn list(&self) -> Result<Vec<Listed>, LockError> {
        let listed = match &self.inner {
            Inner::Azure(c) => c.list().await,
            Inner::InMemory(blobs) => blobs.list(&self.name),
        };
        match listed {
            Err(LockError::ContainerNotFound) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Run `write`; if the container is missing, create it and run `write` once more.
    async fn creating_container<T, F, Fut>(&self, write: F) -> Result<T, LockError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, LockError>>,
    {
        match write().await {
            Err(LockError::ContainerNotFound) => {
                self.ensure_exists().await?;
                write().await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_the_service_rules() {
        for good in ["abc", ALLOCATION_CONTAINER, "t1-2-room-allocations"] {
            assert!(is_storage_name(good), "{good:?}");
        }
        for bad in ["ab", "-abc", "abc-", "a--b", "Abc", "room_allocations"] {
            assert!(!is_storage_name(bad), "{bad:?}");
            assert!(LockService::in_memory().store(bad).is_err(), "{bad:?}");
        }
    }
}
