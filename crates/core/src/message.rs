//! The ingest request: the versioned JSON contract between upload services
//! and docpipe workers.
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "document_id": "guides/rabbitmq-operations",
//!   "tenant": "acme",
//!   "source": { "type": "file", "uri": "file:///srv/docs/guides/rabbitmq-operations.pdf" },
//!   "content_type": "application/pdf",
//!   "metadata": { "uploaded_by": "alice" }
//! }
//! ```
//!
//! `source` may instead be `{ "type": "inline", "base64": "..." }` for small
//! documents. `content_type` is optional (the worker sniffs `%PDF-` / HTML);
//! `metadata` is free JSON (at most 8 KiB), stored with every chunk and
//! filterable (see [`crate::metadata`]). Unknown top-level fields
//! are rejected so that a misspelt field never goes unnoticed.
//!
//! Two more actions share the queue ([`Request`]): `"action": "remove"`
//! (tenant and document id only) deletes a document from the index, and
//! `"action": "reindex"` (plus `"generation"`) rebuilds one live document in
//! a generation being built by `docpipe reindex`. A message without
//! `action` is an ingest request.

use crate::error::{Classify, ErrorClass};
use crate::ids::{DocumentId, PipelineVersion, TenantId};
use crate::metadata::MAX_METADATA_BYTES;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A request to ingest (or re-ingest) one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Always [`SCHEMA_VERSION`] for requests this build understands.
    pub schema_version: u32,
    /// The publisher's id for the document, unique within the tenant.
    pub document_id: DocumentId,
    /// Whose document this is; searches never cross tenants.
    pub tenant: TenantId,
    /// Where the bytes are.
    pub source: Source,
    /// The declared media type, e.g. `application/pdf` or `text/html; charset=windows-1252`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Free metadata (at most [`MAX_METADATA_BYTES`] as JSON), stored with
    /// every chunk; searches filter on its top-level values.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The publisher's version of the document; larger is newer (the
    /// upload's time in milliseconds, an object's sequence number). When
    /// two versions of one document are in flight on different workers, the
    /// stores end up holding the larger one's chunks, whatever the order the
    /// workers finish in. Requests without it are version 0: among them the
    /// last one written wins.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub document_version: u64,
}

fn is_zero(version: &u64) -> bool {
    *version == 0
}

/// Where a document's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A `file://` URI, which must resolve under one of the worker's allowed roots.
    File {
        /// An absolute `file://` URI.
        uri: String,
    },
    /// The document itself, base64-encoded (standard alphabet, padded).
    Inline {
        /// The encoded bytes.
        base64: String,
    },
    /// An object in S3-compatible storage, in a bucket (and under a prefix)
    /// the workers' `sources.s3.allowed` lists.
    S3 {
        /// `s3://bucket/key`.
        uri: String,
        /// The object's ETag as the publisher saw it: the worker reads that
        /// content or fails (`source_changed`) rather than index another.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
        /// The object version to read, in a bucket with versioning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
    },
    /// A document on a web server the workers' `sources.https` allows.
    Https {
        /// An `https://` URL.
        uri: String,
    },
}

impl Source {
    /// How stores record where a document came from: the file or object
    /// URI, or `inline`.
    pub fn stored_form(&self) -> String {
        match self {
            Self::File { uri } | Self::S3 { uri, .. } | Self::Https { uri } => uri.clone(),
            Self::Inline { .. } => "inline".to_owned(),
        }
    }
}

