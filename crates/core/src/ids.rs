//! Identifiers that carry meaning, validated once at the edge of the system.
//!
//! Every identifier here ends up inside Milvus filter expressions and tantivy
//! terms, so the character sets are restricted where that keeps filters safe.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// The identifier is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which identifier.
        kind: &'static str,
    },
    /// The identifier is longer than allowed.
    #[error("{kind} is {len} bytes long; the limit is {max}")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The identifier contains a character outside its allowed set.
    #[error("{kind} {value:?} contains {found:?}, which is not allowed ({allowed})")]
    BadCharacter {
        /// Which identifier.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// The first offending character.
        found: char,
        /// A description of the allowed set.
        allowed: &'static str,
    },
}

/// A tenant: the isolation boundary of every search. `[A-Za-z0-9_.-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// The longest tenant id accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates a tenant id.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        check_len("tenant", &value, Self::MAX_LEN)?;
        if let Some(found) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(InvalidId::BadCharacter {
                kind: "tenant",
                value,
                found,
                allowed: "ASCII letters, digits, '_', '-' and '.'",
            });
        }
        Ok(Self(value))
    }

    /// The tenant id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A document id chosen by the publisher, unique within a tenant.
///
/// Any printable text up to 512 bytes except `"` and `\`, which would need
/// escaping in store filter expressions (Milvus' escaping differs between
/// server versions, so refusing them is the only portable choice).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    /// The longest document id accepted, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Validates a document id.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        check_len("document_id", &value, Self::MAX_LEN)?;
        if let Some(found) = value
            .chars()
            .find(|c| c.is_control() || matches!(c, '"' | '\\'))
        {
            return Err(InvalidId::BadCharacter {
                kind: "document_id",
                value,
                found,
                allowed: "printable characters except '\"' and '\\'",
            });
        }
        Ok(Self(value))
    }

    /// The document id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of everything that shapes chunks and vectors (chunker
/// settings, model name and file hash). Part of every chunk id, so two
/// pipeline versions never overwrite each other's chunks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelineVersion(String);

impl PipelineVersion {
    /// Derives a version from the pipeline's name and the settings that
    /// change its output; `parts` are hashed in order, length-prefixed.
    pub fn derive(name: &str, parts: &[&[u8]]) -> Self {
        let digest = length_prefixed_sha256(parts);
        Self(format!("{name}@{}", &hex::encode(digest)[..12]))
    }

    /// The version as text, e.g. `default@3fa2b1c9d0e1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash part, e.g. `3fa2b1c9d0e1`: it names the version's Milvus
    /// collection and tantivy directory.
    pub fn digest(&self) -> &str {
        self.0
            .rsplit_once('@')
            .map_or(&self.0, |(_, digest)| digest)
    }

    /// Wraps a version read back from a store, the catalog or a message.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
}

/// SHA-256 of a document's raw bytes, hex encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentHash(String);

impl ContentHash {
    /// Hashes a document's bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// Wraps a hash read back from a store.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The hash as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A content-addressed chunk id: 32 hex characters of SHA-256 over the
/// length-prefixed (tenant, document id, pipeline version, ordinal, text).
///
/// Re-ingesting an unchanged document yields the same ids, so writes are
/// idempotent; any change to the text or pipeline yields new ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(String);

impl ChunkId {
    /// The length of every chunk id, in characters.
    pub const LEN: usize = 32;

    /// Computes the id of a chunk.
    pub fn derive(
        tenant: &TenantId,
        document: &DocumentId,
        version: &PipelineVersion,
        ordinal: u32,
        text: &str,
    ) -> Self {
        let digest = length_prefixed_sha256(&[
            tenant.as_str().as_bytes(),
            document.as_str().as_bytes(),
            version.as_str().as_bytes(),
            &ordinal.to_be_bytes(),
            text.as_bytes(),
        ]);
        Self(hex::encode(&digest[..Self::LEN / 2]))
    }

    /// Wraps an id read back from a store.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn length_prefixed_sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn check_len(kind: &'static str, value: &str, max: usize) -> Result<(), InvalidId> {
    if value.is_empty() {
        return Err(InvalidId::Empty { kind });
    }
    if value.len() > max {
        return Err(InvalidId::TooLong {
            kind,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

macro_rules! string_newtype_impls {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
    )*};
}
string_newtype_impls!(TenantId, DocumentId, PipelineVersion, ContentHash, ChunkId);

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, InvalidId> {
        Self::new(value)
    }
}

impl TryFrom<String> for DocumentId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, InvalidId> {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_id(tenant: &str, doc: &str, ordinal: u32, text: &str) -> ChunkId {
        ChunkId::derive(
            &TenantId::new(tenant).unwrap(),
            &DocumentId::new(doc).unwrap(),
            &PipelineVersion::derive("p", &[b"x"]),
            ordinal,
            text,
        )
    }

    #[test]
    fn chunk_ids_are_stable_and_sensitive_to_every_part() {
        let base = chunk_id("acme", "a/b", 0, "hello");
        assert_eq!(base, chunk_id("acme", "a/b", 0, "hello"));
        assert_eq!(base.as_str().len(), ChunkId::LEN);
        assert_ne!(base, chunk_id("acme2", "a/b", 0, "hello"));
        assert_ne!(base, chunk_id("acme", "a/b2", 0, "hello"));
        assert_ne!(base, chunk_id("acme", "a/b", 1, "hello"));
        assert_ne!(base, chunk_id("acme", "a/b", 0, "hello!"));
    }

    #[test]
    fn length_prefixing_keeps_boundaries_apart() {
        assert_ne!(chunk_id("ab", "c", 0, "x"), chunk_id("a", "bc", 0, "x"));
    }

    #[test]
    fn tenant_rejects_filter_metacharacters() {
        assert!(TenantId::new("acme-1.eu_west").is_ok());
        assert!(matches!(
            TenantId::new("a\" || true"),
            Err(InvalidId::BadCharacter { found: '"', .. })
        ));
        assert!(matches!(TenantId::new(""), Err(InvalidId::Empty { .. })));
    }

    #[test]
    fn document_id_accepts_paths_and_rejects_quotes_and_controls() {
        assert!(DocumentId::new("guides/man-ls.1 (copy) é").is_ok());
        assert!(DocumentId::new("a\"b").is_err());
        assert!(DocumentId::new("a\\b").is_err());
        assert!(DocumentId::new("a\nb").is_err());
        assert!(matches!(
            DocumentId::new("x".repeat(513)),
            Err(InvalidId::TooLong { len: 513, .. })
        ));
    }
}
