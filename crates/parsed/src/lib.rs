//! Parsed copies of documents: each indexed content's parsed text and
//! structure (title, blocks, pages, heading paths), keyed by content hash.
//! A re-index after a chunking or model change re-chunks and re-embeds them
//! instead of re-reading sources, which may have moved, changed or (for
//! inline uploads) never been kept.
//!
//! They live where every process that needs them can read them: a local
//! directory for one machine, or a bucket of S3-compatible object storage
//! (AWS S3, MinIO, SeaweedFS, ...) through the `object_store` crate, so that
//! workers and re-indexes on any machine share them. Copies are immutable
//! (a hash names one content), so two workers writing the same copy write
//! the same bytes, and no locking is needed.

#![warn(missing_docs)]

use docpipe_core::{Classify, ContentHash, ErrorClass, ParsedDocument, PipelineConfig};
use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a copy is safe from pruning after it was written: a worker may
/// be indexing its document right now.
pub const PRUNE_GRACE: Duration = Duration::from_secs(3600);

/// Why a parsed copy could not be kept, read or pruned.
#[derive(Debug, thiserror::Error)]
pub enum ParsedError {
    /// The store is unreachable or failed; retrying may help.
    #[error("parsed copies in {location} are unavailable: {message}")]
    Unavailable {
        /// The store or object.
        location: String,
        /// What happened.
        message: String,
    },
    /// A copy is not what docpipe wrote.
    #[error("parsed copy {location} is corrupt ({message}); re-publish the document")]
    Corrupt {
        /// The object.
        location: String,
        /// What the parser said.
        message: String,
    },
    /// The configured location cannot be used.
    #[error("parsed copies cannot be kept in {location}: {message}")]
    Location {
        /// The configured location.
        location: String,
        /// Why not, and what to change.
        message: String,
    },
}

impl Classify for ParsedError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } => ErrorClass::Transient,
            Self::Corrupt { .. } | Self::Location { .. } => ErrorClass::Permanent,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "parsed_copies_unavailable",
            Self::Corrupt { .. } => "parsed_copy_corrupt",
            Self::Location { .. } => "parsed_copies_misconfigured",
        }
    }
}

/// How to reach an S3-compatible store beyond what its URL says.
/// Credentials come from the standard AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...)
/// unless given here, never from pipeline files.
#[derive(Clone, Default)]
pub struct S3Options {
    /// Endpoint of a store other than AWS (MinIO, SeaweedFS), e.g.
    /// `http://127.0.0.1:8333`; plain `http://` is allowed only here.
    pub endpoint: Option<String>,
    /// The region (AWS), or any name the store accepts.
    pub region: Option<String>,
    /// Credentials given explicitly rather than by the environment.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: options end up in error messages and logs.
        formatter
            .debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.credentials.as_ref().map(|(key, _)| key),
            )
            .finish_non_exhaustive()
    }
}

impl S3Options {
    /// The credentials of `profile` (`default` when `None`) in a file of
    /// the AWS shared-credentials format.
    pub fn credentials_from_file(
        path: &Path,
        profile: Option<&str>,
    ) -> Result<(String, String), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read credentials file {}: {error}", path.display()))?;
        let wanted = profile.unwrap_or("default");
        let mut section = String::new();
        let (mut key, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if let Some(name) = line
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            {
                section = name.trim().trim_start_matches("profile ").to_owned();
            } else if section == wanted
                && let Some((name, value)) = line.split_once('=')
            {
                match name.trim() {
                    "aws_access_key_id" => key = Some(value.trim().to_owned()),
                    "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        key.zip(secret).ok_or_else(|| {
            format!(
                "credentials file {} has no profile [{wanted}] with aws_access_key_id and aws_secret_access_key",
                path.display()
            )
        })
    }

    /// The store of `bucket`: credentials from the options, else from the
    /// standard AWS environment variables and profiles.
    pub fn store(&self, bucket: &str) -> Result<AmazonS3, object_store::Error> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // Path-style requests: S3-compatible stores rarely have
                // a DNS name per bucket.
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some((key, secret)) = &self.credentials {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        builder.build()
    }
}

/// Where parsed copies live.
#[derive(Debug, Clone)]
enum Backend {
    /// A directory of this machine: copies are synced to disk when saved.
    Local(PathBuf),
    /// Object storage, durable once it acknowledges a write.
    ObjectStorage,
}

/// The parsed copies of one index family.
#[derive(Debug, Clone)]
pub struct ParsedCopies {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    backend: Backend,
    shown: String,
}