/// The name of the file, object or page a source URI (as
/// [`Source::stored_form`] gives it) points at, without its directories:
/// the last segment of a `file://` path or an `https://` page's path
/// (percent-decoded), or of an `s3://` key (keys are not percent-encoded
/// there). `None` for inline documents, for URIs none of
/// [`file_path_of`], [`https_url_of`] and [`s3_location_of`] accept, and
/// for paths that end in `/`.
pub fn file_name_in_uri(uri: &str) -> Option<String> {
    let name = if uri.starts_with("s3://") {
        let (_, key) = s3_location_of(uri).ok()?;
        key.rsplit('/').next().map(str::to_owned)
    } else if uri.starts_with("https://") {
        let url = https_url_of(uri).ok()?;
        let last = url.path_segments()?.next_back()?;
        Some(
            percent_encoding::percent_decode_str(last)
                .decode_utf8_lossy()
                .into_owned(),
        )
    } else if uri.ends_with('/') {
        None
    } else {
        let path = file_path_of(uri).ok()?;
        path.file_name()?.to_str().map(str::to_owned)
    }?;
    (!name.trim().is_empty()).then_some(name)
}

/// The URL of an `https` source: `https://` with a host.
pub fn https_url_of(uri: &str) -> Result<url::Url, MessageError> {
    let invalid = |reason: String| MessageError::InvalidSource {
        uri: uri.to_owned(),
        reason,
    };
    let url = url::Url::parse(uri).map_err(|error| invalid(format!("not a URL ({error})")))?;
    if url.scheme() != "https" {
        return Err(invalid(format!(
            "scheme {:?}: https sources are fetched over TLS only",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are refused (they would be stored with every chunk)".into(),
        ));
    }
    Ok(url)
}

/// The bucket and key an `s3://bucket/key` URI names.
pub fn s3_location_of(uri: &str) -> Result<(String, String), MessageError> {
    let invalid = |reason: &str| MessageError::InvalidSource {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("an s3 source's URI starts with s3://"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| invalid("expected s3://bucket/key"))?;
    if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
        return Err(invalid("expected s3://bucket/key naming one object"));
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

/// Any message on the ingest queues, told apart by its `action` field.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Index (or re-index) a document from its source (no `action`, or `"index"`).
    Index(IngestRequest),
    /// Remove a document from the index (`"action": "remove"`).
    Remove(RemoveRequest),
    /// Rebuild a live document in a generation being built (`"action": "reindex"`).
    Reindex(ReindexRequest),
}

/// A request to remove one document from every generation of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The document to remove.
    pub document_id: DocumentId,
    /// Its tenant.
    pub tenant: TenantId,
}

/// A request to rebuild one document of the live generation in another
/// generation, from the parsed copy kept when it was indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReindexRequest {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The document to rebuild.
    pub document_id: DocumentId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The generation (pipeline version) to rebuild it in.
    pub generation: PipelineVersion,
}

impl Request {
    /// A remove request.
    pub fn remove(tenant: TenantId, document_id: DocumentId) -> Self {
        Self::Remove(RemoveRequest {
            schema_version: SCHEMA_VERSION,
            document_id,
            tenant,
        })
    }

    /// A reindex request.
    pub fn reindex(tenant: TenantId, document_id: DocumentId, generation: PipelineVersion) -> Self {
        Self::Reindex(ReindexRequest {
            schema_version: SCHEMA_VERSION,
            document_id,
            tenant,
            generation,
        })
    }

