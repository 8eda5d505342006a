//! The index backends: where a generation's chunks are written, how its
//! documents are listed and counted, how it is searched, and where the
//! generation catalog is kept.
//!
//! - **`embedded`** ([`EmbeddedIndex`]): dense vectors in Milvus (2.3 and
//!   later), BM25 in a tantivy index on the worker's disk, the catalog in
//!   `bm25.index_dir`. One machine.
//! - **`milvus`** ([`MilvusIndex`]): one Milvus 2.5+ collection per
//!   generation with the text under an analyzer, a BM25 function and the
//!   dense vector; the catalog is a Milvus collection. Workers and searchers keep nothing on
//!   their own disk, so any number run on any number of machines.
//!
//! The pipeline file chooses (`index.backend`); the rest of docpipe sees
//! a [`GenerationIndex`] and a [`Catalog`]. Both backends answer dense and
//! BM25 searches; hybrid search fuses the two in `docpipe-search`, so its
//! fusion is the same, and configurable, whichever backend holds the chunks.

#![warn(missing_docs)]

mod embedded;
mod milvus;

pub use embedded::EmbeddedIndex;
pub use milvus::MilvusIndex;

use async_trait::async_trait;
use docpipe_bm25::Bm25Store;
use docpipe_catalog::{Catalog, CatalogError, Generation};
use docpipe_core::config::IndexBackend;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkStore, ChunkText, ContentHash, DocumentId, DocumentsUnderway,
    PipelineConfig, RankedChunk, SearchScope, StoreError, StoreStats, StoredChunk, StoredDocument,
    TenantId,
};
use docpipe_milvus::{FullTextStore, MilvusCatalog, MilvusEndpoint, MilvusStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Most chunks [`GenerationIndex::document_text`] returns: one call's
/// memory stays bounded whatever a store holds. Documents are bounded
/// before they are written (`limits.max_chunks_per_document`), so only a
/// document beyond any sensible limit is cut short, to its first chunks.
pub const DOCUMENT_TEXT_LIMIT: usize = 10_000;

/// One generation's index, as its backend lays it out.
#[async_trait]
pub trait GenerationIndex: Send + Sync {
    /// The backend.
    fn backend(&self) -> IndexBackend;

    /// The stores a worker writes every document to, Milvus first.
    fn stores(&self) -> &[Arc<dyn ChunkStore>];

    /// Every document the generation holds (optionally of one tenant),
    /// from the store that lists documents (tantivy, or the collection).
    async fn documents(&self, tenant: Option<&TenantId>)
    -> Result<Vec<StoredDocument>, StoreError>;

    /// A document's chunks in the store that lists documents.
    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError>;

    /// A document's chunks in order (by ordinal), with their text, page and
    /// heading path, from the store that keeps the text (tantivy in the
    /// `embedded` backend, the collection in the `milvus` backend); `score`
    /// is 0. At most [`DOCUMENT_TEXT_LIMIT`] chunks, the first; empty if
    /// `tenant` has no such document.
    async fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<ChunkHit>, StoreError>;

    /// The content hash of each of `documents` of `tenant` that the dense
    /// store holds.
    async fn content_hashes(
        &self,
        tenant: &TenantId,
        documents: &[DocumentId],
    ) -> Result<HashMap<DocumentId, ContentHash>, StoreError>;

    /// Counts of what each store holds.
    async fn stats(&self) -> Result<IndexStats, StoreError>;

    /// The `limit` chunks in `scope` nearest to `vector`, ranked (their
    /// text is read apart, for the ones shown: [`chunk_texts`](Self::chunk_texts)).
    async fn dense(
        &self,
        scope: &SearchScope,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError>;

    /// The `limit` chunks in `scope` best for `query` by BM25, ranked.
    async fn keyword(
        &self,
        scope: &SearchScope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError>;

    /// What search results show of `chunks` of `tenant` (text, page,
    /// heading path), from the store that keeps the text, read as searches
    /// read; a chunk replaced or deleted since is missing from the map.
    async fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError>;

    /// Seals and persists what Milvus holds in memory (on shutdown).
    async fn flush(&self) -> Result<(), StoreError>;

    /// Seals Milvus' segments, merges the small ones, and waits, up to
    /// `timeout`, until their indexes cover them; returns whether they did.
    async fn settle(&self, timeout: Duration) -> Result<bool, StoreError>;

    /// Points the Milvus alias `alias` at this generation.
    async fn point_alias(&self, alias: &str) -> Result<(), StoreError>;

    /// The collection `alias` points at, if it exists (a cheap probe of
    /// Milvus).
    async fn aliased_collection(&self, alias: &str) -> Result<Option<String>, StoreError>;
}

/// Counts of what a generation's stores hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexStats {
    /// The Milvus collection.
    pub milvus: StoreStats,
    /// The tantivy index (the `embedded` backend only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tantivy: Option<StoreStats>,
}

impl IndexStats {
    /// The counts of the store that lists documents (tantivy in the
    /// `embedded` backend, else the collection).
    pub fn listed(&self) -> StoreStats {
        self.tantivy.unwrap_or(self.milvus)
    }
}

/// A generation as operators see it (`docpipe generations`, the API's
/// `/v1/generations`): its settings and what its stores hold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerationSummary {
    /// Its pipeline version.
    pub version: String,
    /// Building, live, previous or retired.
    pub state: &'static str,
    /// Its chunk size, in model tokens.
    pub max_tokens: usize,
    /// Its chunk overlap, in model tokens.
    pub overlap_tokens: usize,
    /// Its model directory.
    pub model: String,
    /// The index format its stores were written in (`docpipe_catalog::INDEX_FORMAT`).
    pub index_format: u32,
    /// What its stores hold, when they could be read.
    #[serde(flatten)]
    pub stores: Option<IndexStats>,
}

impl GenerationSummary {
    /// The summary of `generation`, whose stores hold `stores`.
    pub fn new(generation: &Generation, stores: Option<IndexStats>) -> Self {
        Self {
            version: generation.version.to_string(),
            state: generation.state.as_str(),
            max_tokens: generation.chunking.max_tokens,
            overlap_tokens: generation.chunking.overlap_tokens,
            model: generation.model.dir.display().to_string(),
            index_format: generation.index_format,
            stores,
        }
    }
}

/// What a process does with a generation it opens.
#[derive(Clone)]
pub enum Access {
    /// Searches and listings: reads with `milvus.search_consistency`.
    Read,
    /// A worker's writes; `underway` counts the documents being prepared
    /// (tantivy's group commit waits for them).
    Write(DocumentsUnderway),
}

/// Opens `generation` of `base`'s index family for `access`, creating its
/// collections if they do not exist; `dimension` is its model's.
pub async fn open(
    base: &PipelineConfig,
    generation: &Generation,
    dimension: usize,
    access: Access,
) -> Result<Arc<dyn GenerationIndex>, StoreError> {
    let config = generation.pipeline(base);
    let (url, collection) = (
        MilvusEndpoint::for_pipeline(&config.milvus)?,
        &config.milvus.collection,
    );
    let consistency = config.milvus.search_consistency;
    Ok(match config.index.backend {
        IndexBackend::Embedded => {
            let milvus = MilvusStore::connect(url, collection, dimension).await?;
            let index = match access {
                Access::Read => EmbeddedIndex::new(
                    milvus.with_search_consistency(consistency),
                    Bm25Store::open(&config.bm25.index_dir)?
                        .with_context_boost(config.bm25.context_boost),
                ),
                Access::Write(underway) => EmbeddedIndex::new(
                    milvus,
                    Bm25Store::open_for_writes(
                        &config.bm25.index_dir,
                        Duration::from_millis(config.bm25.commit_interval_ms),
                        underway,
                    )?,
                ),
            };
            Arc::new(index)
        }
        IndexBackend::Milvus => {
            let store = FullTextStore::connect(url, collection, dimension).await?;
            let store = match access {
                Access::Read => store.with_search_consistency(consistency),
                Access::Write(_) => store,
            };
            Arc::new(MilvusIndex::new(store))
        }
    })
}

/// The generation catalog of `base`'s index family, where its backend
/// keeps it.
pub async fn catalog(base: &PipelineConfig) -> Result<Catalog, CatalogError> {
    Ok(match base.index.backend {
        IndexBackend::Embedded => Catalog::file(&base.bm25.index_dir),
        IndexBackend::Milvus => {
            // Before the catalog's collection is created: a Milvus without
            // full-text search gets nothing at all.
            let url = MilvusEndpoint::for_pipeline(&base.milvus).map_err(catalog_unreachable)?;
            let family = &base.milvus.collection;
            let server = FullTextStore::existing(url.clone(), family)
                .await
                .map_err(catalog_unreachable)?;
            server.check_server().await.map_err(|error| match error {
                StoreError::Rejected { message, .. } => CatalogError::Incompatible(message),
                unavailable => catalog_unreachable(unavailable),
            })?;
            Catalog::new(MilvusCatalog::connect(url, family).await?)
        }
    })
}

/// Drops what `generation` of `base`'s family stored (after `docpipe gc`
/// took it out of the catalog).
pub async fn drop_generation(
    base: &PipelineConfig,
    generation: &Generation,
) -> Result<(), StoreError> {
    let config = generation.pipeline(base);
    MilvusStore::existing(
        MilvusEndpoint::for_pipeline(&config.milvus)?,
        &config.milvus.collection,
    )
    .await?
    .drop_collection()
    .await?;
    if config.index.backend == IndexBackend::Embedded {
        remove_dir(&config.bm25.index_dir)?;
    }
    Ok(())
}

/// Removes a whole index family: its alias, every generation, and the
/// catalog (tests and the bench clean up with this).
pub async fn remove_family(base: &PipelineConfig) -> Result<(), StoreError> {
    let catalog = catalog(base).await.map_err(catalog_unavailable)?;
    let generations = catalog.read().await.map_err(catalog_unavailable)?;
    let alias = &base.milvus.collection;
    let endpoint = MilvusEndpoint::for_pipeline(&base.milvus)?;
    MilvusStore::existing(endpoint.clone(), alias)
        .await?
        .drop_alias(alias)
        .await?;
    for generation in &generations.generations {
        drop_generation(base, generation).await?;
    }
    match base.index.backend {
        IndexBackend::Embedded => remove_dir(&base.bm25.index_dir),
        IndexBackend::Milvus => MilvusCatalog::connect(endpoint, alias)
            .await
            .map_err(catalog_unavailable)?
            .drop_collection()
            .await
            .map_err(catalog_unavailable),
    }
}

fn catalog_unreachable(error: StoreError) -> CatalogError {
    CatalogError::Unavailable {
        location: "Milvus".into(),
        message: error.to_string(),
    }
}

fn catalog_unavailable(error: CatalogError) -> StoreError {
    StoreError::Unavailable {
        store: "catalog",
        message: error.to_string(),
    }
}

fn remove_dir(directory: &std::path::Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(directory) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Rejected {
            store: "tantivy",
            message: format!("cannot remove {}: {error}", directory.display()),
        }),
        _ => Ok(()),
    }
}
