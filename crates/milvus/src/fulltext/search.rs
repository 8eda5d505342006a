//! Searches of a full-text store, and the text of the chunks they show.

use super::{FullTextStore, HIT_FIELDS, SEARCH_FIELDS};
use crate::coalesce::SearchQuery;
use crate::columns::{int64_column, quoted_list, varchar_column};
use crate::search::{consistency_level, texts_in_columns};
use docpipe_core::{ChunkId, ChunkText, RankedChunk, SearchScope, StoreError, TenantId};
use std::collections::HashMap;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

impl FullTextStore {
    /// The `limit` chunks in `scope` nearest to `vector` by cosine, ranked.
    pub async fn dense(
        &self,
        scope: &SearchScope,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.milvus
            .search_field(SearchQuery::Vector(vector), &SEARCH_FIELDS, scope, limit)
            .await
    }

    /// The `limit` chunks in `scope` that match `query` best by BM25 (the
    /// server analyses the query with the text field's analyzer), ranked.
    pub async fn keyword(
        &self,
        scope: &SearchScope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.milvus
            .search_field(
                SearchQuery::Text(query.to_owned()),
                &SEARCH_FIELDS,
                scope,
                limit,
            )
            .await
    }

    /// What search results show of `chunks` of `tenant`, read with the
    /// searches' consistency (they were just found that way); a chunk
    /// whose document was replaced or deleted since is missing. Where two
    /// workers' versions of a document are both present for a moment, the
    /// newest version's text.
    pub async fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError> {
        if chunks.is_empty() {
            return Ok(HashMap::new());
        }
        let filter = format!(
            "tenant == \"{tenant}\" && chunk_id in {}",
            quoted_list(chunks)
        );
        let mut fields = self.milvus.with_hit_columns(&HIT_FIELDS);
        fields.push("document_version");
        let consistency = consistency_level(self.milvus.search_consistency);
        let mut newest: HashMap<ChunkId, (i64, ChunkText)> = HashMap::new();
        for page in self.rows(&filter, &fields, consistency).await? {
            let chunk_ids = varchar_column(page.get("chunk_id"), "chunk_id")?;
            let versions = int64_column(page.get("document_version"), "document_version")?;
            let texts = texts_in_columns(|name| page.get(name), chunk_ids.len())?;
            for ((chunk, &version), text) in chunk_ids.iter().zip(versions).zip(texts) {
                let chunk = ChunkId::from_stored(chunk.clone());
                match newest.get(&chunk) {
                    Some((kept, _)) if *kept >= version => {}
                    _ => {
                        newest.insert(chunk, (version, text));
                    }
                }
            }
        }
        Ok(newest
            .into_iter()
            .map(|(chunk, (_, text))| (chunk, text))
            .collect())
    }
}