    /// The tenant the request is about.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Index(request) => &request.tenant,
            Self::Remove(request) => &request.tenant,
            Self::Reindex(request) => &request.tenant,
        }
    }

    /// The document the request is about.
    pub fn document_id(&self) -> &DocumentId {
        match self {
            Self::Index(request) => &request.document_id,
            Self::Remove(request) => &request.document_id,
            Self::Reindex(request) => &request.document_id,
        }
    }

    /// Decodes and validates a message body of any action.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let mut object = versioned_object(body)?;
        let action = match object.remove("action") {
            None => "index".to_owned(),
            Some(serde_json::Value::String(action)) => action,
            Some(other) => {
                return Err(MessageError::InvalidField(format!(
                    "`action` must be a string, not {other}"
                )));
            }
        };
        let fields = |error: serde_json::Error| MessageError::InvalidField(error.to_string());
        let value = serde_json::Value::Object(object);
        match action.as_str() {
            "index" => IngestRequest::validate(serde_json::from_value(value).map_err(fields)?)
                .map(Self::Index),
            "remove" => Ok(Self::Remove(serde_json::from_value(value).map_err(fields)?)),
            "reindex" => Ok(Self::Reindex(
                serde_json::from_value(value).map_err(fields)?,
            )),
            other => Err(MessageError::InvalidField(format!(
                "unknown action {other:?}; expected \"index\", \"remove\" or \"reindex\""
            ))),
        }
    }

    /// Encodes the request as its JSON wire form.
    pub fn encode(&self) -> Vec<u8> {
        let (action, mut value) = match self {
            Self::Index(request) => return request.encode(),
            Self::Remove(request) => ("remove", serde_json::to_value(request)),
            Self::Reindex(request) => ("reindex", serde_json::to_value(request)),
        };
        let value = value
            .as_mut()
            .expect("requests always serialize")
            .as_object_mut()
            .expect("requests serialize as objects");
        value.insert("action".into(), action.into());
        serde_json::to_vec(value).expect("requests always serialize")
    }
}

/// The body as a JSON object with the schema version this build reads.
/// The version is checked before anything else, so a request from a newer
/// publisher is reported as such rather than as a confusing field error.
fn versioned_object(
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, MessageError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| MessageError::MalformedJson(error.to_string()))?;
    let serde_json::Value::Object(object) = value else {
        return Err(MessageError::NotAnObject);
    };
    let version = object
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or(MessageError::MissingSchemaVersion)?;
    if version != u64::from(SCHEMA_VERSION) {
        return Err(MessageError::UnsupportedSchemaVersion(version));
    }
    Ok(object)
}

/// The document formats docpipe parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    /// `application/pdf`.
    Pdf,
    /// `text/html` or `application/xhtml+xml`.
    Html,
    /// `image/png`, `image/jpeg` or `image/tiff`: a photo or scan of text,
    /// read by OCR when the pipeline turns it on (`parse.ocr`).
    Image,
    /// A Word document (Office Open XML).
    Docx,
    /// A PowerPoint presentation (Office Open XML).
    Pptx,
    /// An Excel workbook (Office Open XML).
    Xlsx,
    /// An OpenDocument text.
    Odt,
    /// An OpenDocument spreadsheet.
    Ods,
    /// An OpenDocument presentation.
    Odp,
    /// An EPUB book.
    Epub,
    /// `text/markdown`: CommonMark with tables.
    Markdown,
    /// `text/plain`, in any charset (detected when not declared).
    Text,
    /// Rich Text Format.
    Rtf,
    /// `text/csv` or `text/tab-separated-values`: a table.
    Csv,
}

/// Media types and the formats they declare, the first of each format
/// being its canonical name.
const MEDIA_TYPES: [(&str, DocumentFormat); 19] = [
    ("application/pdf", DocumentFormat::Pdf),
    ("text/html", DocumentFormat::Html),
    ("application/xhtml+xml", DocumentFormat::Html),
    ("image/png", DocumentFormat::Image),
    ("image/jpeg", DocumentFormat::Image),
    ("image/tiff", DocumentFormat::Image),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        DocumentFormat::Docx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        DocumentFormat::Pptx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        DocumentFormat::Xlsx,
    ),
    (
        "application/vnd.oasis.opendocument.text",
        DocumentFormat::Odt,
    ),
    (
        "application/vnd.oasis.opendocument.spreadsheet",
        DocumentFormat::Ods,
    ),
    (
        "application/vnd.oasis.opendocument.presentation",
        DocumentFormat::Odp,
    ),
    ("application/epub+zip", DocumentFormat::Epub),
    ("text/markdown", DocumentFormat::Markdown),
    ("text/plain", DocumentFormat::Text),
    ("application/rtf", DocumentFormat::Rtf),
    ("text/rtf", DocumentFormat::Rtf),
    ("text/csv", DocumentFormat::Csv),
    ("text/tab-separated-values", DocumentFormat::Csv),
];

