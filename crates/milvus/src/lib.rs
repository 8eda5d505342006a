//! The Milvus dense-vector store for chunks (milvus-sdk-rust `ClientV2`).
//!
//! One collection per generation (pipeline version): primary key `chunk_id`
//! (varchar), the chunk's document, tenant, ordinal, page, heading path,
//! text, pipeline version, content hash and source, and an L2-normalised float vector under
//! an HNSW index with inner-product metric (= cosine). An alias named after
//! the family (`milvus.collection`) points at the live generation, for
//! clients outside docpipe; docpipe itself reads the generation catalog.
//!
//! Durability policy: a write is acknowledged by Milvus once it is in its
//! write-ahead log (rocksmq in standalone, Pulsar/Kafka in a cluster), which
//! Milvus replays after a crash; docpipe acks a delivery only after that
//! acknowledgement. Segments are sealed and flushed to object storage by
//! Milvus on its own schedule and by [`MilvusStore::flush`], which the worker
//! calls when it shuts down; [`MilvusStore::settle`] also waits for their
//! index, after a backfill or before a re-index switches.
//!
//! Consistency per caller: the worker's reads of what a document has in the
//! store are Strong (read-after-write across workers); searches use the
//! pipeline's `milvus.search_consistency`, Bounded by default (milliseconds
//! instead of a time tick per search, at the price of missing the last few
//! seconds of writes).
//!
//! Works against Milvus 2.3.5 (the PyPI standalone server used here) through
//! 2.6: only features present in 2.3 are used, and results are read from
//! columns rather than `rows()`, which 2.3 does not fill in.

#![warn(missing_docs)]

mod added;
mod admin;
mod catalog;
mod coalesce;
mod columns;
mod endpoint;
mod fulltext;
mod search;

pub use catalog::MilvusCatalog;
pub use endpoint::MilvusEndpoint;
pub use fulltext::FullTextStore;

pub use search::MAX_SEARCH_LIMIT;

use async_trait::async_trait;
use columns::{classify, int64, int64_column, malformed, quoted_list, varchar, varchar_column};
use docpipe_core::config::ReadConsistency;
use docpipe_core::store::stale_ids;
use docpipe_core::{
    ChunkId, ChunkStore, ContentHash, DocumentId, IndexedChunk, StoreError, StoreStats,
    StoredChunk, TenantId,
};
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;
use std::time::Duration;

const STORE: &str = "milvus";
const VECTOR: &str = "vector";
/// Milvus caps one query's result window at 16384 rows.
const QUERY_WINDOW: i64 = 16_384;

/// The dense vector's index: HNSW over inner products (= cosine of
/// L2-normalised vectors).
pub(crate) fn dense_index() -> IndexParam {
    IndexParam::new()
        .field_name(VECTOR)
        .index_type(IndexType::Hnsw)
        .metric_type(MetricType::Ip)
        .extra_params(HashMap::from([
            ("M".into(), "16".into()),
            ("efConstruction".into(), "200".into()),
        ]))
}

/// The dense store's collection schema.
pub(crate) fn dense_schema(dimension: usize) -> sdk::CollectionSchema {
    let schema = sdk::CollectionSchema::new()
        .add_field(varchar("chunk_id", 64).primary_key(true).auto_id(false))
        .add_field(varchar("document_id", 1024))
        .add_field(varchar("tenant", 64))
        .add_field(int64("ordinal"))
        .add_field(int64("page"))
        .add_field(varchar("text", 65_535))
        .add_field(varchar("pipeline_version", 256))
        .add_field(varchar("content_hash", 64))
        .add_field(varchar("source", 65_535))
        .add_field(
            sdk::FieldSchema::new()
                .name(VECTOR)
                .data_type(sdk::DataType::FloatVector)
                .dimension(dimension as u32),
        );
    added::with_added_fields(schema)
}

/// A Milvus collection of chunks.
#[derive(Clone)]
pub struct MilvusStore {
    client: Arc<ClientV2>,
    collection: String,
    search_consistency: ReadConsistency,
    /// The columns added since the first collections it has (see `added`).
    added: added::AddedColumns,
    /// Shares requests between concurrent searches (see `coalesce`).
    searches: Arc<coalesce::Coalescer>,
}

impl MilvusStore {
    /// Connects to Milvus at `url` and makes sure `collection` exists with a
    /// `dimension`-sized vector field, an index, and is loaded.
    pub async fn connect(
        endpoint: impl Into<MilvusEndpoint>,
        collection: &str,
        dimension: usize,
    ) -> Result<Self, StoreError> {
        let mut store = Self::existing(endpoint, collection).await?;
        store.added = store.ensure_collection(dimension).await?;
        Ok(store)
    }

