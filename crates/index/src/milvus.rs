//! The `milvus` backend: one Milvus 2.5+ collection per generation, with
//! full-text search and hybrid search on the server.

use crate::{DOCUMENT_TEXT_LIMIT, GenerationIndex, IndexStats};
use async_trait::async_trait;
use docpipe_core::config::IndexBackend;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkStore, ChunkText, ContentHash, DocumentId, RankedChunk, SearchScope,
    StoreError, StoredChunk, StoredDocument, TenantId,
};
use docpipe_milvus::FullTextStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A generation of the `milvus` backend: one collection.
pub struct MilvusIndex {
    store: FullTextStore,
    stores: [Arc<dyn ChunkStore>; 1],
}

impl MilvusIndex {
    /// The generation stored in `store`.
    pub fn new(store: FullTextStore) -> Self {
        Self {
            stores: [Arc::new(store.clone())],
            store,
        }
    }
}

#[async_trait]
impl GenerationIndex for MilvusIndex {
    fn backend(&self) -> IndexBackend {
        IndexBackend::Milvus
    }

    fn stores(&self) -> &[Arc<dyn ChunkStore>] {
        &self.stores
    }

    async fn documents(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        self.store.documents(tenant).await
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        self.store.document_chunks(tenant, document).await
    }

    async fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        self.store
            .document_text(tenant, document, DOCUMENT_TEXT_LIMIT)
            .await
    }

    async fn content_hashes(
        &self,
        tenant: &TenantId,
        documents: &[DocumentId],
    ) -> Result<HashMap<DocumentId, ContentHash>, StoreError> {
        self.store
            .collection()
            .content_hashes(tenant, documents)
            .await
    }

    async fn stats(&self) -> Result<IndexStats, StoreError> {
        Ok(IndexStats {
            milvus: self.store.stats().await?,
            tantivy: None,
        })
    }

    async fn dense(
        &self,
        scope: &SearchScope,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.store.dense(scope, vector, limit).await
    }

    async fn keyword(
        &self,
        scope: &SearchScope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.store.keyword(scope, query, limit).await
    }

    async fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError> {
        self.store.chunk_texts(tenant, chunks).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.store.collection().flush().await.map(|_| ())
    }

    async fn settle(&self, timeout: Duration) -> Result<bool, StoreError> {
        self.store.settle(timeout).await
    }

    async fn point_alias(&self, alias: &str) -> Result<(), StoreError> {
        self.store.collection().point_alias(alias).await
    }

    async fn aliased_collection(&self, alias: &str) -> Result<Option<String>, StoreError> {
        self.store.collection().aliased_collection(alias).await
    }
}
