//! Reading Milvus' columnar results, and classifying its errors.

use crate::STORE;
use docpipe_core::{ChunkId, ContentHash, StoreError, StoredChunk};
use milvus::v2::error::{Error, ServerError};
use milvus::v2::prelude::*;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

/// A varchar field of a collection schema.
pub(crate) fn varchar(name: &str, max_length: u32) -> milvus::v2::FieldSchema {
    milvus::v2::FieldSchema::new()
        .name(name)
        .data_type(milvus::v2::DataType::VarChar)
        .max_length(max_length)
}

/// An int64 field of a collection schema.
pub(crate) fn int64(name: &str) -> milvus::v2::FieldSchema {
    milvus::v2::FieldSchema::new()
        .name(name)
        .data_type(milvus::v2::DataType::Int64)
}

/// `["a","b"]`, for `in` filters.
pub(crate) fn quoted_list(ids: &[impl std::fmt::Display]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

pub(crate) fn varchar_ids(ids: &Ids) -> Result<&[String], StoreError> {
    match ids {
        Ids::VarChar(ids) => Ok(ids),
        Ids::Int64(ids) if ids.is_empty() => Ok(&[]),
        _ => Err(malformed("expected varchar primary keys".into())),
    }
}

pub(crate) fn varchar_column<'a>(
    field: Option<&'a FieldData>,
    name: &str,
) -> Result<&'a [String], StoreError> {
    field
        .and_then(FieldData::as_varchar)
        .ok_or_else(|| malformed(format!("response has no varchar column {name}")))
}

pub(crate) fn int64_column<'a>(
    field: Option<&'a FieldData>,
    name: &str,
) -> Result<&'a [i64], StoreError> {
    field
        .and_then(FieldData::as_int64)
        .ok_or_else(|| malformed(format!("response has no int64 column {name}")))
}

/// The stored chunks in the columns of a query's result (`column` gives
/// each by name), reading `document_version` where the store keeps it.
pub(crate) fn stored_chunks<'a>(
    column: impl Fn(&str) -> Option<&'a FieldData>,
    versioned: bool,
) -> Result<Vec<StoredChunk>, StoreError> {
    let text = |name| varchar_column(column(name), name);
    let (ids, hashes) = (text("chunk_id")?, text("content_hash")?);
    let (versions, sources) = (text("pipeline_version")?, text("source")?);
    let document_versions = versioned
        .then(|| int64_column(column("document_version"), "document_version"))
        .transpose()?;
    let metadata = crate::added::metadata_column(column(crate::added::METADATA), ids.len())?;
    Ok(metadata
        .into_iter()
        .enumerate()
        .map(|(row, metadata)| StoredChunk {
            id: ChunkId::from_stored(ids[row].clone()),
            content_hash: ContentHash::from_stored(hashes[row].clone()),
            pipeline_version: versions[row].clone(),
            source: sources[row].clone(),
            document_version: document_versions.map(|versions| versions[row].max(0) as u64),
            metadata,
        })
        .collect())
}

pub(crate) fn malformed(message: String) -> StoreError {
    StoreError::Rejected {
        store: STORE,
        message,
    }
}

/// What Milvus says when the request itself is wrong (Milvus 2.3 reports
/// these with the catch-all code 65535, so the message is all there is).
const CALLER_ERRORS: [&str; 6] = [
    "is invalid",
    "should be larger than",
    "should be in range",
    "invalid parameter",
    "out of range",
    "cannot parse expression",
];

/// Milvus 2.4+ codes 1100 to 1199: a parameter is invalid or missing.
const PARAMETER_ERROR_CODES: std::ops::Range<i32> = 1100..1200;

/// Whether a server error is the caller's: retrying the same request cannot help.
fn is_callers_error(error: &ServerError) -> bool {
    PARAMETER_ERROR_CODES.contains(&error.code())
        || CALLER_ERRORS
            .iter()
            .any(|phrase| error.reason().contains(phrase))
}

/// gRPC's codes for "who are you?" and "not you": fixed by the gRPC
/// protocol, whichever tonic the SDK links.
const UNAUTHENTICATED: i32 = 16;
const PERMISSION_DENIED: i32 = 7;