/// File extensions and the formats they name (lower case).
const EXTENSIONS: [(&str, DocumentFormat); 22] = [
    ("pdf", DocumentFormat::Pdf),
    ("html", DocumentFormat::Html),
    ("htm", DocumentFormat::Html),
    ("xhtml", DocumentFormat::Html),
    ("png", DocumentFormat::Image),
    ("jpg", DocumentFormat::Image),
    ("jpeg", DocumentFormat::Image),
    ("tif", DocumentFormat::Image),
    ("tiff", DocumentFormat::Image),
    ("docx", DocumentFormat::Docx),
    ("pptx", DocumentFormat::Pptx),
    ("xlsx", DocumentFormat::Xlsx),
    ("odt", DocumentFormat::Odt),
    ("ods", DocumentFormat::Ods),
    ("odp", DocumentFormat::Odp),
    ("epub", DocumentFormat::Epub),
    ("md", DocumentFormat::Markdown),
    ("markdown", DocumentFormat::Markdown),
    ("txt", DocumentFormat::Text),
    ("rtf", DocumentFormat::Rtf),
    ("csv", DocumentFormat::Csv),
    ("tsv", DocumentFormat::Csv),
];

impl DocumentFormat {
    /// The format a media type (without parameters, any case) declares.
    pub fn from_media_type(essence: &str) -> Option<Self> {
        let essence = essence.trim().to_ascii_lowercase();
        let essence = match essence.as_str() {
            "text/x-markdown" => "text/markdown",
            other => other,
        };
        MEDIA_TYPES
            .iter()
            .find(|(media_type, _)| *media_type == essence)
            .map(|(_, format)| *format)
    }

    /// The format a file extension names (any case), if docpipe reads it.
    pub fn from_extension(extension: &str) -> Option<Self> {
        EXTENSIONS
            .iter()
            .find(|(known, _)| extension.eq_ignore_ascii_case(known))
            .map(|(_, format)| *format)
    }

    /// The canonical media type.
    pub fn media_type(self) -> &'static str {
        MEDIA_TYPES
            .iter()
            .find(|(_, format)| *format == self)
            .map(|(media_type, _)| *media_type)
            .expect("every format has a media type")
    }

    /// The name people know the format by, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Html => "HTML",
            Self::Image => "an image",
            Self::Docx => "a Word document (DOCX)",
            Self::Pptx => "a PowerPoint presentation (PPTX)",
            Self::Xlsx => "an Excel workbook (XLSX)",
            Self::Odt => "an OpenDocument text (ODT)",
            Self::Ods => "an OpenDocument spreadsheet (ODS)",
            Self::Odp => "an OpenDocument presentation (ODP)",
            Self::Epub => "an EPUB book",
            Self::Markdown => "Markdown",
            Self::Text => "plain text",
            Self::Rtf => "RTF",
            Self::Csv => "CSV",
        }
    }

    /// Whether the format is text a person could have typed, which
    /// sniffing cannot tell apart (plain text, Markdown, HTML).
    pub fn is_plain_text_family(self) -> bool {
        matches!(self, Self::Html | Self::Markdown | Self::Text | Self::Csv)
    }
}

/// A parsed `content_type`: the format and an optional charset parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredType {
    /// The declared format.
    pub format: DocumentFormat,
    /// The `charset` parameter, lower-cased, if any.
    pub charset: Option<String>,
}

