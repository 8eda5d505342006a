//! Reading a document's bytes from its source: a file within the allowed
//! roots, an object of an allowed bucket, or the message itself.

use crate::https::HttpsSources;
use crate::s3::{ObjectRequest, S3Sources};
use docpipe_core::config::{LimitsConfig, SourcesConfig};
use docpipe_core::message::{MessageError, file_path_of};
use docpipe_core::{Classify, ErrorClass, IngestRequest, Source};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a document's bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source is malformed.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The path resolves (after symlinks) outside every allowed root.
    #[error("{path} is outside the allowed roots ({roots}); publish files under an allowed root")]
    OutsideRoots {
        /// The resolved path.
        path: PathBuf,
        /// The allowed roots.
        roots: String,
    },
    /// The file does not exist.
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    /// The path is not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// The document exceeds a size limit.
    #[error("document is {size} bytes; the limit ({setting}) is {limit}")]
    TooLarge {
        /// The document's size.
        size: u64,
        /// The limit.
        limit: u64,
        /// The setting that sets the limit.
        setting: &'static str,
    },
    /// Reading failed for a reason that may pass (I/O error, permissions being fixed).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The object or URL is in no bucket, prefix or host the pipeline
    /// allows, or its host resolves to a non-public address.
    #[error("{uri} is not allowed ({allowed}); see {setting}")]
    NotAllowed {
        /// The object or URL.
        uri: String,
        /// What the setting allows, or why the address is refused.
        allowed: String,
        /// The setting that decides.
        setting: &'static str,
    },
    /// The web server answered with a status that will not change.
    #[error("{uri}: {reason} (HTTP {status})")]
    Refused {
        /// The URL.
        uri: String,
        /// The HTTP status.
        status: u16,
        /// What it means.
        reason: String,
    },
    /// The source redirected more often than the pipeline follows.
    #[error("{uri} redirected more than {limit} times (sources.https.max_redirects)")]
    TooManyRedirects {
        /// The URL first asked for.
        uri: String,
        /// The limit.
        limit: usize,
    },
    /// The object does not exist (or not in the version asked for).
    #[error("{0} does not exist")]
    ObjectNotFound(String),
    /// The store refused the worker's credentials for the object.
    #[error(
        "{uri} cannot be read with the worker's credentials ({message}); grant its key s3:GetObject"
    )]
    Forbidden {
        /// The object.
        uri: String,
        /// What the store said.
        message: String,
    },
    /// The object's ETag is no longer the one the message named.
    #[error(
        "{0} changed since the message was published (its ETag differs); the message about the new content indexes it"
    )]
    Changed(String),
    /// The store failed or could not be reached; retrying may help.
    #[error("cannot read {uri}: {message}")]
    Unavailable {
        /// The object.
        uri: String,
        /// What happened.
        message: String,
    },
    /// The message names an `s3` source and the pipeline reads none.
    #[error("s3 sources are not enabled; add a [sources.s3] section listing the allowed buckets")]
    S3Disabled,
    /// The message names an `https` source and the pipeline reads none.
    #[error(
        "https sources are not enabled; add a [sources.https] section listing the allowed hosts"
    )]
    HttpsDisabled,
    /// No client could be made for the bucket.
    #[error("cannot reach bucket {bucket}: {message}")]
    S3Setup {
        /// The bucket.
        bucket: String,
        /// Why.
        message: String,
    },
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Io { .. } | Self::Unavailable { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Message(error) => error.code(),
            Self::OutsideRoots { .. } => "source_outside_roots",
            Self::NotFound(_) | Self::NotAFile(_) => "source_not_found",
            Self::TooLarge { .. } => "document_too_large",
            Self::Io { .. } => "source_unreadable",
            Self::NotAllowed { .. } | Self::S3Disabled | Self::HttpsDisabled => {
                "source_not_allowed"
            }
            Self::Refused { .. } => "source_refused",
            Self::TooManyRedirects { .. } => "source_redirects_exceeded",
            Self::ObjectNotFound(_) => "source_not_found",
            Self::Forbidden { .. } => "source_forbidden",
            Self::Changed(_) => "source_changed",
            Self::Unavailable { .. } => "source_unavailable",
            Self::S3Setup { .. } => "source_misconfigured",
        }
    }
}

/// Reads sources, confined to canonical allowed roots and buckets.
#[derive(Debug, Clone)]
pub struct SourceReader {
    roots: Vec<PathBuf>,
    max_document_bytes: u64,
    max_inline_bytes: u64,
    s3: Option<Arc<S3Sources>>,
    https: Option<Arc<HttpsSources>>,
}