impl ParsedCopies {
    /// Copies in the local directory `directory` (created if needed).
    pub fn local(directory: &Path) -> Result<Self, ParsedError> {
        let shown = directory.display().to_string();
        let location = |message: String| ParsedError::Location {
            location: shown.clone(),
            message,
        };
        std::fs::create_dir_all(directory).map_err(|error| location(error.to_string()))?;
        let directory = directory
            .canonicalize()
            .map_err(|error| location(error.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(&directory)
            .map_err(|error| location(error.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            backend: Backend::Local(directory),
            shown,
        })
    }

    /// Copies under `url` (`s3://bucket/prefix`) in S3-compatible storage.
    pub fn s3(url: &str, options: &S3Options) -> Result<Self, ParsedError> {
        let location = |message: String| ParsedError::Location {
            location: url.to_owned(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|error| location(error.to_string()))?;
        let bucket = match (parsed.scheme(), parsed.host_str()) {
            ("s3", Some(bucket)) if !bucket.is_empty() => bucket.to_owned(),
            _ => return Err(location("expected s3://bucket/prefix".into())),
        };
        let store = options
            .store(&bucket)
            .map_err(|error| location(error.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: ObjectPath::from(parsed.path().trim_matches('/')),
            backend: Backend::ObjectStorage,
            shown: url.to_owned(),
        })
    }

    /// The parsed copies of `config`'s index family, where its `[parsed]`
    /// section says (by default `<bm25.index_dir>/parsed`).
    pub fn for_pipeline(config: &PipelineConfig) -> Result<Self, ParsedError> {
        match config.parsed.url.as_deref() {
            None => Self::local(&config.bm25.index_dir.join("parsed")),
            Some(url) if url.starts_with("s3://") => Self::s3(
                url,
                &S3Options {
                    endpoint: config.parsed.endpoint.clone(),
                    region: config.parsed.region.clone(),
                    credentials: None,
                },
            ),
            Some(url) => {
                let directory = url.strip_prefix("file://").unwrap_or(url);
                Self::local(Path::new(directory))
            }
        }
    }

    /// Where the copies are, for messages.
    pub fn location(&self) -> &str {
        &self.shown
    }

    fn path_of(&self, hash: &ContentHash) -> ObjectPath {
        self.prefix.clone().join(format!("{}.json", hash.as_str()))
    }

    fn unavailable(&self, error: object_store::Error) -> ParsedError {
        ParsedError::Unavailable {
            location: self.shown.clone(),
            message: error.to_string(),
        }
    }

    /// Keeps the parsed copy of the content with `hash` (idempotent).
    pub async fn save(
        &self,
        hash: &ContentHash,
        parsed: &ParsedDocument,
    ) -> Result<(), ParsedError> {
        let path = self.path_of(hash);
        match self.store.head(&path).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(self.unavailable(error)),
        }
        let bytes = serde_json::to_vec(parsed).expect("parsed documents serialize");
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|error| self.unavailable(error))?;
        if let Backend::Local(directory) = &self.backend {
            // The store writes a temporary file and renames it; the copy
            // is durable once the file and the directory entry are synced.
            let file = directory.join(path.as_ref());
            let synced = std::fs::File::open(&file)
                .and_then(|file| file.sync_all())
                .and_then(|()| std::fs::File::open(directory)?.sync_all());
            synced.map_err(|error| ParsedError::Unavailable {
                location: file.display().to_string(),
                message: error.to_string(),
            })?;
        }
        Ok(())
    }

    /// The parsed copy of the content with `hash`, if one was kept.
    pub async fn load(&self, hash: &ContentHash) -> Result<Option<ParsedDocument>, ParsedError> {
        let path = self.path_of(hash);
        let bytes = match self.store.get(&path).await {
            Ok(found) => found
                .bytes()
                .await
                .map_err(|error| self.unavailable(error))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.unavailable(error)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| ParsedError::Corrupt {
                location: format!("{}/{path}", self.shown),
                message: error.to_string(),
            })
    }

    /// Removes the copies whose content hash `keep` rejects; returns how
    /// many. Copies younger than `grace` stay: a worker may be indexing
    /// their document right now.
    pub async fn prune(
        &self,
        keep: impl Fn(&str) -> bool,
        grace: Duration,
    ) -> Result<usize, ParsedError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let objects: Vec<_> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|error| self.unavailable(error))?;
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for object in objects {
            let Some(hash) = object
                .location
                .filename()
                .and_then(|name| name.strip_suffix(".json"))
            else {
                continue;
            };
            let modified: std::time::SystemTime = object.last_modified.into();
            let young = now.duration_since(modified).map_or(true, |age| age < grace);
            if keep(hash) || young {
                continue;
            }
            self.store
                .delete(&object.location)
                .await
                .map_err(|error| self.unavailable(error))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_named_profile_and_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = A\naws_secret_access_key = S\n\n\
             [profile uploads]\naws_access_key_id=UP\naws_secret_access_key=sekrit\n",
        )
        .unwrap();
        assert_eq!(
            S3Options::credentials_from_file(&file, None).unwrap(),
            ("A".to_owned(), "S".to_owned())
        );
        let uploads = S3Options::credentials_from_file(&file, Some("uploads")).unwrap();
        assert_eq!(uploads, ("UP".to_owned(), "sekrit".to_owned()));
        let error = S3Options::credentials_from_file(&file, Some("other")).unwrap_err();
        assert!(error.contains("no profile [other]"), "{error}");
        let options = S3Options {
            credentials: Some(uploads),
            ..S3Options::default()
        };
        assert!(!format!("{options:?}").contains("sekrit"));
    }
}
