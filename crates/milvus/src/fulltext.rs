//! The `milvus` backend's store: one collection per generation holding the
//! chunk's searchable text under an analyzer, a BM25 function that turns it into a
//! sparse vector (`SPARSE_INVERTED_INDEX`, metric BM25), and the dense
//! vector (HNSW, inner product). Milvus 2.5+ answers keyword and dense
//! searches itself, so no process keeps anything on its own disk.
//!
//! Two versions of one document may be written at once by workers on
//! different machines. Every row carries the publisher's
//! `document_version`, and its key is the chunk id *and* that version, so
//! two versions never overwrite each other's rows. After writing, a writer
//! deletes every row of the document older than the newest version present
//! (read after its own write). Whatever the interleaving, the last of
//! those clean-ups runs after both writes, so exactly the newest version's
//! chunks remain.

use crate::added::{METADATA, metadata_column};
use crate::admin::until;
use crate::columns::{
    classify, int64, int64_column, malformed, quoted_list, stored_chunks, varchar, varchar_column,
};
use crate::search::{RANKED_FIELDS, hits_in_columns};
use crate::{MilvusEndpoint, MilvusStore};
use async_trait::async_trait;
use docpipe_core::config::ReadConsistency;
use docpipe_core::store::stale_ids;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkStore, ContentHash, DocumentId, IndexedChunk, StoreError, StoreStats,
    StoredChunk, StoredDocument, TenantId,
};
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
use std::collections::{HashMap, HashSet};
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;
use std::time::{Duration, Instant};

mod search;

const STORE: &str = "milvus";
const KEY: &str = "key";
pub(crate) const SPARSE: &str = "sparse";
/// What BM25 ranks: the chunk's embedded text (context and chunk, in
/// compatibility form), as the `embedded` backend's tantivy index does;
/// `text` keeps the original for display.
const BODY: &str = "body";
const VECTOR: &str = crate::VECTOR;
/// Milvus caps one query's result window (offset + limit) at 16384 rows.
const QUERY_WINDOW: usize = 16_384;
/// The fields a document's text, or the text of chunks shown, returns with
/// each chunk.
const HIT_FIELDS: [&str; 5] = ["chunk_id", "document_id", "ordinal", "page", "text"];
/// The fields a search ranks chunks with: the chunk id is a column of its
/// own here, the key holding a version too.
const SEARCH_FIELDS: [&str; 3] = ["chunk_id", RANKED_FIELDS[0], RANKED_FIELDS[1]];

/// The analyzer of the text field: words split at Unicode boundaries,
/// lower-cased and stemmed as English (milvus-lite applies the tokenizer
/// and lower-casing only).
fn analyzer() -> serde_json::Value {
    serde_json::json!({
        "tokenizer": "standard",
        "filter": ["lowercase", {"type": "stemmer", "language": "english"}],
    })
}

/// A generation's collection in the `milvus` backend.
#[derive(Clone)]
pub struct FullTextStore {
    milvus: MilvusStore,
}

/// The oldest servers with full-text search: Milvus 2.5, and milvus-lite
/// 3 (the Milvus project's Python server).
fn has_full_text_search(version: &str) -> bool {
    let numbers = |text: &str| -> Vec<u32> {
        text.split(['.', '-', '+'])
            .map_while(|part| part.parse().ok())
            .collect()
    };
    if let Some(lite) = version.strip_prefix("milvus_lite-") {
        return numbers(lite).first().is_some_and(|&major| major >= 3);
    }
    let release = numbers(version.trim_start_matches('v'));
    match release.as_slice() {
        [major, minor, ..] => (*major, *minor) >= (2, 5),
        _ => false,
    }
}

