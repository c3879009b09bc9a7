//! The in-memory record backend: Blob Storage's conditional-write semantics inside one
//! process, for `dev` and tests. `serve` never uses it (its records must be shared by every
//! instance).
//!
//! Same rules as the service, checked by the conformance suite against both backends: a
//! container must exist before a write; a create-only write fails on an existing record; a
//! conditional replace or delete fails unless the ETag is the current one (also when the
//! record is gone); every write gives a new ETag.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use super::{Etag, Listed, LockError, Stored};

/// Every container of one [`super::LockService`], by name.
#[derive(Debug, Default)]
pub(super) struct MemoryBlobs {
    containers: Mutex<HashMap<String, BTreeMap<String, Blob>>>,
    /// Source of ETags: never reused, so an old ETag never matches a newer record.
    next_version: Mutex<u64>,
}

#[derive(Debug, Clone)]
struct Blob {
    body: Vec<u8>,
    etag: Etag,
    last_modified: OffsetDateTime,
}

impl MemoryBlobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, BTreeMap<String, Blob>>> {
        // Every update is one insert or remove: a panic cannot leave a record half-written.
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_etag(&self) -> Etag {
        let mut next = self.next_version.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        Etag(format!("\"0x{:X}\"", *next))
    }

    fn with_container<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut BTreeMap<String, Blob>) -> Result<T, LockError>,
    ) -> Result<T, LockError> {
        let mut containers = self.lock();
        let container = containers
            .get_mut(name)
            .ok_or(LockError::ContainerNotFound)?;
        f(container)
    }

    fn blob(&self, body: &[u8]) -> Blob {
        Blob {
            body: body.to_vec(),
            etag: self.new_etag(),
            last_modified: OffsetDateTime::now_utc(),
        }
    }

    pub(super) fn ensure_exists(&self, name: &str) {
        self.lock().entry(name.to_owned()).or_default();
    }

    pub(super) fn create(&self, name: &str, key: &str, body: &[u8]) -> Result<Etag, LockError> {
        let blob = self.blob(body);
        self.with_container(name, |container| {
            if container.contains_key(key) {
                return Err(LockError::Exists);
            }
            let etag = blob.etag.clone();
            container.insert(key.to_owned(), blob);
            Ok(etag)
        })
    }

    pub(super) fn read(&self, name: &str, key: &str) -> Result<Option<Stored>, LockError> {
        self.with_container(name, |container| {
            Ok(container.get(key).map(|b| Stored {
                body: b.body.clone(),
                etag: b.etag.clone(),
            }))
        })
    }

    pub(super) fn replace(
        &self,
        name: &str,
        key: &str,
        body: &[u8],
        etag: &Etag,
    ) -> Result<Etag, LockError> {
        let blob = self.blob(body);
        self.with_container(name, |container| match container.get_mut(key) {
            Some(current) if current.etag == *etag => {
                let new = blob.etag.clone();
                *current = blob;
                Ok(new)
            }
            _ => Err(LockError::Changed),
        })
    }

    pub(super) fn delete(
        &self,
        name: &str,
        key: &str,
        etag: Option<&Etag>,
    ) -> Result<bool, LockError> {
        self.with_container(name, |container| match (container.get(key), etag) {
            // The condition names a version, and there is none: it is not met.
            (None, Some(_)) => Err(LockError::Changed),
            (None, None) => Ok(false),
            (Some(current), Some(etag)) if *etag != current.etag => Err(LockError::Changed),
            (Some(_), _) => Ok(container.remove(key).is_some()),
        })
    }

    pub(super) fn list(&self, name: &str) -> Result<Vec<Listed>, LockError> {
        self.with_container(name, |container| {
            Ok(container
                .iter()
                .map(|(key, b)| Listed {
                    key: key.clone(),
                    etag: b.etag.clone(),
                    last_modified: b.last_modified,
                })
                .collect())
        })
    }
}
