//! The tantivy BM25 store for chunks.
//!
//! One index directory per generation (pipeline version). Ids (chunk, document, tenant) are raw
//! indexed strings for exact filters and deletes; `body` (the text the
//! embedder sees: title and heading path, then the chunk) is analysed with
//! the English stemmer for BM25, and so is `context` (the document's title
//! and the chunk's heading path), whose match a search adds to the body's
//! at a boost; the original chunk text is stored for display with its
//! heading path. Every write ends with a commit, so an acknowledged write is
//! durable on disk; writes made side by side share one commit.

#![warn(missing_docs)]

mod admitted;
mod fresh;
mod schema;
mod search;
mod write;

use admitted::AdmittedSets;
use async_trait::async_trait;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkStore, ChunkText, ContentHash, DocumentId, DocumentsUnderway,
    IndexedChunk, Metadata, RankedChunk, SearchScope, StoreError, StoreStats, StoredChunk,
    StoredDocument, TenantId,
};
use fresh::FreshReader;
use schema::{Fields, schema};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tantivy::collector::{Count, DocSetCollector};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, TantivyDocument, Value};
use tantivy::{DocAddress, Index, IndexWriter, ReloadPolicy, Searcher, Term};
use write::LastCommit;

const STORE: &str = "tantivy";
/// Bytes of stored chunks compressed together in the doc store of a new
/// index (tantivy's default: 16 KiB). Reading one chunk decompresses its
/// whole block, and a BM25 search reads its 50 candidates' ids: at 16 KiB
/// (a dozen chunks a block) that decompression was the largest single item
/// of the server's CPU in `bench --serve` (4.7 % of the machine's samples).
/// Indexes keep the block size they were created with.
const DOC_STORE_BLOCK_BYTES: usize = 4096;

/// A tantivy index of chunks.
#[derive(Clone)]
pub struct Bm25Store {
    inner: Arc<Inner>,
    /// The weight of a query's BM25 score in the `context` field (title
    /// and heading path), added to its score in the body; 0 (the text
    /// alone) unless [`Bm25Store::with_context_boost`] says otherwise.
    context_boost: f32,
}

struct Inner {
    dir: PathBuf,
    index: Index,
    reader: FreshReader,
    /// The documents of each segment that tenants' searches may return.
    admitted: AdmittedSets,
    fields: Fields,
    // Opened on first write: readers (search, status) never take tantivy's
    // single-writer lock, so they run beside a worker. Shared for adds and
    // deletes, exclusive for commits and rollbacks.
    writer: RwLock<Option<IndexWriter>>,
    /// The last commit; held by whoever commits.
    committed: Mutex<LastCommit>,
    /// The least time between two commits while documents are underway
    /// (see [`Bm25Store::open_for_writes`]).
    commit_interval: Duration,
    /// The documents a commit waits for.
    underway: DocumentsUnderway,
    /// How many times uncommitted operations were rolled back.
    rollbacks: AtomicU64,
}