/// Why a message is not a valid ingest request. Always permanent: the same
/// bytes will never decode differently.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    /// The body is not JSON at all.
    #[error("message body is not valid JSON ({0}); publish a JSON ingest request")]
    MalformedJson(String),
    /// The body is JSON but not an object.
    #[error("message body is JSON but not an object; publish a JSON ingest request object")]
    NotAnObject,
    /// `schema_version` is missing or not an integer.
    #[error(
        "message has no integer `schema_version`; this worker reads schema version {SCHEMA_VERSION}"
    )]
    MissingSchemaVersion,
    /// `schema_version` names a version this build does not read.
    #[error(
        "message has schema_version {0}, but this worker reads only schema version {SCHEMA_VERSION}"
    )]
    UnsupportedSchemaVersion(u64),
    /// A field is missing, misspelt, of the wrong type or invalid.
    #[error("invalid request: {0}")]
    InvalidField(String),
    /// `content_type` names a media type docpipe does not parse.
    #[error(
        "unsupported content_type {0:?}; docpipe parses PDF, HTML, Markdown, plain text, CSV, RTF, DOCX, PPTX, XLSX, ODT, ODS, ODP, EPUB and (with OCR) PNG, JPEG and TIFF images; docs/message-contract.md lists their media types"
    )]
    UnsupportedContentType(String),
    /// The `file` source URI is unusable.
    #[error("invalid file source {uri:?}: {reason}")]
    InvalidFileUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another kind of source names no usable location.
    #[error("invalid source {uri:?}: {reason}")]
    InvalidSource {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The inline source is not valid base64.
    #[error("inline source is not valid base64 ({0})")]
    InvalidBase64(String),
}

impl Classify for MessageError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) | Self::NotAnObject => "malformed_message",
            Self::MissingSchemaVersion | Self::UnsupportedSchemaVersion(_) => "unsupported_schema",
            Self::InvalidField(_) => "invalid_message",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::InvalidFileUri { .. } | Self::InvalidSource { .. } => "invalid_source",
            Self::InvalidBase64(_) => "invalid_source",
        }
    }
}

impl IngestRequest {
    /// A request for a file the worker can read at `uri`.
    pub fn for_file(tenant: TenantId, document_id: DocumentId, uri: String) -> Self {
        Self::for_source(tenant, document_id, Source::File { uri })
    }

    /// A request for the document at `source`.
    pub fn for_source(tenant: TenantId, document_id: DocumentId, source: Source) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            document_id,
            tenant,
            source,
            content_type: None,
            metadata: serde_json::Map::new(),
            document_version: 0,
        }
    }

    /// A request carrying the document's bytes inline.
    pub fn inline(tenant: TenantId, document_id: DocumentId, bytes: &[u8]) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            document_id,
            tenant,
            source: Source::Inline {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
            content_type: None,
            metadata: serde_json::Map::new(),
            document_version: 0,
        }
    }

    /// The same request, stamped with the publisher's `document_version`.
    pub fn with_document_version(mut self, document_version: u64) -> Self {
        self.document_version = document_version;
        self
    }

    /// Decodes and validates an ingest request body (no `action` field).
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let object = versioned_object(body)?;
        let request: Self = serde_json::from_value(serde_json::Value::Object(object))
            .map_err(|error| MessageError::InvalidField(error.to_string()))?;
        Self::validate(request)
    }

    /// Checks what serde cannot: the content type, the source's form and
    /// the size of the metadata.
    fn validate(request: Self) -> Result<Self, MessageError> {
        request.declared_type()?;
        let metadata_bytes = serde_json::to_vec(&request.metadata)
            .expect("a JSON object always serializes")
            .len();
        if metadata_bytes > MAX_METADATA_BYTES {
            return Err(MessageError::InvalidField(format!(
                "metadata is {metadata_bytes} bytes of JSON; at most {MAX_METADATA_BYTES} are \
                 accepted, as every chunk of the document stores it: keep large data in the \
                 document or elsewhere and put a reference in the metadata"
            )));
        }
        match &request.source {
            Source::File { uri } => {
                file_path_of(uri)?;
            }
            Source::Inline { .. } => {
                request.inline_bytes()?;
            }
            Source::S3 { uri, .. } => {
                s3_location_of(uri)?;
            }
            Source::Https { uri } => {
                https_url_of(uri)?;
            }
        }
        Ok(request)
    }

    /// Encodes the request as its JSON wire form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an ingest request always serializes")
    }

    /// The parsed `content_type`, if one was declared.
    pub fn declared_type(&self) -> Result<Option<DeclaredType>, MessageError> {
        self.content_type
            .as_deref()
            .map(parse_content_type)
            .transpose()
    }

    /// The decoded bytes of an inline source (`None` for file sources).
    pub fn inline_bytes(&self) -> Result<Option<Vec<u8>>, MessageError> {
        match &self.source {
            Source::Inline { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(Some)
                .map_err(|error| MessageError::InvalidBase64(error.to_string())),
            Source::File { .. } | Source::S3 { .. } | Source::Https { .. } => Ok(None),
        }
    }
}