impl FullTextStore {
    /// Connects to Milvus at `url`, refuses servers without full-text
    /// search (before creating anything: Milvus 2.3 accepts a BM25 schema
    /// and then crashes loading it), and makes sure `collection` exists
    /// with a `dimension`-sized vector, its indexes, and is loaded.
    pub async fn connect(
        endpoint: impl Into<MilvusEndpoint>,
        collection: &str,
        dimension: usize,
    ) -> Result<Self, StoreError> {
        let mut store = Self::existing(endpoint, collection).await?;
        store.check_server().await?;
        store.milvus.added = if store.milvus.exists().await? {
            store.milvus.check_schema(dimension).await?
        } else {
            store.create_collection(dimension).await?;
            crate::added::AddedColumns::ALL
        };
        store.milvus.load().await?;
        Ok(store)
    }

    /// Connects for a collection that may or may not exist, creating
    /// nothing (to drop it, or to point an alias).
    pub async fn existing(
        endpoint: impl Into<MilvusEndpoint>,
        collection: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            milvus: MilvusStore::existing(endpoint, collection).await?,
        })
    }

    /// The same store, whose searches read with `consistency`.
    pub fn with_search_consistency(self, consistency: ReadConsistency) -> Self {
        Self {
            milvus: self.milvus.with_search_consistency(consistency),
        }
    }

    /// The collection, for what both backends do alike (aliases, flushing,
    /// counting, dropping).
    pub fn collection(&self) -> &MilvusStore {
        &self.milvus
    }

    /// Refuses a server without full-text search, naming its version.
    pub async fn check_server(&self) -> Result<(), StoreError> {
        let version = self
            .milvus
            .client
            .server_version(
                sdk::request::utility::GetServerVersionRequest::builder()
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?
            .version()
            .to_owned();
        if has_full_text_search(&version) {
            return Ok(());
        }
        Err(StoreError::Rejected {
            store: STORE,
            message: format!(
                "the Milvus server is version {version}, which has no full-text search; \
                 index.backend = \"milvus\" needs Milvus 2.5 or later (or milvus-lite 3). \
                 Upgrade Milvus, or use index.backend = \"embedded\" with this server. \
                 Nothing was created"
            ),
        })
    }

    async fn create_collection(&self, dimension: usize) -> Result<(), StoreError> {
        let schema = crate::added::with_added_fields(sdk::CollectionSchema::new())
            .add_field(varchar(KEY, 64).primary_key(true).auto_id(false))
            .add_field(varchar("chunk_id", 64))
            .add_field(varchar("document_id", 1024))
            .add_field(varchar("tenant", 64))
            .add_field(int64("document_version"))
            .add_field(int64("ordinal"))
            .add_field(int64("page"))
            .add_field(varchar("text", 65_535))
            .add_field(
                varchar(BODY, 65_535)
                    .enable_analyzer(true)
                    .analyzer_params(analyzer()),
            )
            .add_field(varchar("pipeline_version", 256))
            .add_field(varchar("content_hash", 64))
            .add_field(varchar("source", 65_535))
            .add_field(
                sdk::FieldSchema::new()
                    .name(SPARSE)
                    .data_type(sdk::DataType::SparseFloatVector),
            )
            .add_field(
                sdk::FieldSchema::new()
                    .name(VECTOR)
                    .data_type(sdk::DataType::FloatVector)
                    .dimension(dimension as u32),
            )
            .add_function(
                sdk::Function::new()
                    .name("text_bm25")
                    .function_type(sdk::FunctionType::Bm25)
                    .input_fields([BODY])
                    .output_fields([SPARSE]),
            );
        let sparse_index = IndexParam::new()
            .field_name(SPARSE)
            .index_type(IndexType::SparseInvertedIndex)
            .metric_type(MetricType::Bm25)
            .extra_params(HashMap::from([
                ("bm25_k1".into(), "1.2".into()),
                ("bm25_b".into(), "0.75".into()),
            ]));
        // Index building is asynchronous; `settle` waits for it where it
        // matters (milvus-lite refuses the synchronous form).
        self.milvus
            .create(schema, vec![crate::dense_index(), sparse_index], false)
            .await
    }

    /// Rows matching `filter`, with `fields`, read at `consistency`. Rows beyond one
    /// query's window are reached by splitting the key space by the prefix
    /// of the chunk ids (hexadecimal) until each part fits.
    async fn rows(
        &self,
        filter: &str,
        fields: &[&str],
        consistency: ConsistencyLevel,
    ) -> Result<Vec<HashMap<String, FieldData>>, StoreError> {
        let mut pages = Vec::new();
        let mut prefixes = vec![String::new()];
        while let Some(prefix) = prefixes.pop() {
            let filter = if prefix.is_empty() {
                filter.to_owned()
            } else {
                format!("({filter}) && {KEY} like \"{prefix}%\"")
            };
            let response = self
                .milvus
                .client
                .query(
                    QueryRequest::builder()
                        .collection_name(self.milvus.collection())
                        .filter(filter)
                        .output_fields(fields.iter().copied())
                        .limit(QUERY_WINDOW as i64)
                        .consistency_level(consistency)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)?;
            let results = response.results();
            let count = results.get_row_count();
            if count >= QUERY_WINDOW as u64 {
                prefixes.extend(
                    "0123456789abcdef"
                        .chars()
                        .map(|digit| format!("{prefix}{digit}")),
                );
                continue;
            }
            if count == 0 {
                continue;
            }
            let columns = fields
                .iter()
                .map(|field| {
                    results
                        .get_output_field(field)
                        .cloned()
                        .map(|column| ((*field).to_owned(), column))
                        .ok_or_else(|| malformed(format!("response has no column {field}")))
                })
                .collect::<Result<HashMap<_, _>, _>>()?;
            pages.push(columns);
        }
        Ok(pages)
    }

    /// Writes `chunks`' rows (upserts: a row's key is its chunk id and
    /// document version), leaving other rows of their document alone.
    async fn upsert_rows(&self, chunks: &[IndexedChunk]) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let column = |select: fn(&IndexedChunk) -> String| chunks.iter().map(select).collect();
        let number = |select: fn(&IndexedChunk) -> i64| chunks.iter().map(select).collect();
        let mut columns = vec![
            sdk::FieldData::varchar(
                KEY,
                column(|c| row_key(c.chunk.id.as_str(), c.document_version)),
            ),
            sdk::FieldData::varchar("chunk_id", column(|c| c.chunk.id.to_string())),
            sdk::FieldData::varchar("document_id", column(|c| c.chunk.document_id.to_string())),
            sdk::FieldData::varchar("tenant", column(|c| c.chunk.tenant.to_string())),
            sdk::FieldData::int64("document_version", number(|c| c.document_version as i64)),
            sdk::FieldData::int64("ordinal", number(|c| i64::from(c.chunk.ordinal))),
            sdk::FieldData::int64("page", number(|c| c.chunk.page.map_or(0, i64::from))),
            sdk::FieldData::varchar("text", column(|c| c.chunk.text.clone())),
            sdk::FieldData::varchar(BODY, column(|c| c.chunk.embed_text.clone())),
            sdk::FieldData::varchar(
                "pipeline_version",
                column(|c| c.pipeline_version.to_string()),
            ),
            sdk::FieldData::varchar("content_hash", column(|c| c.content_hash.to_string())),
            sdk::FieldData::varchar("source", column(|c| c.source.clone())),
            sdk::FieldData::float_vector(VECTOR, chunks.iter().map(|c| c.vector.clone()).collect()),
        ];
        self.milvus.add_added_columns(&mut columns, chunks);
        self.milvus.upsert(columns).await
    }

    /// The newest version of the document present, if any (Strong).
    async fn newest_version(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Option<i64>, StoreError> {
        let filter =
            format!("tenant == \"{tenant}\" && document_id == \"{document}\" && ordinal == 0");
        let mut newest = None;
        for page in self
            .rows(&filter, &["document_version"], ConsistencyLevel::Strong)
            .await?
        {
            let versions = int64_column(page.get("document_version"), "document_version")?;
            newest = newest.max(versions.iter().copied().max());
        }
        Ok(newest)
    }

    /// Every document of the generation (optionally of one tenant), read
    /// from its chunks with ordinal 0; the newest version of each.
    pub async fn documents(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let filter = match tenant {
            Some(tenant) => format!("tenant == \"{tenant}\" && ordinal == 0"),
            None => "ordinal == 0".to_owned(),
        };
        let fields = self.milvus.with_metadata(&[
            "tenant",
            "document_id",
            "content_hash",
            "pipeline_version",
            "source",
            "document_version",
        ]);
        let mut newest: HashMap<(TenantId, DocumentId), StoredDocument> = HashMap::new();
        for page in self
            .rows(&filter, &fields, ConsistencyLevel::Strong)
            .await?
        {
            let text = |name| varchar_column(page.get(name), name);
            let (tenants, documents, hashes) =
                (text("tenant")?, text("document_id")?, text("content_hash")?);
            let (versions, sources) = (text("pipeline_version")?, text("source")?);
            let document_versions = int64_column(page.get("document_version"), "document_version")?;
            let metadata = metadata_column(page.get(METADATA), tenants.len())?;
            for (row, metadata) in metadata.into_iter().enumerate() {
                let document = StoredDocument {
                    tenant: TenantId::new(tenants[row].clone())
                        .map_err(|error| malformed(format!("stored tenant is invalid: {error}")))?,
                    document_id: DocumentId::new(documents[row].clone()).map_err(|error| {
                        malformed(format!("stored document id is invalid: {error}"))
                    })?,
                    content_hash: ContentHash::from_stored(hashes[row].clone()),
                    pipeline_version: versions[row].clone(),
                    source: sources[row].clone(),
                    document_version: document_versions[row].max(0) as u64,
                    metadata,
                };
                let key = (document.tenant.clone(), document.document_id.clone());
                match newest.get(&key) {
                    Some(kept) if kept.document_version >= document.document_version => {}
                    _ => {
                        newest.insert(key, document);
                    }
                }
            }
        }
        Ok(newest.into_values().collect())
    }

    /// A document's chunks in reading order (by ordinal), with their text,
    /// page, heading path and OCR confidence (read Strong); `score` is 0.
    /// Only the newest version's: for a moment after two workers wrote two
    /// versions, the document has rows of both, until the later write's
    /// clean-up (see the module's documentation), and their texts must not
    /// interleave. At most `limit` chunks, the first: a lookup view shows a
    /// document, and the bound keeps one call's memory bounded whatever the
    /// collection holds (`limits.max_chunks_per_document` already bounds
    /// what workers write).
    pub async fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        limit: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let filter = format!("tenant == \"{tenant}\" && document_id == \"{document}\"");
        let mut fields = self.milvus.with_hit_columns(&HIT_FIELDS);
        fields.push("document_version");
        let mut versioned = Vec::new();
        for page in self
            .rows(&filter, &fields, ConsistencyLevel::Strong)
            .await?
        {
            let chunk_ids = varchar_column(page.get("chunk_id"), "chunk_id")?;
            let versions = int64_column(page.get("document_version"), "document_version")?;
            let hits = hits_in_columns(|name| page.get(name), chunk_ids)?;
            versioned.extend(versions.iter().copied().zip(hits));
        }
        let newest = versioned.iter().map(|(version, _)| *version).max();
        let mut hits: Vec<ChunkHit> = versioned
            .into_iter()
            .filter(|(version, _)| Some(*version) == newest)
            .map(|(_, hit)| hit)
            .collect();
        hits.sort_by_key(|hit| hit.ordinal);
        hits.truncate(limit);
        Ok(hits)
    }

    /// Seals the collection's growing segments, waits, up to `timeout`,
    /// until both indexes cover every row, merges the sealed segments once
    /// (see [`MilvusStore::settle`]) and waits for the indexes again;
    /// returns whether all that happened in time (the data is searchable
    /// either way).
    pub async fn settle(&self, timeout: Duration) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        self.milvus.flush().await?;
        let indexed = || self.milvus.index_covers_every_row();
        Ok(until(deadline, indexed).await?
            && self.milvus.merge_segments(deadline).await?.is_some()
            && until(deadline, indexed).await?)
    }
}

