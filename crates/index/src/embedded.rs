//! The `embedded` backend: Milvus for dense vectors, tantivy on the
//! worker's disk for BM25, hybrid search fused here.

use crate::{DOCUMENT_TEXT_LIMIT, GenerationIndex, IndexStats};
use async_trait::async_trait;
use docpipe_bm25::Bm25Store;
use docpipe_core::config::IndexBackend;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkStore, ChunkText, ContentHash, DocumentId, RankedChunk, SearchScope,
    StoreError, StoredChunk, StoredDocument, TenantId,
};
use docpipe_milvus::MilvusStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A generation of the `embedded` backend: a Milvus collection and a
/// tantivy index.
pub struct EmbeddedIndex {
    milvus: MilvusStore,
    bm25: Bm25Store,
    stores: [Arc<dyn ChunkStore>; 2],
}

impl EmbeddedIndex {
    /// The generation stored in `milvus` and `bm25`.
    pub fn new(milvus: MilvusStore, bm25: Bm25Store) -> Self {
        let stores: [Arc<dyn ChunkStore>; 2] = [Arc::new(milvus.clone()), Arc::new(bm25.clone())];
        Self {
            milvus,
            bm25,
            stores,
        }
    }
}

#[async_trait]
impl GenerationIndex for EmbeddedIndex {
    fn backend(&self) -> IndexBackend {
        IndexBackend::Embedded
    }

    fn stores(&self) -> &[Arc<dyn ChunkStore>] {
        &self.stores
    }

    async fn documents(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        self.bm25.documents(tenant).await
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        self.bm25.document_chunks(tenant, document).await
    }

    async fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.bm25
            .document_text(tenant, document, DOCUMENT_TEXT_LIMIT)
            .await
    }

    async fn content_hashes(
        &self,
        tenant: &TenantId,
        documents: &[DocumentId],
    ) -> Result<HashMap<DocumentId, ContentHash>, StoreError> {
        self.milvus.content_hashes(tenant, documents).await
    }

    async fn stats(&self) -> Result<IndexStats, StoreError> {
        Ok(IndexStats {
            milvus: self.milvus.stats().await?,
            tantivy: Some(self.bm25.stats().await?),
        })
    }

    async fn dense(
        &self,
        scope: &SearchScope,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.milvus.search(scope, vector, limit).await
    }

    async fn keyword(
        &self,
        scope: &SearchScope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.bm25.search(scope, query, limit).await
    }

    async fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError> {
        self.bm25.chunk_texts(tenant, chunks).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.milvus.flush().await.map(|_| ())
    }

    async fn settle(&self, timeout: Duration) -> Result<bool, StoreError> {
        self.milvus.settle(timeout).await
    }

    async fn point_alias(&self, alias: &str) -> Result<(), StoreError> {
        self.milvus.point_alias(alias).await
    }

    async fn aliased_collection(&self, alias: &str) -> Result<Option<String>, StoreError> {
        self.milvus.aliased_collection(alias).await
    }
}
