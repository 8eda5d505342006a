//! Where a backfill's documents are: a directory of this machine, or a
//! prefix of a bucket in S3-compatible storage (`s3://bucket/prefix/`).
//! Either way a document's id is its path (key) relative to the directory
//! (prefix) without its final extension.

use anyhow::{Context as _, bail};
use docpipe_core::{
    ContentHash, DocumentFormat, DocumentId, IngestRequest, PipelineConfig, Source, TenantId,
};
use docpipe_parsed::S3Options;
use futures::TryStreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a backfill looks.
pub(super) enum Origin {
    /// A directory (canonical).
    Directory(PathBuf),
    /// The objects of `bucket` whose keys start with `prefix`.
    Bucket {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
    },
}

/// Where one document is.
#[derive(Debug)]
pub(super) enum Location {
    /// A file.
    File(PathBuf),
    /// An object: its key, ETag and last modification (milliseconds since
    /// the epoch, its document version).
    Object {
        key: String,
        etag: Option<String>,
        modified_ms: u64,
    },
}

impl Origin {
    /// A directory, or `s3://bucket/prefix/` read with the pipeline's
    /// `[sources.s3]` (its endpoint and credentials; the prefix must be
    /// one workers accept).
    pub(super) fn new(target: &str, config: &PipelineConfig) -> anyhow::Result<Self> {
        let Some(location) = target.strip_prefix("s3://") else {
            let root = Path::new(target)
                .canonicalize()
                .with_context(|| format!("cannot backfill {target}"))?;
            return Ok(Self::Directory(root));
        };
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let s3 = config.sources.s3.as_ref().context(
            "backfilling a bucket needs the pipeline's [sources.s3] section (endpoint, credentials, allowed prefixes)",
        )?;
        if !s3.allows(bucket, prefix) {
            bail!(
                "{target} is outside sources.s3.allowed ({}): workers would refuse its objects",
                s3.allowed.join(", ")
            );
        }
        let credentials = s3
            .credentials_file
            .as_deref()
            .map(|path| S3Options::credentials_from_file(path, s3.profile.as_deref()))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let options = S3Options {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            credentials,
        };
        let store = options
            .store(bucket)
            .with_context(|| format!("cannot reach bucket {bucket}"))?;
        Ok(Self::Bucket {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The origin, for messages.
    pub(super) fn shown(&self) -> String {
        match self {
            Self::Directory(root) => root.display().to_string(),
            Self::Bucket { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// The `source` URIs of documents published from here start with this.
    pub(super) fn scope(&self) -> anyhow::Result<String> {
        match self {
            Self::Directory(root) => Ok(format!(
                "{}/",
                url::Url::from_file_path(root)
                    .map_err(|()| anyhow::anyhow!("{} is not an absolute path", root.display()))?
            )),
            Self::Bucket { .. } => Ok(self.shown()),
        }
    }

    /// Every document here whose extension names a format `wanted`
    /// accepts, by document id. Two documents mapping to one id are an
    /// error: one would silently replace the other.
    pub(super) async fn documents(
        &self,
        wanted: impl Fn(DocumentFormat) -> bool,
    ) -> anyhow::Result<BTreeMap<DocumentId, Location>> {
        let found: Vec<(String, Location)> = match self {
            Self::Directory(root) => super::publish::files_under(root)?
                .into_iter()
                .map(|path| {
                    let relative = path
                        .strip_prefix(root)
                        .expect("walked paths are under the root")
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    (relative, Location::File(path))
                })
                .collect(),
            Self::Bucket { store, prefix, .. } => {
                let listed: Vec<_> = store
                    .list(Some(&ObjectPath::from(prefix.as_str())))
                    .try_collect()
                    .await
                    .with_context(|| format!("cannot list {}", self.shown()))?;
                listed
                    .into_iter()
                    .filter_map(|object| {
                        let key = object.location.to_string();
                        let relative = key.strip_prefix(prefix.as_str())?;
                        let relative = relative.trim_start_matches('/').to_owned();
                        let location = Location::Object {
                            etag: object.e_tag,
                            modified_ms: object.last_modified.timestamp_millis().max(0) as u64,
                            key,
                        };
                        Some((relative, location))
                    })
                    .collect()
            }
        };
        let mut documents = BTreeMap::new();
        for (relative, location) in found {
            let Some((stem, extension)) = relative.rsplit_once('.') else {
                continue;
            };
            if !DocumentFormat::from_extension(extension).is_some_and(&wanted) {
                continue;
            }
            let id = DocumentId::new(stem)
                .with_context(|| format!("{relative} cannot be a document id"))?;
            if documents.insert(id.clone(), location).is_some() {
                bail!(
                    "two documents under {} would both be document \"{id}\"; rename one",
                    self.shown()
                );
            }
        }
        Ok(documents)
    }

    /// The hash of a document's bytes, if they can be read.
    pub(super) async fn content_hash(&self, location: &Location) -> Option<ContentHash> {
        match (self, location) {
            (_, Location::File(path)) => std::fs::read(path)
                .ok()
                .map(|bytes| ContentHash::of(&bytes)),
            (Self::Bucket { store, .. }, Location::Object { key, .. }) => {
                let found = store.get(&ObjectPath::from(key.as_str())).await.ok()?;
                let bytes = found.bytes().await.ok()?;
                Some(ContentHash::of(&bytes))
            }
            (Self::Directory(_), Location::Object { .. }) => None,
        }
    }

    /// The ingest request of the document `id` at `location`.
    pub(super) fn request(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        location: &Location,
    ) -> anyhow::Result<IngestRequest> {
        match (self, location) {
            (_, Location::File(path)) => super::publish::file_request(tenant, id, path),
            (
                Self::Bucket { bucket, .. },
                Location::Object {
                    key,
                    etag,
                    modified_ms,
                },
            ) => {
                let source = Source::S3 {
                    uri: format!("s3://{bucket}/{key}"),
                    etag: etag.clone(),
                    version_id: None,
                };
                let mut request = IngestRequest::for_source(tenant.clone(), id.clone(), source)
                    .with_document_version(*modified_ms);
                request.content_type = super::publish::declared_text_type(Path::new(key));
                Ok(request)
            }
            (Self::Directory(_), Location::Object { .. }) => {
                bail!("an object listed for a directory backfill")
            }
        }
    }
}