    /// Connects to the Milvus at `endpoint` (a URL, or a
    /// [`MilvusEndpoint`] with TLS and credentials) for a collection that
    /// may or may not exist, without creating it (to drop it, say).
    pub async fn existing(
        endpoint: impl Into<MilvusEndpoint>,
        collection: &str,
    ) -> Result<Self, StoreError> {
        let endpoint = endpoint.into();
        let config = endpoint
            .connect_config()
            .connect_timeout(Duration::from_secs(10))
            .rpc_timeout(Duration::from_secs(120));
        let url = &endpoint.url;
        let client = ClientV2::new(&config).await.map_err(|error| {
            if columns::signing_in_refused(&error) {
                return columns::refused_sign_in(&error);
            }
            StoreError::Unavailable {
                store: STORE,
                message: format!(
                "cannot connect to {url} ({error}); is Milvus running? (`scripts/milvus.sh start`){}",
                if url.starts_with("https://") {
                    "; for TLS, does milvus.ca_file, or the system, trust its certificate?"
                } else {
                    ""
                }
            ),
            }
        })?;
        let client = Arc::new(client);
        Ok(Self {
            searches: Arc::new(coalesce::Coalescer::new(client.clone())),
            client,
            collection: collection.to_owned(),
            search_consistency: ReadConsistency::Strong,
            added: added::AddedColumns::default(),
        })
    }

