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
//! `metadata` is free JSON, carried along untouched. Unknown top-level fields
//! are rejected so that a misspelt field never goes unnoticed.

use crate::error::{Classify, ErrorClass};
use crate::ids::{DocumentId, TenantId};
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
    /// Free metadata, carried along untouched.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
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
}

/// The two document formats docpipe parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentFormat {
    /// `application/pdf`.
    Pdf,
    /// `text/html` or `application/xhtml+xml`.
    Html,
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
    #[error("invalid ingest request: {0}")]
    InvalidField(String),
    /// `content_type` names a media type docpipe does not parse.
    #[error("unsupported content_type {0:?}; docpipe parses application/pdf and text/html")]
    UnsupportedContentType(String),
    /// The `file` source URI is unusable.
    #[error("invalid file source {uri:?}: {reason}")]
    InvalidFileUri {
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
            Self::InvalidFileUri { .. } => "invalid_source",
            Self::InvalidBase64(_) => "invalid_source",
        }
    }
}

impl IngestRequest {
    /// A request for a file the worker can read at `uri`.
    pub fn for_file(tenant: TenantId, document_id: DocumentId, uri: String) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            document_id,
            tenant,
            source: Source::File { uri },
            content_type: None,
            metadata: serde_json::Map::new(),
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
        }
    }

    /// Decodes and validates a message body. Checks the schema version first,
    /// so a request from a newer publisher is reported as such rather than as
    /// a confusing field error.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|error| MessageError::MalformedJson(error.to_string()))?;
        let object = value.as_object().ok_or(MessageError::NotAnObject)?;
        let version = object
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or(MessageError::MissingSchemaVersion)?;
        if version != u64::from(SCHEMA_VERSION) {
            return Err(MessageError::UnsupportedSchemaVersion(version));
        }
        let request: Self = serde_json::from_value(value)
            .map_err(|error| MessageError::InvalidField(error.to_string()))?;
        request.declared_type()?;
        match &request.source {
            Source::File { uri } => {
                file_path_of(uri)?;
            }
            Source::Inline { .. } => {
                request.inline_bytes()?;
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
            Source::File { .. } => Ok(None),
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
            "scheme {:?} is not supported; use file:// or an inline source",
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
    let format = match essence.as_str() {
        "application/pdf" => DocumentFormat::Pdf,
        "text/html" | "application/xhtml+xml" => DocumentFormat::Html,
        _ => return Err(MessageError::UnsupportedContentType(raw.to_owned())),
    };
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
    fn invalid_ids_are_rejected_with_the_reason() {
        let mut bad = valid();
        bad["tenant"] = json!("acme\" or 1");
        let error = decode(bad).unwrap_err().to_string();
        assert!(error.contains("tenant"), "{error}");
    }
}