/// The absolute local path named by a `file://` URI. Allowed-root checks are
/// the fetcher's job; this only checks the URI's form.
pub fn file_path_of(uri: &str) -> Result<std::path::PathBuf, MessageError> {
    let invalid = |reason: &str| MessageError::InvalidFileUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(uri).map_err(|error| invalid(&format!("not a URI ({error})")))?;
    if url.scheme() != "file" {
        return Err(invalid(&format!(
            "scheme {:?} is not supported by file sources; use file://, or an s3 or inline source",
            url.scheme()
        )));
    }
    if url
        .host_str()
        .is_some_and(|host| !host.is_empty() && host != "localhost")
    {
        return Err(invalid("remote hosts are not supported in file URIs"));
    }
    url.to_file_path()
        .map_err(|()| invalid("the URI does not name an absolute local path"))
}

fn parse_content_type(raw: &str) -> Result<DeclaredType, MessageError> {
    let mut parts = raw.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let format = DocumentFormat::from_media_type(&essence)
        .ok_or_else(|| MessageError::UnsupportedContentType(raw.to_owned()))?;
    let charset = parts.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("charset"))
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    Ok(DeclaredType { format, charset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_source_uri_names_its_file_without_directories_or_query() {
        let name = |uri: &str| file_name_in_uri(uri);
        assert_eq!(
            name("file:///docs/Q3%20report.pdf").as_deref(),
            Some("Q3 report.pdf")
        );
        assert_eq!(name("file:///docs/"), None);
        let page = "https://example.org/guide/install.html?lang=en#top";
        assert_eq!(name(page).as_deref(), Some("install.html"));
        // Keys are not percent-encoded in s3:// URIs.
        assert_eq!(
            name("s3://bucket/reports/100%25.pdf").as_deref(),
            Some("100%25.pdf")
        );
        assert_eq!(name("inline"), None);
        // A site's root page has no file name.
        assert_eq!(name("https://example.org"), None);
    }

    fn decode(value: serde_json::Value) -> Result<IngestRequest, MessageError> {
        IngestRequest::decode(value.to_string().as_bytes())
    }

    fn valid() -> serde_json::Value {
        json!({
            "schema_version": 1,
            "document_id": "guides/intro",
            "tenant": "acme",
            "source": {"type": "file", "uri": "file:///srv/docs/intro.pdf"},
            "metadata": {"k": [1, 2]}
        })
    }

    #[test]
    fn a_valid_request_round_trips() {
        let request = decode(valid()).unwrap();
        assert_eq!(request.document_id.as_str(), "guides/intro");
        assert_eq!(IngestRequest::decode(&request.encode()).unwrap(), request);
    }

    #[test]
    fn metadata_stored_with_every_chunk_is_kept_small() {
        let mut large = valid();
        large["metadata"] = json!({ "notes": "x".repeat(MAX_METADATA_BYTES) });
        let error = decode(large).unwrap_err();
        assert!(error.to_string().contains("every chunk"), "{error}");
        assert_eq!(error.class(), ErrorClass::Permanent);
    }

    #[test]
    fn malformed_json_is_reported_as_such() {
        let error = IngestRequest::decode(b"{not json").unwrap_err();
        assert!(matches!(error, MessageError::MalformedJson(_)));
        assert_eq!(error.class(), ErrorClass::Permanent);
    }

    #[test]
    fn schema_version_is_checked_before_fields() {
        let error = decode(json!({"schema_version": 2, "whatever": true})).unwrap_err();
        assert_eq!(error, MessageError::UnsupportedSchemaVersion(2));
        assert_eq!(
            decode(json!({"document_id": "x"})).unwrap_err(),
            MessageError::MissingSchemaVersion
        );
    }

    #[test]
    fn missing_and_misspelt_fields_are_named() {
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("tenant");
        assert!(
            decode(missing)
                .unwrap_err()
                .to_string()
                .contains("missing field `tenant`")
        );

        let mut misspelt = valid();
        misspelt["tennant"] = json!("acme");
        assert!(
            decode(misspelt)
                .unwrap_err()
                .to_string()
                .contains("unknown field `tennant`")
        );
    }

    #[test]
    fn sources_are_checked_for_form() {
        let mut relative = valid();
        relative["source"]["uri"] = json!("docs/intro.pdf");
        assert!(matches!(
            decode(relative),
            Err(MessageError::InvalidFileUri { .. })
        ));

        let mut http = valid();
        http["source"]["uri"] = json!("http://example.com/a.pdf");
        let error = decode(http).unwrap_err().to_string();
        assert!(
            error.contains("scheme \"http\" is not supported"),
            "{error}"
        );

        let mut bad_inline = valid();
        bad_inline["source"] = json!({"type": "inline", "base64": "***"});
        assert!(matches!(
            decode(bad_inline),
            Err(MessageError::InvalidBase64(_))
        ));
    }

    #[test]
    fn content_types_are_parsed_with_their_charset() {
        let mut html = valid();
        html["content_type"] = json!("Text/HTML; charset=\"Windows-1252\"");
        let declared = decode(html).unwrap().declared_type().unwrap().unwrap();
        assert_eq!(declared.format, DocumentFormat::Html);
        assert_eq!(declared.charset.as_deref(), Some("windows-1252"));

        let mut word = valid();
        word["content_type"] = json!("application/msword");
        assert!(matches!(
            decode(word),
            Err(MessageError::UnsupportedContentType(_))
        ));
    }

    #[test]
    fn every_action_round_trips_and_plain_requests_are_ingests() {
        let (tenant, document) = (
            TenantId::new("acme").unwrap(),
            DocumentId::new("a/b").unwrap(),
        );
        let version = PipelineVersion::from_stored("small@3fa2b1c9d0e1".into());
        for request in [
            Request::Index(decode(valid()).unwrap()),
            Request::remove(tenant.clone(), document.clone()),
            Request::reindex(tenant, document, version),
        ] {
            assert_eq!(Request::decode(&request.encode()).unwrap(), request);
        }
        let plain = Request::decode(valid().to_string().as_bytes()).unwrap();
        assert!(matches!(plain, Request::Index(_)));
        let mut explicit = valid();
        explicit["action"] = json!("index");
        assert_eq!(
            Request::decode(explicit.to_string().as_bytes()).unwrap(),
            plain
        );
    }

    #[test]
    fn unknown_actions_and_stray_fields_are_named() {
        let mut unknown = valid();
        unknown["action"] = json!("purge");
        let error = Request::decode(unknown.to_string().as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("unknown action \"purge\""),
            "{error}"
        );

        let mut remove_with_source = valid();
        remove_with_source["action"] = json!("remove");
        let error = Request::decode(remove_with_source.to_string().as_bytes()).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");

        let reindex =
            json!({"schema_version": 1, "action": "reindex", "tenant": "acme", "document_id": "x"});
        let error = Request::decode(reindex.to_string().as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("missing field `generation`"),
            "{error}"
        );
    }

    #[test]
    fn invalid_ids_are_rejected_with_the_reason() {
        let mut bad = valid();
        bad["tenant"] = json!("acme\" or 1");
        let error = decode(bad).unwrap_err().to_string();
        assert!(error.contains("tenant"), "{error}");
    }
}