/// Whether Milvus refused docpipe's credentials, or their absence.
/// Milvus 2.3 answers a missing or wrong sign-in with gRPC's
/// Unauthenticated; Milvus 2.4+ also with its own code 1800 and later.
pub(crate) fn signing_in_refused(error: &Error) -> bool {
    match error {
        Error::Grpc(status) => matches!(
            i32::from(status.code()),
            UNAUTHENTICATED | PERMISSION_DENIED
        ),
        Error::Server(server) => {
            let reason = server.reason();
            reason.contains("auth check failure") || reason.contains("permission deny")
        }
        Error::RetryExhausted { source, .. } => signing_in_refused(source),
        _ => false,
    }
}

/// A refused sign-in, with what to do about it. Permanent: the same
/// credentials will be refused again.
pub(crate) fn refused_sign_in(error: &Error) -> StoreError {
    let reason = match error {
        Error::Grpc(status) => status.message().to_owned(),
        Error::RetryExhausted { source, .. } => return refused_sign_in(source),
        other => other.to_string(),
    };
    StoreError::Rejected {
        store: STORE,
        message: format!(
            "it refused docpipe's credentials, or their absence ({reason}); give docpipe a \
             user and password or a token, with the privileges it needs, in \
             milvus.credentials_file, DOCPIPE_MILVUS_TOKEN, or DOCPIPE_MILVUS_USER and \
             DOCPIPE_MILVUS_PASSWORD"
        ),
    }
}

/// Transport failures, timeouts and server-side trouble may pass
/// ([`StoreError::Unavailable`]); requests the SDK cannot build, and
/// requests the server refuses as malformed, will not
/// ([`StoreError::Rejected`]). Unknown server errors count as transient: a
/// wrong guess then costs retries, not a document.
pub(crate) fn classify(error: Error) -> StoreError {
    let message = error.to_string();
    if signing_in_refused(&error) {
        return refused_sign_in(&error);
    }
    match error {
        Error::Validation(_) | Error::Conversion(_) => StoreError::Rejected {
            store: STORE,
            message,
        },
        Error::Server(server) if is_callers_error(&server) => StoreError::Rejected {
            store: STORE,
            message,
        },
        _ => StoreError::Unavailable {
            store: STORE,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{Classify, ErrorClass};
    use milvus::proto::common::Status;

    fn server_error(code: i32, reason: &str) -> Error {
        Error::from(Status {
            code,
            reason: reason.into(),
            ..Status::default()
        })
    }

    #[test]
    fn a_request_milvus_refuses_is_the_callers_error_not_an_outage() {
        // What Milvus 2.3.5 answered a search for 65 hits with ef 64.
        let refused = classify(server_error(
            65535,
            "fail to Search, QueryNode ID=1, reason=worker(1) query failed: => failed to search: \
             out of range in json: ef(64) should be larger than k(65): service internal error",
        ));
        assert_eq!(refused.class(), ErrorClass::Permanent, "{refused}");
        assert!(refused.to_string().contains("rejected"), "{refused}");
        let invalid = classify(server_error(1100, "invalid parameter[expected=x]"));
        assert_eq!(invalid.class(), ErrorClass::Permanent);
    }

    #[test]
    fn a_refused_sign_in_is_permanent_and_says_what_to_set() {
        for reason in [
            "auth check failure, please check username and password are correct",
            "PrivilegeLoad: permission deny to user in the `default` database",
        ] {
            let refused = classify(server_error(1800, reason));
            assert_eq!(refused.class(), ErrorClass::Permanent, "{refused}");
            assert!(
                refused.to_string().contains("DOCPIPE_MILVUS_TOKEN"),
                "{refused}"
            );
        }
    }

    #[test]
    fn other_server_errors_may_pass_and_are_retried() {
        let busy = classify(server_error(8, "rate limit exceeded"));
        assert_eq!(busy.class(), ErrorClass::Transient);
        let unknown = classify(server_error(65535, "channel checkpoint lag"));
        assert_eq!(unknown.class(), ErrorClass::Transient);
    }
}