impl Bm25Store {
    /// Opens the index in `dir`, creating it (and the directory) if needed;
    /// each write commits at once.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_for_writes(dir, Duration::ZERO, DocumentsUnderway::default())
    }

    /// Like [`open`](Self::open), for a stream of writes: group commit.
    /// A commit covers every write made since the last (a write returns
    /// once a commit covers it), and costs about the same for one document
    /// as for fifty: it creates a segment's files, syncs them and reloads
    /// the reader. While documents are `underway` (being prepared, so about
    /// to write), a commit waits for them until `commit_interval` has
    /// passed since the last; with none underway it does not wait.
    pub fn open_for_writes(
        dir: &Path,
        commit_interval: Duration,
        underway: DocumentsUnderway,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|error| rejected(format!("cannot create {}: {error}", dir.display())))?;
        let directory = MmapDirectory::open(dir)
            .map_err(|error| rejected(format!("cannot open {}: {error}", dir.display())))?;
        let unusable = |error: String| {
            rejected(format!(
                "{} holds an index this version cannot use ({error}); point bm25.index_dir elsewhere",
                dir.display()
            ))
        };
        let exists = Index::exists(&directory).map_err(|error| unusable(error.to_string()))?;
        let index = if exists {
            Index::open(directory)
        } else {
            let settings = tantivy::IndexSettings {
                docstore_blocksize: DOC_STORE_BLOCK_BYTES,
                ..Default::default()
            };
            Index::create(directory, schema(), settings)
        }
        .map_err(|error| unusable(error.to_string()))?;
        let fields = Fields::of(&index.schema()).map_err(unusable)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(|error| unavailable(format!("cannot open a reader: {error}")))?;
        Ok(Self {
            context_boost: 0.0,
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                index,
                reader: FreshReader::new(reader, dir),
                admitted: AdmittedSets::default(),
                fields,
                writer: RwLock::new(None),
                committed: Mutex::new(LastCommit {
                    opstamp: 0,
                    at: Instant::now(),
                }),
                commit_interval,
                underway,
                rollbacks: AtomicU64::new(0),
            }),
        })
    }

    /// The store, ranking a match of the query in a chunk's title and
    /// heading path at `boost` times its BM25 score there, added to the
    /// text's (0 ranks the text alone). The title is the same in every chunk
    /// of a document, so the boost sets documents apart, not their chunks.
    /// Indexes written before docpipe kept the `context` field rank the
    /// text alone until re-indexed.
    pub fn with_context_boost(self, boost: f32) -> Self {
        Self {
            context_boost: boost,
            ..self
        }
    }

    /// BM25 search within a scope (a tenant, maybe some of its documents).
    /// Queries come from people, not from a query language: their words are
    /// analysed as the indexed text was and searched as terms (see
    /// `terms_query`).
    pub async fn search(
        &self,
        scope: &SearchScope,
        query: &str,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        let inner = self.inner.clone();
        let scope = scope.clone();
        let query = query.to_owned();
        let boost = self.context_boost;
        blocking(move || inner.search(&scope, &query, boost, limit)).await
    }

    /// What search results show of `chunks` of `tenant`, as of the last
    /// commit: a chunk replaced or deleted since it was ranked is left out.
    pub async fn chunk_texts(
        &self,
        tenant: &TenantId,
        chunks: &[ChunkId],
    ) -> Result<HashMap<ChunkId, ChunkText>, StoreError> {
        let inner = self.inner.clone();
        let (tenant, chunks) = (tenant.clone(), chunks.to_vec());
        blocking(move || inner.chunk_texts(&tenant, &chunks)).await
    }

    /// Every document in the index (of `tenant` only, if given), read from
    /// its first chunk. tantivy has no result window, unlike Milvus, so
    /// this is how backfills and re-indexes enumerate what is indexed.
    pub async fn documents(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let inner = self.inner.clone();
        let tenant = tenant.cloned();
        blocking(move || inner.documents(tenant.as_ref())).await
    }

    /// A document's chunks in reading order (by ordinal), with their text,
    /// page and heading path, as of the last commit; `score` is 0. At most
    /// `limit` of them, the first: a lookup view shows a document, and the
    /// bound keeps one call's memory bounded whatever the index holds
    /// (`limits.max_chunks_per_document` already bounds what workers write).
    pub async fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        limit: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let inner = self.inner.clone();
        let (tenant, document) = (tenant.clone(), document.clone());
        blocking(move || inner.document_text(&tenant, &document, limit)).await
    }
}

impl Drop for Inner {
    /// Lets merges in progress finish: tantivy's own drop stops the
    /// indexing thread but not a merge, which would go on writing segment
    /// files into the directory after the store is gone (and fail the
    /// removal of a dropped generation's directory).
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && let Err(error) = writer.wait_merging_threads()
        {
            tracing::warn!(index = %self.dir.display(), %error, "a merge failed while the index was closed");
        }
    }
}

impl Inner {
    fn document_filter(&self, tenant: &TenantId, document: &DocumentId) -> BooleanQuery {
        BooleanQuery::new(vec![
            (Occur::Must, term_query(self.fields.tenant, tenant.as_str())),
            (
                Occur::Must,
                term_query(self.fields.document_id, document.as_str()),
            ),
        ])
    }

    /// Every stored chunk of a document, as of the last commit, in index
    /// order.
    fn stored_document(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<TantivyDocument>, StoreError> {
        self.every_match(
            &self.reader.fresh()?,
            &self.document_filter(tenant, document),
        )
    }

    fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let chunks = self.stored_document(tenant, document)?;
        Ok(chunks
            .iter()
            .map(|stored| StoredChunk {
                id: ChunkId::from_stored(self.text_of(stored, self.fields.chunk_id)),
                content_hash: ContentHash::from_stored(
                    self.text_of(stored, self.fields.content_hash),
                ),
                pipeline_version: self.text_of(stored, self.fields.pipeline_version),
                source: self.text_of(stored, self.fields.source),
                document_version: None,
                metadata: self.metadata_of(stored),
            })
            .collect())
    }