impl SourceReader {
    /// A reader for the configured roots; every root must exist.
    pub fn new(sources: &SourcesConfig, limits: &LimitsConfig) -> Result<Self, String> {
        let roots = sources
            .allowed_roots
            .iter()
            .map(|root| {
                root.canonicalize().map_err(|error| {
                    format!("allowed root {} cannot be used: {error}", root.display())
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            roots,
            max_document_bytes: limits.max_document_bytes,
            max_inline_bytes: sources.max_inline_bytes,
            s3: sources
                .s3
                .clone()
                .map(S3Sources::new)
                .transpose()?
                .map(Arc::new),
            https: sources
                .https
                .clone()
                .map(HttpsSources::new)
                .transpose()?
                .map(Arc::new),
        })
    }

    /// The canonical allowed roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The document's bytes.
    pub async fn read(&self, request: &IngestRequest) -> Result<Vec<u8>, SourceError> {
        match &request.source {
            Source::Inline { .. } => {
                let bytes = request.inline_bytes()?.unwrap_or_default();
                self.check_size(
                    bytes.len() as u64,
                    self.max_inline_bytes,
                    "sources.max_inline_bytes",
                )?;
                Ok(bytes)
            }
            Source::File { uri } => self.read_file(&file_path_of(uri)?).await,
            Source::S3 {
                uri,
                etag,
                version_id,
            } => {
                let s3 = self.s3.as_ref().ok_or(SourceError::S3Disabled)?;
                let object = ObjectRequest {
                    uri,
                    etag: etag.as_deref(),
                    version_id: version_id.as_deref(),
                };
                s3.read(object, self.max_document_bytes).await
            }
            Source::Https { uri } => {
                let https = self.https.as_ref().ok_or(SourceError::HttpsDisabled)?;
                https.read(uri, self.max_document_bytes).await
            }
        }
    }

    async fn read_file(&self, path: &Path) -> Result<Vec<u8>, SourceError> {
        let io = |source: std::io::Error| match source.kind() {
            ErrorKind::NotFound => SourceError::NotFound(path.to_owned()),
            _ => SourceError::Io {
                path: path.to_owned(),
                source,
            },
        };
        // Canonicalising resolves `..` and symlinks, so the root check below
        // sees where the bytes really are.
        let resolved = tokio::fs::canonicalize(path).await.map_err(io)?;
        if !self.roots.iter().any(|root| resolved.starts_with(root)) {
            return Err(SourceError::OutsideRoots {
                path: resolved,
                roots: self
                    .roots
                    .iter()
                    .map(|root| root.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let metadata = tokio::fs::metadata(&resolved).await.map_err(io)?;
        if !metadata.is_file() {
            return Err(SourceError::NotAFile(resolved));
        }
        self.check_size(
            metadata.len(),
            self.max_document_bytes,
            "limits.max_document_bytes",
        )?;
        tokio::fs::read(&resolved).await.map_err(io)
    }

    fn check_size(&self, size: u64, limit: u64, setting: &'static str) -> Result<(), SourceError> {
        if size > limit {
            return Err(SourceError::TooLarge {
                size,
                limit,
                setting,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{DocumentId, TenantId};

    fn reader(root: &Path) -> SourceReader {
        SourceReader::new(
            &SourcesConfig {
                allowed_roots: vec![root.to_owned()],
                max_inline_bytes: 8,
                s3: None,
                https: None,
            },
            &LimitsConfig {
                max_document_bytes: 16,
                max_pdf_pages: 1,
                max_html_depth: 1,
                parse_timeout_secs: 1,
                max_chunks_per_document: 1,
                max_text_bytes: 1,
                max_unpacked_bytes: 1,
                max_archive_entries: 1,
                max_compression_ratio: 1,
                max_sheet_cells: 1,
            },
        )
        .unwrap()
    }

    fn file_request(path: &Path) -> IngestRequest {
        let uri = url::Url::from_file_path(path).unwrap().to_string();
        IngestRequest::for_file(
            TenantId::new("t").unwrap(),
            DocumentId::new("d").unwrap(),
            uri,
        )
    }

    #[tokio::test]
    async fn reads_files_under_the_root_and_nothing_else() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("ok.html"), "<p>hi</p>").unwrap();
        std::fs::write(outside.path().join("secret.html"), "<p>no</p>").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.html"),
            root.path().join("link.html"),
        )
        .unwrap();
        let reader = reader(root.path());

        let ok = reader
            .read(&file_request(&root.path().join("ok.html")))
            .await
            .unwrap();
        assert_eq!(ok, b"<p>hi</p>");

        let dotdot = root
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("secret.html");
        for escape in [
            dotdot,
            root.path().join("link.html"),
            outside.path().join("secret.html"),
        ] {
            let error = reader.read(&file_request(&escape)).await.unwrap_err();
            assert!(
                matches!(error, SourceError::OutsideRoots { .. }),
                "{escape:?}: {error}"
            );
            assert_eq!(error.class(), ErrorClass::Permanent);
        }
    }

    #[tokio::test]
    async fn missing_and_oversized_files_are_permanent_failures() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("big.html"), "x".repeat(17)).unwrap();
        let reader = reader(root.path());
        let missing = reader
            .read(&file_request(&root.path().join("nope.pdf")))
            .await
            .unwrap_err();
        assert!(matches!(missing, SourceError::NotFound(_)));
        let big = reader
            .read(&file_request(&root.path().join("big.html")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                big,
                SourceError::TooLarge {
                    size: 17,
                    limit: 16,
                    ..
                }
            ),
            "{big}"
        );
    }

    #[tokio::test]
    async fn inline_sources_have_their_own_limit() {
        let root = tempfile::tempdir().unwrap();
        let reader = reader(root.path());
        let (tenant, document) = (TenantId::new("t").unwrap(), DocumentId::new("d").unwrap());
        let small = IngestRequest::inline(tenant.clone(), document.clone(), b"<p>x</p>");
        assert_eq!(reader.read(&small).await.unwrap(), b"<p>x</p>");
        let large = IngestRequest::inline(tenant, document, b"<p>too long</p>");
        assert!(matches!(
            reader.read(&large).await,
            Err(SourceError::TooLarge { .. })
        ));
    }
}