/// A row's key: the chunk id and the document version, so that two
/// versions of a document sharing a chunk keep a row each.
fn row_key(chunk: &str, document_version: u64) -> String {
    format!("{chunk}-{document_version}")
}

#[async_trait]
impl ChunkStore for FullTextStore {
    fn name(&self) -> &'static str {
        STORE
    }

    async fn write_document(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        chunks: &[IndexedChunk],
        replacing: &[StoredChunk],
    ) -> Result<(), StoreError> {
        self.upsert_rows(chunks).await?;
        // Only after the new chunks are in: drop those they replace...
        let stale_chunks: HashSet<ChunkId> = stale_ids(replacing, chunks).into_iter().collect();
        let stale: Vec<String> = replacing
            .iter()
            .filter(|stored| stale_chunks.contains(&stored.id))
            .map(|stored| row_key(stored.id.as_str(), stored.document_version.unwrap_or(0)))
            .collect();
        if !stale.is_empty() {
            self.milvus
                .delete_where(format!("{KEY} in {}", quoted_list(&stale)))
                .await?;
        }
        // ...and every older version, including this one if a newer
        // version was written meanwhile by another worker.
        if let Some(newest) = self.newest_version(tenant, document).await? {
            self.milvus.delete_where(format!(
                "tenant == \"{tenant}\" && document_id == \"{document}\" && document_version < {newest}"
            ))
            .await?;
        }
        Ok(())
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let filter = format!("tenant == \"{tenant}\" && document_id == \"{document}\"");
        let fields = self.milvus.with_metadata(&[
            "chunk_id",
            "content_hash",
            "pipeline_version",
            "source",
            "document_version",
        ]);
        let mut chunks = Vec::new();
        for page in self
            .rows(&filter, &fields, ConsistencyLevel::Strong)
            .await?
        {
            chunks.extend(stored_chunks(|name| page.get(name), true)?);
        }
        Ok(chunks)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.milvus.stats().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_text_search_is_recognised_from_the_server_version() {
        for version in [
            "v2.5.0",
            "v2.6.3",
            "2.5.4-rc1",
            "v3.0.0",
            "milvus_lite-3.2.2",
        ] {
            assert!(has_full_text_search(version), "{version}");
        }
        for version in ["v2.3.5", "v2.4.15", "milvus_lite-2.5.1", "unknown", ""] {
            assert!(!has_full_text_search(version), "{version}");
        }
    }

    #[test]
    fn two_versions_of_a_chunk_have_two_rows() {
        assert_ne!(row_key("abc", 1), row_key("abc", 2));
    }

    /// Against the real milvus-lite (`scripts/milvus-lite.sh start`,
    /// DOCPIPE_MILVUS_FULLTEXT_URL): the moment between a newer version's
    /// rows going in and the clean-up of the older ones.
    #[tokio::test]
    async fn a_documents_text_is_its_newest_versions_while_two_are_stored() {
        let url = std::env::var("DOCPIPE_MILVUS_FULLTEXT_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:19541".into());
        let collection = format!("test_text_versions_{}", std::process::id());
        let store = FullTextStore::connect(&url, &collection, 4).await.unwrap();
        let version = |texts: &[&str], document_version| -> Vec<IndexedChunk> {
            docpipe_core::testing::indexed_chunks("acme", "manual", texts, 4)
                .into_iter()
                .map(|chunk| IndexedChunk {
                    document_version,
                    ..chunk
                })
                .collect()
        };
        let (tenant, document) = (
            TenantId::new("acme").unwrap(),
            DocumentId::new("manual").unwrap(),
        );
        let older = version(&["old one", "old two", "old three"], 1);
        store
            .write_document(&tenant, &document, &older, &[])
            .await
            .unwrap();
        // Version 2's rows are in; its writer has not cleaned up yet.
        store
            .upsert_rows(&version(&["new one", "new two"], 2))
            .await
            .unwrap();
        assert_eq!(
            store
                .document_chunks(&tenant, &document)
                .await
                .unwrap()
                .len(),
            5
        );

        let texts: Vec<String> = store
            .document_text(&tenant, &document, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|hit| hit.text)
            .collect();
        assert_eq!(texts, ["new one", "new two"]);
        store.collection().drop_collection().await.unwrap();
    }
}
