//! The contract every chunk store (Milvus, tantivy) fulfils.

use crate::document::IndexedChunk;
use crate::error::{Classify, ErrorClass};
use crate::ids::{ChunkId, ContentHash, DocumentId, TenantId};
use std::collections::HashSet;

/// A chunk store: where indexed chunks are written durably and found again.
#[async_trait::async_trait]
pub trait ChunkStore: Send + Sync {
    /// A short name for logs and errors, e.g. `milvus`.
    fn name(&self) -> &'static str;

    /// Makes `chunks` the document's complete set of chunks, durably, given
    /// the chunks it had (`replacing`, as [`document_chunks`] read them). The
    /// new chunks are written before those of `replacing` not among them are
    /// deleted, so searchers never see the document without chunks.
    /// Idempotent: chunk ids are content-addressed.
    ///
    /// [`document_chunks`]: ChunkStore::document_chunks
    async fn write_document(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        chunks: &[IndexedChunk],
        replacing: &[StoredChunk],
    ) -> Result<(), StoreError>;

    /// Reads the document's chunks, then [`write_document`]s over them.
    ///
    /// [`write_document`]: ChunkStore::write_document
    async fn replace_document(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        chunks: &[IndexedChunk],
    ) -> Result<(), StoreError> {
        let replacing = self.document_chunks(tenant, document).await?;
        self.write_document(tenant, document, chunks, &replacing)
            .await
    }

    /// A document's chunks currently in the store, with their provenance.
    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError>;

    /// The ids of a document's chunks currently in the store.
    async fn chunk_ids(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<ChunkId>, StoreError> {
        let chunks = self.document_chunks(tenant, document).await?;
        Ok(chunks.into_iter().map(|chunk| chunk.id).collect())
    }

    /// Counts of what the store holds.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// A chunk as a store holds it: its id and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChunk {
    /// The chunk id.
    pub id: ChunkId,
    /// The hash of the source document's bytes.
    pub content_hash: ContentHash,
    /// The pipeline version that wrote it.
    pub pipeline_version: String,
    /// Where the document came from: its `file://` URI, or `inline`.
    pub source: String,
    /// The publisher's version of the document, in stores that keep it
    /// (the `milvus` backend, where workers on several machines may write
    /// two versions of one document at once); `None` elsewhere.
    pub document_version: Option<u64>,
    /// The document's metadata (empty in an index written before docpipe
    /// kept it).
    pub metadata: crate::Metadata,
}

/// A document as a store holds it (read from its first chunk).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredDocument {
    /// Its tenant.
    pub tenant: TenantId,
    /// The document.
    pub document_id: DocumentId,
    /// The hash of the source bytes it was indexed from.
    pub content_hash: ContentHash,
    /// The pipeline version that indexed it.
    pub pipeline_version: String,
    /// Where it came from: its `file://` URI, or `inline`.
    pub source: String,
    /// The publisher's version of the document (0 where the store does not
    /// keep versions).
    pub document_version: u64,
    /// The document's metadata.
    pub metadata: crate::Metadata,
}

/// Counts of what a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Distinct documents.
    pub documents: u64,
    /// Chunks.
    pub chunks: u64,
}

/// One chunk a search ranked: what grouping and fusing rankings need,
/// without what showing it needs ([`ChunkText`]). Searches return these
/// because a search of 200 chunks shows 10 at most: sending every
/// candidate's text cost Milvus a third of its CPU per query.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedChunk {
    /// The chunk.
    pub chunk_id: ChunkId,
    /// Its document.
    pub document_id: DocumentId,
    /// Its position in the document.
    pub ordinal: u32,
    /// The store's own score (cosine for dense, BM25 for keyword search).
    pub score: f32,
}

/// What a search result shows of a chunk besides its rank.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkText {
    /// Its page, for paginated formats.
    pub page: Option<u32>,
    /// The headings above its start, outermost first (empty in an index
    /// written before docpipe stored them).
    pub heading_path: Vec<String>,
    /// Its original text.
    pub text: String,
    /// OCR's mean word confidence on its page, when OCR read it.
    pub ocr_confidence: Option<f32>,
}

/// One chunk found by a search, with what is needed to show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChunkHit {
    /// The chunk.
    pub chunk_id: ChunkId,
    /// Its document.
    pub document_id: DocumentId,
    /// Its position in the document.
    pub ordinal: u32,
    /// Its page, for paginated formats.
    pub page: Option<u32>,
    /// The headings above its start, outermost first (empty in an index
    /// written before docpipe stored them: re-index to fill them in).
    pub heading_path: Vec<String>,
    /// Its original text.
    pub text: String,
    /// The store's own score (cosine for dense, BM25 for keyword search).
    pub score: f32,
    /// OCR's mean word confidence (0 to 100) on its page, when OCR read
    /// it (never in an index written before docpipe stored it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
}

impl ChunkHit {
    /// A ranked chunk shown with its text.
    pub fn new(ranked: RankedChunk, shown: ChunkText) -> Self {
        Self {
            chunk_id: ranked.chunk_id,
            document_id: ranked.document_id,
            ordinal: ranked.ordinal,
            page: shown.page,
            heading_path: shown.heading_path,
            text: shown.text,
            score: ranked.score,
            ocr_confidence: shown.ocr_confidence,
        }
    }
}

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable, overloaded or timed out; retrying may help.
    #[error("{store} is unavailable: {message}")]
    Unavailable {
        /// Which store.
        store: &'static str,
        /// What happened.
        message: String,
    },
    /// The store refused the request; retrying the same request will not help.
    #[error("{store} rejected the request: {message}")]
    Rejected {
        /// Which store.
        store: &'static str,
        /// What happened.
        message: String,
    },
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } => ErrorClass::Transient,
            Self::Rejected { .. } => ErrorClass::Permanent,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "store_unavailable",
            Self::Rejected { .. } => "store_rejected",
        }
    }
}

/// The ids in `replacing` that are not among `chunks`: what a replacement deletes.
pub fn stale_ids(replacing: &[StoredChunk], chunks: &[IndexedChunk]) -> Vec<ChunkId> {
    let keep: HashSet<&ChunkId> = chunks.iter().map(|chunk| &chunk.chunk.id).collect();
    replacing
        .iter()
        .map(|stored| &stored.id)
        .filter(|id| !keep.contains(id))
        .cloned()
        .collect()
}