    /// The same store, whose searches read with `consistency` (Strong
    /// unless set: tests and the worker read what they just wrote).
    pub fn with_search_consistency(mut self, consistency: ReadConsistency) -> Self {
        self.search_consistency = consistency;
        self
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Creates the collection if needed and loads it; returns which added
    /// columns it has.
    async fn ensure_collection(&self, dimension: usize) -> Result<added::AddedColumns, StoreError> {
        let added = if self.exists().await? {
            self.check_schema(dimension).await?
        } else {
            self.create_collection(dimension).await?;
            added::AddedColumns::ALL
        };
        self.load().await?;
        Ok(added)
    }

    /// Loads the collection into the query nodes (searches need it).
    async fn load(&self) -> Result<(), StoreError> {
        self.client
            .load_collection(
                sdk::request::collection::LoadCollectionRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)
    }

    /// Whether the collection exists.
    pub async fn exists(&self) -> Result<bool, StoreError> {
        Ok(self
            .client
            .has_collection(
                HasCollectionRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?
            .exists())
    }

    /// Refuses a collection whose vectors have another dimension; returns
    /// which added columns it has.
    async fn check_schema(&self, dimension: usize) -> Result<added::AddedColumns, StoreError> {
        let description = self
            .client
            .describe_collection(
                DescribeCollectionRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        let schema = description.description().get_schema();
        let found = schema
            .get_fields()
            .iter()
            .find(|field| field.get_name() == VECTOR)
            .map(|field| field.get_dimension() as usize);
        match found {
            Some(found) if found == dimension => added::added_columns(&self.collection, schema),
            found => Err(StoreError::Rejected {
                store: STORE,
                message: format!(
                    "collection {} has vector dimension {found:?} but the model produces {dimension}; \
                     use another milvus.collection for this model",
                    self.collection
                ),
            }),
        }
    }

    async fn create_collection(&self, dimension: usize) -> Result<(), StoreError> {
        // Milvus 2.3 builds the index synchronously.
        self.create(dense_schema(dimension), vec![dense_index()], true)
            .await
    }

    /// Creates the collection with `schema`, then each of `indexes`
    /// (waiting for each to be built if `wait`).
    pub(crate) async fn create(
        &self,
        schema: sdk::CollectionSchema,
        indexes: Vec<IndexParam>,
        wait: bool,
    ) -> Result<(), StoreError> {
        self.client
            .create_collection(
                sdk::request::collection::CreateCollectionRequest::builder()
                    .collection_name(&self.collection)
                    .schema(schema)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        for index in indexes {
            self.client
                .create_index(
                    sdk::request::index::CreateIndexRequest::builder()
                        .collection_name(&self.collection)
                        .index_params(vec![index])
                        .sync(wait)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// The content hash of each of `documents` of `tenant` that the
    /// collection holds (read from its first chunk), in batches that stay
    /// within Milvus' result window.
    pub async fn content_hashes(
        &self,
        tenant: &TenantId,
        documents: &[DocumentId],
    ) -> Result<HashMap<DocumentId, ContentHash>, StoreError> {
        let mut found = HashMap::new();
        for batch in documents.chunks(1024) {
            let quoted: Vec<String> = batch.iter().map(|id| format!("\"{id}\"")).collect();
            let response = self
                .client
                .query(
                    QueryRequest::builder()
                        .collection_name(&self.collection)
                        .filter(format!(
                            "tenant == \"{tenant}\" && ordinal == 0 && document_id in [{}]",
                            quoted.join(",")
                        ))
                        .output_fields(["document_id", "content_hash"])
                        .limit(QUERY_WINDOW)
                        .consistency_level(ConsistencyLevel::Strong)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)?;
            let results = response.results();
            if results.get_row_count() == 0 {
                continue;
            }
            let ids = varchar_column(results.get_output_field("document_id"), "document_id")?;
            let hashes = varchar_column(results.get_output_field("content_hash"), "content_hash")?;
            for (id, hash) in ids.iter().zip(hashes) {
                let id = DocumentId::new(id.clone()).map_err(|error| {
                    malformed(format!("stored document id is invalid: {error}"))
                })?;
                found.insert(id, ContentHash::from_stored(hash.clone()));
            }
        }
        Ok(found)
    }

    async fn count(&self, filter: &str) -> Result<u64, StoreError> {
        let response = self
            .client
            .query(
                QueryRequest::builder()
                    .collection_name(&self.collection)
                    .filter(filter)
                    .output_fields(["count(*)"])
                    .consistency_level(ConsistencyLevel::Strong)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        let counts = int64_column(response.results().get_output_field("count(*)"), "count(*)")?;
        Ok(counts.first().copied().unwrap_or_default() as u64)
    }

    async fn delete(&self, ids: &[ChunkId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.delete_where(format!("chunk_id in {}", quoted_list(ids)))
            .await
    }

    /// Writes `columns` as rows, replacing rows with the same keys.
    pub(crate) async fn upsert(&self, columns: Vec<sdk::FieldData>) -> Result<(), StoreError> {
        self.client
            .upsert(
                UpsertRequest::builder()
                    .insert(
                        InsertRequest::builder()
                            .collection_name(&self.collection)
                            .columns(columns)
                            .build()
                            .map_err(classify)?,
                    )
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Deletes the rows matching `filter`.
    pub(crate) async fn delete_where(&self, filter: String) -> Result<(), StoreError> {
        self.client
            .delete(
                DeleteRequest::builder()
                    .collection_name(&self.collection)
                    .filter(filter)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[async_trait]
impl ChunkStore for MilvusStore {
    fn name(&self) -> &'static str {
        STORE
    }

    async fn write_document(
        &self,
        _tenant: &TenantId,
        _document: &DocumentId,
        chunks: &[IndexedChunk],
        replacing: &[StoredChunk],
    ) -> Result<(), StoreError> {
        if !chunks.is_empty() {
            let column = |select: fn(&IndexedChunk) -> String| chunks.iter().map(select).collect();
            let number = |select: fn(&IndexedChunk) -> i64| chunks.iter().map(select).collect();
            let mut columns = vec![
                sdk::FieldData::varchar("chunk_id", column(|c| c.chunk.id.to_string())),
                sdk::FieldData::varchar("document_id", column(|c| c.chunk.document_id.to_string())),
                sdk::FieldData::varchar("tenant", column(|c| c.chunk.tenant.to_string())),
                sdk::FieldData::int64("ordinal", number(|c| i64::from(c.chunk.ordinal))),
                sdk::FieldData::int64("page", number(|c| c.chunk.page.map_or(0, i64::from))),
                sdk::FieldData::varchar("text", column(|c| c.chunk.text.clone())),
                sdk::FieldData::varchar(
                    "pipeline_version",
                    column(|c| c.pipeline_version.to_string()),
                ),
                sdk::FieldData::varchar("content_hash", column(|c| c.content_hash.to_string())),
                sdk::FieldData::varchar("source", column(|c| c.source.clone())),
                sdk::FieldData::float_vector(
                    VECTOR,
                    chunks.iter().map(|c| c.vector.clone()).collect(),
                ),
            ];
            self.add_added_columns(&mut columns, chunks);
            self.upsert(columns).await?;
        }
        // Only after the new chunks are in: drop the ones they replace.
        self.delete(&stale_ids(replacing, chunks)).await
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let response = self
            .client
            .query(
                QueryRequest::builder()
                    .collection_name(&self.collection)
                    .filter(format!(
                        "tenant == \"{tenant}\" && document_id == \"{document}\""
                    ))
                    .output_fields(self.with_metadata(&[
                        "chunk_id",
                        "content_hash",
                        "pipeline_version",
                        "source",
                    ]))
                    .limit(QUERY_WINDOW)
                    .consistency_level(ConsistencyLevel::Strong)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        let results = response.results();
        // Milvus sends no output columns at all when nothing matched.
        if results.get_row_count() == 0 {
            return Ok(Vec::new());
        }
        columns::stored_chunks(|name| results.get_output_field(name), false)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            // Every document has exactly one chunk with ordinal 0.
            documents: self.count("ordinal == 0").await?,
            chunks: self.count("ordinal >= 0").await?,
        })
    }
}