    /// See [`Bm25Store::document_text`].
    fn document_text(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        limit: usize,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        let mut hits = self
            .stored_document(tenant, document)?
            .iter()
            .map(|stored| self.hit(stored, 0.0))
            .collect::<Result<Vec<_>, _>>()?;
        // Index order is write order within a segment only: merges and
        // replacements reorder chunks.
        hits.sort_by_key(|hit| hit.ordinal);
        hits.truncate(limit);
        Ok(hits)
    }

    /// Every stored chunk matching `query` in `searcher`, in index order.
    fn every_match(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<Vec<TantivyDocument>, StoreError> {
        // Not `TopDocs` with the index's size as its limit: it reserves
        // room for twice that many hits in every segment, so each
        // document's pre-read would allocate in proportion to the whole
        // index rather than to its own chunks.
        let mut addresses: Vec<DocAddress> = searcher
            .search(query, &DocSetCollector)
            .map_err(|error| unavailable(error.to_string()))?
            .into_iter()
            .collect();
        // Neighbouring chunks share a compressed docstore block.
        addresses.sort_unstable();
        addresses
            .into_iter()
            .map(|address| {
                searcher
                    .doc(address)
                    .map_err(|error| unavailable(error.to_string()))
            })
            .collect()
    }

    fn documents(&self, tenant: Option<&TenantId>) -> Result<Vec<StoredDocument>, StoreError> {
        let mut clauses = vec![(Occur::Must, self.first_chunks())];
        if let Some(tenant) = tenant {
            clauses.push((Occur::Must, term_query(self.fields.tenant, tenant.as_str())));
        }
        let first_chunks = self.every_match(&self.reader.fresh()?, &BooleanQuery::new(clauses))?;
        first_chunks
            .iter()
            .map(|stored| {
                let text = |field| self.text_of(stored, field);
                Ok(StoredDocument {
                    tenant: TenantId::new(text(self.fields.tenant))
                        .map_err(|error| rejected(format!("stored tenant is invalid: {error}")))?,
                    document_id: DocumentId::new(text(self.fields.document_id)).map_err(
                        |error| rejected(format!("stored document id is invalid: {error}")),
                    )?,
                    content_hash: ContentHash::from_stored(text(self.fields.content_hash)),
                    pipeline_version: text(self.fields.pipeline_version),
                    source: text(self.fields.source),
                    document_version: 0,
                    metadata: self.metadata_of(stored),
                })
            })
            .collect()
    }

    /// Every document has exactly one chunk with ordinal 0.
    fn first_chunks(&self) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_u64(self.fields.ordinal, 0),
            IndexRecordOption::Basic,
        ))
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let searcher = self.reader.fresh()?;
        let documents = searcher
            .search(&self.first_chunks(), &Count)
            .map_err(|error| unavailable(error.to_string()))?;
        Ok(StoreStats {
            documents: documents as u64,
            chunks: searcher.num_docs(),
        })
    }

    /// The stored metadata (empty where the index predates it; the store
    /// wrote it, so it is a JSON object).
    fn metadata_of(&self, stored: &TantivyDocument) -> Metadata {
        self.fields
            .metadata
            .and_then(|field| stored.get_first(field))
            .and_then(|value| value.as_str())
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }

    fn text_of(&self, stored: &TantivyDocument, field: Field) -> String {
        stored
            .get_first(field)
            .and_then(|value| value.as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

#[async_trait]
impl ChunkStore for Bm25Store {
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
        let inner = self.inner.clone();
        let (chunks, replacing) = (chunks.to_vec(), replacing.to_vec());
        blocking(move || inner.write(&chunks, &replacing)).await
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        let inner = self.inner.clone();
        let (tenant, document) = (tenant.clone(), document.clone());
        blocking(move || inner.document_chunks(&tenant, &document)).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.stats()).await
    }
}

/// Runs index I/O off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|error| unavailable(format!("index task failed: {error}")))?
}

fn term_query(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

fn unavailable(message: String) -> StoreError {
    StoreError::Unavailable {
        store: STORE,
        message,
    }
}

fn rejected(message: String) -> StoreError {
    StoreError::Rejected {
        store: STORE,
        message,
    }
}
