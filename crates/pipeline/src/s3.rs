//! `s3://` sources: objects in S3-compatible storage (AWS S3, MinIO,
//! SeaweedFS), read through `object_store` within the allowed buckets and
//! prefixes, the size limit enforced while the bytes arrive.

use crate::source::SourceError;
use docpipe_core::config::S3SourcesConfig;
use docpipe_core::message::s3_location_of;
use docpipe_parsed::S3Options;
use futures::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Reads objects of the allowed buckets; one client per bucket, made on
/// first use.
#[derive(Debug)]
pub(crate) struct S3Sources {
    config: S3SourcesConfig,
    options: S3Options,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

/// Which object, and which content of it, a source names.
pub(crate) struct ObjectRequest<'a> {
    /// `s3://bucket/key`.
    pub uri: &'a str,
    /// The ETag the content must have.
    pub etag: Option<&'a str>,
    /// The version to read.
    pub version_id: Option<&'a str>,
}

impl S3Sources {
    /// Sources from the buckets and prefixes `config` allows, with the
    /// credentials of its credentials file if it names one.
    pub(crate) fn new(config: S3SourcesConfig) -> Result<Self, String> {
        let credentials = config
            .credentials_file
            .as_deref()
            .map(|path| S3Options::credentials_from_file(path, config.profile.as_deref()))
            .transpose()?;
        Ok(Self {
            options: S3Options {
                endpoint: config.endpoint.clone(),
                region: config.region.clone(),
                credentials,
            },
            config,
            stores: Mutex::new(HashMap::new()),
        })
    }

    fn store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, SourceError> {
        let mut stores = self.stores.lock().expect("no panic holds the lock");
        if let Some(store) = stores.get(bucket) {
            return Ok(store.clone());
        }
        let store: Arc<dyn ObjectStore> = Arc::new(self.options.store(bucket).map_err(
            |error| SourceError::S3Setup {
                bucket: bucket.to_owned(),
                message: error.to_string(),
            },
        )?);
        stores.insert(bucket.to_owned(), store.clone());
        Ok(store)
    }

    /// The object's bytes, at most `max_bytes` of them.
    pub(crate) async fn read(
        &self,
        request: ObjectRequest<'_>,
        max_bytes: u64,
    ) -> Result<Vec<u8>, SourceError> {
        let (bucket, key) = s3_location_of(request.uri)?;
        if !self.config.allows(&bucket, &key) {
            return Err(SourceError::NotAllowed {
                uri: request.uri.to_owned(),
                allowed: self.config.allowed.join(", "),
                setting: "sources.s3.allowed",
            });
        }
        let store = self.store(&bucket)?;
        let options = GetOptions {
            if_match: request.etag.map(str::to_owned),
            version: request.version_id.map(str::to_owned),
            ..GetOptions::default()
        };
        let failed = |error| object_error(request.uri, error);
        let found = store
            .get_opts(&ObjectPath::from(key.as_str()), options)
            .await
            .map_err(failed)?;
        let too_large = |size: u64| SourceError::TooLarge {
            size,
            limit: max_bytes,
            setting: "limits.max_document_bytes",
        };
        if found.meta.size > max_bytes {
            return Err(too_large(found.meta.size));
        }
        // The size said up front is the store's word; the count of what
        // arrives is ours.
        let mut bytes = Vec::with_capacity(found.meta.size as usize);
        let mut stream = found.into_stream();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(failed)?);
            if bytes.len() as u64 > max_bytes {
                return Err(too_large(bytes.len() as u64));
            }
        }
        Ok(bytes)
    }
}

/// What a failed read means: the object is gone or forbidden (permanent),
/// changed since the message was published (permanent: the message that
/// announces the change follows), or the store is unavailable (transient).
fn object_error(uri: &str, error: object_store::Error) -> SourceError {
    let uri = uri.to_owned();
    match error {
        object_store::Error::NotFound { .. } => SourceError::ObjectNotFound(uri),
        object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. } => SourceError::Forbidden {
            uri,
            message: source.to_string(),
        },
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
            SourceError::Changed(uri)
        }
        other => SourceError::Unavailable {
            uri,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::Classify as _;

    #[test]
    fn failed_reads_are_classified_by_what_the_store_said() {
        let source = || Box::<dyn std::error::Error + Send + Sync>::from("said so");
        let path = || "k".to_owned();
        let cases = [
            (
                object_store::Error::NotFound {
                    path: path(),
                    source: source(),
                },
                "source_not_found",
            ),
            (
                object_store::Error::PermissionDenied {
                    path: path(),
                    source: source(),
                },
                "source_forbidden",
            ),
            (
                object_store::Error::Unauthenticated {
                    path: path(),
                    source: source(),
                },
                "source_forbidden",
            ),
            (
                object_store::Error::Precondition {
                    path: path(),
                    source: source(),
                },
                "source_changed",
            ),
            (
                object_store::Error::Generic {
                    store: "S3",
                    source: source(),
                },
                "source_unavailable",
            ),
        ];
        for (error, code) in cases {
            let error = object_error("s3://b/k", error);
            assert_eq!(error.code(), code, "{error}");
            let transient = code == "source_unavailable";
            assert_eq!(
                error.class() == docpipe_core::ErrorClass::Transient,
                transient
            );
        }
    }
}
