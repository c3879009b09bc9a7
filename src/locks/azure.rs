//! The Blob Storage backend of the records on the official `azure_storage_blob` crate, and the
//! mapping of its errors onto [`LockError`].
//!
//! A record is a small block blob. The conditions ride on the upload and delete options:
//! `If-None-Match: *` for a create (409 `BlobAlreadyExists` when there is one), `If-Match:
//! <etag>` for a replace or delete (412 `ConditionNotMet` when it changed). Authentication is
//! the queues' (see [`crate::storage`]).
//!
//! REST reference: learn.microsoft.com/rest/api/storageservices/put-blob and
//! specifying-conditional-headers-for-blob-service-operations.

use std::sync::Arc;

use azure_core::http::{RequestContent, StatusCode, Transport, Url};
use azure_storage_blob::models::{
    BlobClientDeleteOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::TryStreamExt as _;

use super::{Etag, Listed, LockError, Stored};
use crate::azure_sdk::describe;
use crate::config::StorageSettings;
use crate::storage::{Access, Service as StorageService, error_code, is_unavailable};

/// The blob service of the account: what every container client is built from.
pub(super) struct Service {
    access: Access,
}

impl Service {
    pub(super) fn connect(
        settings: &StorageSettings,
        transport: Option<Transport>,
    ) -> Result<Self, LockError> {
        let access =
            Access::new(settings, StorageService::Blob, transport).map_err(LockError::Config)?;
        Ok(Self { access })
    }

    pub(super) fn endpoint(&self) -> &Url {
        &self.access.endpoint
    }

    /// A client of the container `name` (no I/O).
    pub(super) fn container(&self, name: &str) -> Result<Container, LockError> {
        let mut url = self.access.endpoint.clone();
        url.path_segments_mut()
            .map_err(|()| {
                LockError::Config(format!(
                    "{}: the blob endpoint cannot take a path",
                    self.access.setting
                ))
            })?
            .pop_if_empty()
            .push(name);
        let client = BlobContainerClient::new(
            url,
            self.access.credential.clone(),
            Some(BlobContainerClientOptions {
                client_options: self.access.client_options(crate::storage::retry_options()),
                ..BlobContainerClientOptions::default()
            }),
        )
        .map_err(|e| LockError::Config(format!("{}: {}", self.access.setting, describe(&e))))?;
        Ok(Container {
            client: Arc::new(client),
        })
    }
}

/// One container.
#[derive(Clone)]
pub(super) struct Container {
    client: Arc<BlobContainerClient>,
}

/// How a record is labelled in storage (it is JSON).
const CONTENT_TYPE: &str = "application/json";

impl Container {
    pub(super) async fn ensure_exists(&self) -> Result<(), LockError> {
        match self.client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("ContainerAlreadyExists") => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    pub(super) async fn create(&self, key: &str, body: &[u8]) -> Result<Etag, LockError> {
        let options = BlobClientUploadOptions {
            blob_content_type: Some(CONTENT_TYPE.to_owned()),
            ..BlobClientUploadOptions::default()
        }
        .if_not_exists();
        match self.upload(key, body, options).await {
            // 409 `BlobAlreadyExists` is what the service answers; a 412 is accepted too.
            Err(e) if e.http_status() == Some(StatusCode::PreconditionFailed) => {
                Err(LockError::Exists)
            }
            other => other.map_err(map_error),
        }
    }

    pub(super) async fn replace(
        &self,
        key: &str,
        body: &[u8],
        etag: &Etag,
    ) -> Result<Etag, LockError> {
        let options = BlobClientUploadOptions {
            blob_content_type: Some(CONTENT_TYPE.to_owned()),
            if_match: Some(etag.0.clone().into()),
            ..BlobClientUploadOptions::default()
        };
        match self.upload(key, body, options).await {
            // Gone since it was read: it changed too.
            Err(e) if error_code(&e) == Some("BlobNotFound") => Err(LockError::Changed),
            other => other.map_err(map_error),
        }
    }

    async fn upload(
        &self,
        key: &str,
        body: &[u8],
        options: BlobClientUploadOptions<'_>,
    ) -> Result<Etag, azure_core::Error> {
        let result = self
            .client
            .blob_client(key)
            .upload(RequestContent::from(body.to_vec()), Some(options))
            .await?;
        result.etag.map(|e| etag(e.to_string())).ok_or_else(|| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::DataConversion,
                "the upload answer carries no ETag",
            )
        })
    }

    pub(super) async fn read(&self, key: &str) -> Result<Option<Stored>, LockError> {
        let result = match self.client.blob_client(key).download(None).await {
            Ok(result) => result,
            Err(e) if error_code(&e) == Some("BlobNotFound") => return Ok(None),
            Err(e) => return Err(map_error(e)),
        };
        let etag = result
            .properties
            .etag
            .clone()
            .map(|e| etag(e.to_string()))
            .ok_or_else(|| LockError::Other("the download answer carries no ETag".to_owned()))?;
        let body = result.body.collect().await.map_err(map_error)?;
        Ok(Some(Stored {
            body: body.to_vec(),
            etag,
        }))
    }

    pub(super) async fn delete(&self, key: &str, etag: Option<&Etag>) -> Result<bool, LockError> {
        let options = BlobClientDeleteOptions {
            if_match: etag.map(|e| e.0.clone().into()),
            ..BlobClientDeleteOptions::default()
        };
        match self.client.blob_client(key).delete(Some(options)).await {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("BlobNotFound") => Ok(false),
            Err(e) => Err(map_error(e)),
        }
    }

    pub(super) async fn list(&self) -> Result<Vec<Listed>, LockError> {
        let mut pager = self
            .client
            .list_blobs(Some(BlobContainerClientListBlobsOptions::default()))
            .map_err(map_error)?;
        let mut listed = Vec::new();
        while let Some(item) = pager.try_next().await.map_err(map_error)? {
            let (Some(name), Some(properties)) = (item.name, item.properties) else {
                continue;
            };
            let (Some(etag), Some(last_modified)) = (properties.etag, properties.last_modified)
            else {
                continue;
            };
            listed.push(Listed {
                key: name,
                etag: self::etag(etag.to_string()),
                last_modified,
            });
        }
        Ok(listed)
    }
}

/// An ETag in the form the `ETag` header has: quoted. Listings carry it without the quotes;
/// one form everywhere lets versions be compared.
fn etag(raw: String) -> Etag {
    if raw.starts_with('"') {
        Etag(raw)
    } else {
        Etag(format!("\"{raw}\""))
    }
}

/// Classify an SDK error by what a caller can do about it.
/// Error codes: learn.microsoft.com/rest/api/storageservices/blob-service-error-codes.
fn map_error(e: azure_core::Error) -> LockError {
    match (error_code(&e), e.http_status()) {
        (Some("BlobAlreadyExists"), _) => LockError::Exists,
        (Some("ConditionNotMet"), _) | (_, Some(StatusCode::PreconditionFailed)) => {
            LockError::Changed
        }
        (Some("ContainerNotFound"), _) => LockError::ContainerNotFound,
        (_, Some(StatusCode::Unauthorized | StatusCode::Forbidden)) => LockError::Unauthorized,
        _ if is_unavailable(&e) => LockError::Unavailable(describe(&e)),
        _ => LockError::Other(describe(&e)),
    }
}
