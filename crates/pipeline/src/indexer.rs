//! One document through every stage: source → parse → chunk → embed → stores.

use crate::source::{SourceError, SourceReader};
use backon::{BackoffBuilder, ExponentialBuilder};
use docpipe_chunk::{ChunkError, Chunker};
use docpipe_core::ChunkStore;
use docpipe_core::config::{LimitsConfig, RetryConfig};
use docpipe_core::message::{DeclaredType, MessageError, file_name_in_uri};
use docpipe_core::{
    ChunkId, Classify, ContentHash, DocumentId, DocumentsUnderway, ErrorClass, IndexedChunk,
    IngestRequest, Metadata, ParsedDocument, PipelineVersion, StoreError, StoredChunk,
    StoredDocument, TenantId,
};
use docpipe_embed::{EmbedError, Embedder};
use docpipe_parse::{DocumentParser, ParseError};
use docpipe_parsed::{ParsedCopies, ParsedError};
use docpipe_telemetry::metrics::metrics;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tracing::field::Empty;
use tracing::{Instrument as _, Span, info_span};

/// Why a document could not be indexed. [`Classify`] says whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The ingest request is invalid.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The document's bytes could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The document could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Parsing took longer than the pipeline allows.
    #[error(
        "parsing took longer than {0:?} (limits.parse_timeout_secs); the document is too complex or hostile"
    )]
    ParseTimeout(Duration),
    /// The document could not be chunked.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A store write failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The extracted text exceeds the pipeline's limit.
    #[error(
        "document has {size} bytes of text; the pipeline limit (limits.max_text_bytes) is {limit}"
    )]
    TextTooLarge {
        /// Bytes of extracted text.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A stage's thread died unexpectedly.
    #[error("a pipeline task failed: {0}")]
    Task(String),
    /// The parsed copy could not be kept or read.
    #[error(transparent)]
    Parsed(#[from] ParsedError),
    /// A re-index found neither a parsed copy nor a readable source.
    #[error(
        "no parsed copy of {document_id} (content {content_hash}) and its source ({source_uri}) cannot be read again; re-publish the document"
    )]
    NoParsedCopy {
        /// The document.
        document_id: DocumentId,
        /// The content the live generation holds.
        content_hash: ContentHash,
        /// Where it came from.
        source_uri: String,
    },
    /// A generation's components could not be set up.
    #[error("a generation is unavailable: {0}")]
    Generation(String),
    /// A re-index named a generation the catalog does not have.
    #[error("generation {0} is not in the catalog (dropped by `docpipe gc`?); nothing to rebuild")]
    UnknownGeneration(String),
}

impl Classify for IndexError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Message(error) => error.class(),
            Self::Source(error) => error.class(),
            Self::Parse(error) => error.class(),
            Self::ParseTimeout(_) | Self::TextTooLarge { .. } => ErrorClass::Permanent,
            Self::Chunk(error) => error.class(),
            Self::Embed(error) => error.class(),
            Self::Store(error) => error.class(),
            Self::Task(_) | Self::Generation(_) => ErrorClass::Transient,
            Self::Parsed(error) => error.class(),
            Self::NoParsedCopy { .. } | Self::UnknownGeneration(_) => ErrorClass::Permanent,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Message(error) => error.code(),
            Self::Source(error) => error.code(),
            Self::Parse(error) => error.code(),
            Self::ParseTimeout(_) => "parse_timeout",
            Self::TextTooLarge { .. } => "text_too_large",
            Self::Chunk(error) => error.code(),
            Self::Embed(error) => error.code(),
            Self::Store(error) => error.code(),
            Self::Task(_) => "task_failed",
            Self::Parsed(error) => error.code(),
            Self::NoParsedCopy { .. } => "no_parsed_copy",
            Self::Generation(_) => "generation_unavailable",
            Self::UnknownGeneration(_) => "unknown_generation",
        }
    }
}

/// What indexing one document produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indexed {
    /// Chunks the document now has in every store.
    pub chunks: u32,
    /// The stores already held exactly this content from this pipeline
    /// version, so nothing was parsed, embedded or written.
    pub unchanged: bool,
    /// The stores already held a newer version of the document (this
    /// `document_version`), so nothing was written.
    pub superseded_by: Option<u64>,
}

impl Indexed {
    fn written(chunks: u32) -> Self {
        Self {
            chunks,
            unchanged: false,
            superseded_by: None,
        }
    }

    fn unchanged(chunks: u32) -> Self {
        Self {
            chunks,
            unchanged: true,
            superseded_by: None,
        }
    }
}

/// The stages, wired together.
pub struct Indexer {
    sources: SourceReader,
    parser: DocumentParser,
    chunker: Arc<Chunker>,
    embedder: Arc<dyn Embedder>,
    stores: Vec<Arc<dyn ChunkStore>>,
    version: PipelineVersion,
    parse_timeout: Duration,
    max_text_bytes: usize,
    in_process_retries: usize,
    documents: DocumentLocks,
    preparing: Semaphore,
    /// Counts documents from their preparation until they are handed to
    /// the stores (the tantivy group commit waits for them).
    underway: DocumentsUnderway,
    parsed_copies: ParsedCopies,
}

/// What identifies a document's content and where it came from.
struct Provenance<'a> {
    tenant: &'a TenantId,
    document: &'a DocumentId,
    content_hash: ContentHash,
    source: String,
    document_version: u64,
    metadata: &'a Metadata,
}

/// The chunk count if every store already holds the document with this
/// content hash and pipeline version, and they agree on its chunks. A crash
/// between writes leaves the stores disagreeing (or holding chunks of two
/// contents), which sends the document through again.
fn unchanged_chunk_count(
    stored: &[Vec<StoredChunk>],
    content_hash: &ContentHash,
    version: &PipelineVersion,
    document_version: u64,
    metadata: &Metadata,
) -> Option<u32> {
    let mut agreed: Option<Vec<&ChunkId>> = None;
    for chunks in stored {
        if !holds_current(chunks, content_hash, version, document_version, metadata) {
            return None;
        }
        let mut ids: Vec<&ChunkId> = chunks.iter().map(|chunk| &chunk.id).collect();
        ids.sort();
        match &agreed {
            Some(agreed) if *agreed != ids => return None,
            Some(_) => {}
            None => agreed = Some(ids),
        }
    }
    agreed.map(|ids| ids.len() as u32)
}

/// Whether a store's chunks of a document (`stored`) are all of this
/// content hash, pipeline version and metadata, and there are some. In stores that
/// keep document versions, they must also be of this version or a newer
/// one: an older version's chunks with the same content are written again
/// with this version, so that a concurrent write of a version between the
/// two cannot win.
fn holds_current(
    stored: &[StoredChunk],
    content_hash: &ContentHash,
    version: &PipelineVersion,
    document_version: u64,
    metadata: &Metadata,
) -> bool {
    !stored.is_empty()
        && stored.iter().all(|chunk| {
            chunk.content_hash == *content_hash
                && chunk.pipeline_version == version.as_str()
                && chunk.metadata == *metadata
                && chunk
                    .document_version
                    .is_none_or(|stored| stored >= document_version)
        })
}

/// The newest document version a store holds of a document, if it is newer
/// than `document_version` (and the store keeps versions).
fn newer_version(stored: &[Vec<StoredChunk>], document_version: u64) -> Option<u64> {
    stored
        .iter()
        .flatten()
        .filter_map(|chunk| chunk.document_version)
        .max()
        .filter(|&newest| newest > document_version)
}

/// Store reads in progress: the store's position, and what it holds of a
/// document.
type StoreReads<'a> =
    FuturesUnordered<BoxFuture<'a, (usize, Result<Vec<StoredChunk>, IndexError>)>>;

/// One lock per document being indexed: two versions of a document indexed
/// at once could each delete the other's chunks as stale, leaving the two
/// stores with different versions.
#[derive(Default)]
struct DocumentLocks(std::sync::Mutex<HashMap<DocumentKey, Weak<Mutex<()>>>>);

type DocumentKey = (TenantId, DocumentId);

impl DocumentLocks {
    fn lock_for(&self, tenant: &TenantId, document: &DocumentId) -> Arc<Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.retain(|_, lock| lock.strong_count() > 0);
        let key = (tenant.clone(), document.clone());
        if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(Mutex::new(()));
        locks.insert(key, Arc::downgrade(&lock));
        lock
    }
}

impl Indexer {
    /// Wires stages together. `parser` reads documents; `stores` are all
    /// written for every document; parsed copies go to `parsed_copies`. At most `preparing` documents are
    /// parsed, chunked and embedded at once; `underway` counts them, and
    /// those waiting for a turn, until they are handed to the stores.
    #[allow(clippy::too_many_arguments)] // one per stage
    pub fn new(
        sources: SourceReader,
        parser: DocumentParser,
        limits: &LimitsConfig,
        retry: &RetryConfig,
        preparing: usize,
        chunker: Chunker,
        embedder: Arc<dyn Embedder>,
        stores: Vec<Arc<dyn ChunkStore>>,
        version: PipelineVersion,
        underway: DocumentsUnderway,
        parsed_copies: ParsedCopies,
    ) -> Self {
        Self {
            sources,
            parser,
            chunker: Arc::new(chunker),
            embedder,
            stores,
            version,
            parse_timeout: Duration::from_secs(limits.parse_timeout_secs),
            max_text_bytes: limits.max_text_bytes,
            in_process_retries: retry.in_process_retries,
            documents: DocumentLocks::default(),
            preparing: Semaphore::new(preparing.max(1)),
            underway,
            parsed_copies,
        }
    }

    /// The pipeline version stamped on every chunk.
    pub fn version(&self) -> &PipelineVersion {
        &self.version
    }

    /// Indexes one document: when this returns `Ok`, its chunks are durably
    /// in every store and its previous chunks are gone.
    pub async fn index(&self, request: &IngestRequest) -> Result<Indexed, IndexError> {
        let document = self
            .documents
            .lock_for(&request.tenant, &request.document_id);
        let _only_version_in_flight = document.lock().await;
        let started = Instant::now();
        let declared = request.declared_type()?;
        let bytes = self
            .retry_transient("source", || self.sources.read(request))
            .await?;
        let content_hash = ContentHash::of(&bytes);
        let byte_count = bytes.len();
        // Unchanged means every store holds the current chunks, so the first
        // store that does not settles it (tantivy, on local disk, answers
        // well before a Strong-consistency Milvus query): the other reads
        // then go on beside parsing and embedding, not before them.
        let mut reads = self.read_stores(&request.tenant, &request.document_id);
        let mut read = vec![None; self.stores.len()];
        let document_version = request.document_version;
        while let Some((store, chunks)) = reads.next().await {
            let chunks = chunks?;
            let current = holds_current(
                &chunks,
                &content_hash,
                &self.version,
                document_version,
                &request.metadata,
            );
            read[store] = Some(chunks);
            if !current {
                break;
            }
        }
        let answered = read
            .iter()
            .all(Option::is_some)
            .then(|| read.iter().flatten().cloned().collect::<Vec<_>>());
        if let Some(answered) = &answered
            && let Some(newer) = newer_version(answered, document_version)
        {
            tracing::info!(
                document_id = %request.document_id,
                tenant = %request.tenant,
                document_version,
                newer_version = newer,
                "a newer version of the document is indexed; nothing to do"
            );
            return Ok(Indexed {
                chunks: 0,
                unchanged: false,
                superseded_by: Some(newer),
            });
        }
        if let Some(answered) = answered
            && let Some(chunks) = unchanged_chunk_count(
                &answered,
                &content_hash,
                &self.version,
                document_version,
                &request.metadata,
            )
        {
            tracing::info!(
                document_id = %request.document_id,
                tenant = %request.tenant,
                chunks,
                "document unchanged; nothing to do"
            );
            return Ok(Indexed::unchanged(chunks));
        }

        let provenance = Provenance {
            tenant: &request.tenant,
            document: &request.document_id,
            content_hash: content_hash.clone(),
            source: request.source.stored_form(),
            document_version,
            metadata: &request.metadata,
        };
        let underway = self.underway.enter();
        let prepared = async {
            let _turn = self.turn_to_prepare().await;
            let parsed = self.parse(request, bytes, declared, &content_hash).await?;
            self.prepare(&provenance, parsed).await
        };
        let (before, prepared) = tokio::join!(finish_reads(read, reads), prepared);
        drop(underway);
        let chunks = self.store(&provenance, prepared?, &before?).await?;
        tracing::info!(
            document_id = %request.document_id,
            tenant = %request.tenant,
            bytes = byte_count,
            chunks,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "document indexed"
        );
        Ok(Indexed::written(chunks))
    }

    /// Parses a document's bytes and keeps the parsed copy.
    async fn parse(
        &self,
        request: &IngestRequest,
        bytes: Vec<u8>,
        declared: Option<DeclaredType>,
        content_hash: &ContentHash,
    ) -> Result<ParsedDocument, IndexError> {
        let byte_count = bytes.len();
        // Parsing is CPU-bound third-party code fed untrusted bytes: it runs
        // on a blocking thread under a time limit (a runaway parse keeps its
        // thread until it ends, but the document fails on time).
        let span = info_span!(
            "docpipe.parse",
            document.id = %request.document_id,
            tenant = %request.tenant,
            content_type = request.content_type.as_deref().unwrap_or("(sniffed)"),
            bytes = byte_count,
            pages = Empty,
            skipped_pages = Empty,
            ocr_pages = Empty,
            ocr_confidence = Empty,
            blocks = Empty,
            text_bytes = Empty,
            pipeline.version = %self.version,
        );
        let parser = self.parser.clone();
        let parse_started = Instant::now();
        let parsing = tokio::task::spawn_blocking({
            let span = span.clone();
            move || span.in_scope(|| parser.parse(&bytes, declared.as_ref()))
        });
        let parsed = tokio::time::timeout(self.parse_timeout, parsing)
            .await
            .map_err(|_| IndexError::ParseTimeout(self.parse_timeout))?
            .map_err(|error| IndexError::Task(error.to_string()))??;
        metrics().stage("parse", parse_started.elapsed());
        span.record("pages", parsed.page_count.unwrap_or(0));
        if !parsed.skipped_pages.is_empty() {
            // The document is indexed without them; say which, and count them.
            span.record("skipped_pages", format!("{:?}", parsed.skipped_pages));
            metrics()
                .skipped_pages
                .inc_by(parsed.skipped_pages.len() as u64);
            tracing::warn!(parent: &span, pages = ?parsed.skipped_pages, "unreadable pages left out");
        }
        if !parsed.ocr_pages.is_empty() {
            let pages = parsed.ocr_pages.len();
            let confidence = parsed
                .ocr_pages
                .iter()
                .map(|page| page.confidence)
                .sum::<f32>();
            span.record("ocr_pages", pages);
            span.record("ocr_confidence", f64::from(confidence / pages as f32));
            metrics().ocr_pages.inc_by(pages as u64);
        }
        span.record("blocks", parsed.blocks.len());
        span.record("text_bytes", parsed.text.len());
        if parsed.text.len() > self.max_text_bytes {
            return Err(IndexError::TextTooLarge {
                size: parsed.text.len(),
                limit: self.max_text_bytes,
            });
        }
        // Kept before any store write: whatever is indexed can be re-indexed.
        self.parsed_copies.save(content_hash, &parsed).await?;
        Ok(parsed)
    }

    /// Rebuilds a document another generation holds (`live`) in this one,
    /// from the parsed copy of its content; falls back to reading a `file://`
    /// source again when no copy was kept.
    pub async fn rebuild(&self, live: &StoredDocument) -> Result<Indexed, IndexError> {
        let (tenant, document) = (&live.tenant, &live.document_id);
        let parsed = self.parsed_copies.load(&live.content_hash).await?;
        let Some(parsed) = parsed else {
            if live.source.starts_with("file://") {
                let mut request =
                    IngestRequest::for_file(tenant.clone(), document.clone(), live.source.clone());
                request.metadata = live.metadata.clone();
                return self.index(&request).await;
            }
            return Err(IndexError::NoParsedCopy {
                document_id: document.clone(),
                content_hash: live.content_hash.clone(),
                source_uri: live.source.clone(),
            });
        };
        let lock = self.documents.lock_for(tenant, document);
        let _only_version_in_flight = lock.lock().await;
        let before = self.stored_chunks(tenant, document).await?;
        if let Some(chunks) = unchanged_chunk_count(
            &before,
            &live.content_hash,
            &self.version,
            live.document_version,
            &live.metadata,
        ) {
            return Ok(Indexed::unchanged(chunks));
        }
        let provenance = Provenance {
            tenant,
            document,
            content_hash: live.content_hash.clone(),
            source: live.source.clone(),
            document_version: live.document_version,
            metadata: &live.metadata,
        };
        let indexed = {
            let _underway = self.underway.enter();
            let _turn = self.turn_to_prepare().await;
            self.prepare(&provenance, parsed).await?
        };
        let chunks = self.store(&provenance, indexed, &before).await?;
        Ok(Indexed::written(chunks))
    }

    /// Removes a document from every store; returns how many chunks it had.
    pub async fn remove(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<u32, IndexError> {
        let lock = self.documents.lock_for(tenant, document);
        let _only_version_in_flight = lock.lock().await;
        let before = self.stored_chunks(tenant, document).await?;
        let removals = self.stores.iter().zip(&before).map(|(store, replacing)| {
            self.retry_transient(store.name(), || {
                store.write_document(tenant, document, &[], replacing)
            })
        });
        for result in futures::future::join_all(removals).await {
            result?;
        }
        Ok(before.iter().map(Vec::len).max().unwrap_or_default() as u32)
    }

    /// Waits until fewer than `preparing` documents are being prepared; the
    /// turn lasts as long as the permit. Documents waiting on the stores
    /// have given theirs up, so the embedder has texts to work on meanwhile.
    async fn turn_to_prepare(&self) -> SemaphorePermit<'_> {
        self.preparing
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Chunks and embeds a parsed document.
    async fn prepare(
        &self,
        provenance: &Provenance<'_>,
        mut parsed: ParsedDocument,
    ) -> Result<Vec<IndexedChunk>, IndexError> {
        // Here rather than in the parsed copy: copies are shared by content,
        // and one content may have several names.
        if parsed.title.is_none() {
            parsed.title = title_from_file_name(&provenance.source);
        }
        let chunker = self.chunker.clone();
        let (tenant, document, version) = (
            provenance.tenant.clone(),
            provenance.document.clone(),
            self.version.clone(),
        );
        let span = info_span!(
            "docpipe.chunk",
            document.id = %provenance.document,
            tenant = %provenance.tenant,
            chunks = Empty,
            pipeline.version = %self.version,
        );
        let chunks = blocking_stage("chunk", &span, move || {
            chunker.chunk(&parsed, &tenant, &document, &version)
        })
        .await??;
        span.record("chunks", chunks.len());
        if docpipe_telemetry::record_chunk_text() {
            for chunk in &chunks {
                tracing::info!(parent: &span, ordinal = chunk.ordinal, text = %chunk.text, "chunk");
            }
        }

        let embedder = self.embedder.clone();
        let texts: Vec<String> = chunks
            .iter()
            .map(|chunk| chunk.embed_text.clone())
            .collect();
        let span = info_span!(
            "docpipe.embed",
            document.id = %provenance.document,
            tenant = %provenance.tenant,
            chunks = chunks.len(),
            model = self.embedder.model_name(),
            pipeline.version = %self.version,
            tokens = Empty,
            batches = Empty,
            batch_size = Empty,
        );
        let vectors = blocking_stage("embed", &span, move || {
            embedder.embed_documents(&texts.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await??;

        Ok(chunks
            .into_iter()
            .zip(vectors)
            .map(|(chunk, vector)| IndexedChunk {
                chunk,
                vector,
                pipeline_version: self.version.clone(),
                content_hash: provenance.content_hash.clone(),
                source: provenance.source.clone(),
                document_version: provenance.document_version,
                metadata: provenance.metadata.clone(),
            })
            .collect())
    }

    /// Writes a document's chunks over what each store held of it
    /// (`before`); returns the chunk count.
    async fn store(
        &self,
        provenance: &Provenance<'_>,
        indexed: Vec<IndexedChunk>,
        before: &[Vec<StoredChunk>],
    ) -> Result<u32, IndexError> {
        // The stores were read under this document's lock, so `before` is
        // still what each write replaces.
        let writes = self.stores.iter().zip(before).map(|(store, replacing)| {
            let span = store_span(store.name(), provenance, indexed.len(), &self.version);
            let started = Instant::now();
            self.retry_transient(store.name(), || {
                store.write_document(provenance.tenant, provenance.document, &indexed, replacing)
            })
            .instrument(span)
            .inspect(move |_| metrics().stage(store_stage(store.name()), started.elapsed()))
        });
        for result in futures::future::join_all(writes).await {
            result?;
        }
        metrics().chunks.inc_by(indexed.len() as u64);
        Ok(indexed.len() as u32)
    }

    /// What each store holds of the document, in store order.
    async fn stored_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<Vec<StoredChunk>>, IndexError> {
        let reads = self.read_stores(tenant, document);
        finish_reads(vec![None; self.stores.len()], reads).await
    }

    /// Reads what every store holds of the document, all at once.
    fn read_stores<'a>(&'a self, tenant: &'a TenantId, document: &'a DocumentId) -> StoreReads<'a> {
        self.stores
            .iter()
            .enumerate()
            .map(|(position, store)| {
                async move {
                    let read = self
                        .retry_transient(store.name(), || store.document_chunks(tenant, document))
                        .await;
                    (position, read.map_err(IndexError::from))
                }
                .boxed()
            })
            .collect()
    }

    /// Retries transient failures in-process: exponential backoff with
    /// jitter, `retry.in_process_retries` times; past that the worker sends
    /// the delivery to a delay queue.
    async fn retry_transient<T, E, F>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, E>
    where
        E: Classify + std::fmt::Display,
        F: Future<Output = Result<T, E>>,
    {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.in_process_retries)
            .with_jitter()
            .build();
        loop {
            match attempt().await {
                Err(error) if error.class() == ErrorClass::Transient => match delays.next() {
                    Some(delay) => {
                        tracing::warn!(stage = what, %error, ?delay, "transient failure; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    None => return Err(error),
                },
                result => return result,
            }
        }
    }
}

/// What each store holds of a document, in store order: `read` so far, and
/// the rest from `reads`.
async fn finish_reads(
    mut read: Vec<Option<Vec<StoredChunk>>>,
    mut reads: StoreReads<'_>,
) -> Result<Vec<Vec<StoredChunk>>, IndexError> {
    while let Some((store, chunks)) = reads.next().await {
        read[store] = Some(chunks?);
    }
    Ok(read
        .into_iter()
        .map(|chunks| chunks.expect("every store answered"))
        .collect())
}

/// Runs `work` on a blocking thread inside `span`, timing it as `stage`.
async fn blocking_stage<T: Send + 'static>(
    stage: &'static str,
    span: &Span,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, IndexError> {
    let started = Instant::now();
    let span = span.clone();
    let result = tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|error| IndexError::Task(error.to_string()));
    metrics().stage(stage, started.elapsed());
    result
}

/// The metrics stage of a store, e.g. `store.milvus`.
fn store_stage(store: &str) -> &'static str {
    match store {
        "milvus" => "store.milvus",
        _ => "store.bm25",
    }
}

/// The span of one store's write (span names must be static).
fn store_span(
    store: &str,
    provenance: &Provenance<'_>,
    chunks: usize,
    version: &PipelineVersion,
) -> Span {
    match store {
        "milvus" => info_span!(
            "docpipe.store.milvus",
            document.id = %provenance.document,
            tenant = %provenance.tenant,
            chunks,
            pipeline.version = %version,
        ),
        _ => info_span!(
            "docpipe.store.bm25",
            document.id = %provenance.document,
            tenant = %provenance.tenant,
            chunks,
            pipeline.version = %version,
        ),
    }
}

/// The title of a document that has none of its own (a PDF without
/// metadata, a text file): the file name in its source URI (as stores
/// record it) without the extension, as a person would name it ("Q3 report"
/// for `Q3 report.pdf`). Chunks carry it into the embedder's context and
/// BM25's title field.
fn title_from_file_name(source_uri: &str) -> Option<String> {
    let name = file_name_in_uri(source_uri)?;
    let stem = std::path::Path::new(&name).file_stem()?.to_str()?.trim();
    (!stem.is_empty()).then(|| stem.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    static NONE: std::sync::LazyLock<Metadata> = std::sync::LazyLock::new(Metadata::new);

    #[test]
    fn a_document_without_a_title_is_titled_by_its_file_name() {
        let title = title_from_file_name("file:///docs/gcloud_compute_ssh.1.pdf");
        assert_eq!(title.as_deref(), Some("gcloud_compute_ssh.1"));
        assert_eq!(
            title_from_file_name("file:///docs/README").as_deref(),
            Some("README")
        );
        assert_eq!(title_from_file_name("inline"), None);
    }

    fn stored(ids: &[&str], hash: &ContentHash, version: &PipelineVersion) -> Vec<StoredChunk> {
        ids.iter()
            .map(|id| StoredChunk {
                id: ChunkId::from_stored((*id).to_owned()),
                content_hash: hash.clone(),
                pipeline_version: version.to_string(),
                source: "inline".into(),
                document_version: None,
                metadata: Metadata::new(),
            })
            .collect()
    }

    #[test]
    fn a_document_is_unchanged_only_if_every_store_agrees_on_current_chunks() {
        let (hash, version) = (ContentHash::of(b"v1"), PipelineVersion::derive("p", &[]));
        let both = stored(&["a", "b"], &hash, &version);
        assert_eq!(
            unchanged_chunk_count(&[both.clone(), both.clone()], &hash, &version, 0, &NONE),
            Some(2)
        );

        let other_hash = ContentHash::of(b"v2");
        assert_eq!(
            unchanged_chunk_count(
                &[both.clone(), both.clone()],
                &other_hash,
                &version,
                0,
                &NONE
            ),
            None
        );
        let other_version = PipelineVersion::derive("q", &[]);
        assert_eq!(
            unchanged_chunk_count(
                &[both.clone(), both.clone()],
                &hash,
                &other_version,
                0,
                &NONE
            ),
            None
        );

        // The same content published again with other metadata.
        let mut tagged = Metadata::new();
        tagged.insert("lang".into(), "en".into());
        assert_eq!(
            unchanged_chunk_count(&[both.clone(), both.clone()], &hash, &version, 0, &tagged),
            None
        );

        // A crash between the two stores' writes.
        let missing = stored(&["a"], &hash, &version);
        assert_eq!(
            unchanged_chunk_count(&[both.clone(), missing], &hash, &version, 0, &NONE),
            None
        );
        assert_eq!(
            unchanged_chunk_count(&[both, Vec::new()], &hash, &version, 0, &NONE),
            None
        );
        // A crash between a store's write and its stale-chunk delete.
        let mut mixed = stored(&["a", "b"], &hash, &version);
        mixed.extend(stored(&["old"], &other_hash, &version));
        assert_eq!(
            unchanged_chunk_count(&[mixed.clone(), mixed], &hash, &version, 0, &NONE),
            None
        );
    }

    #[test]
    fn an_older_version_is_superseded_and_a_newer_one_of_the_same_content_is_written() {
        let (hash, version) = (ContentHash::of(b"v1"), PipelineVersion::derive("p", &[]));
        let at = |document_version| {
            stored(&["a"], &hash, &version)
                .into_iter()
                .map(|chunk| StoredChunk {
                    document_version: Some(document_version),
                    ..chunk
                })
                .collect::<Vec<_>>()
        };
        let holds_five = [at(5)];
        assert_eq!(newer_version(&holds_five, 4), Some(5), "4 is superseded");
        assert_eq!(newer_version(&holds_five, 5), None);
        assert_eq!(
            unchanged_chunk_count(&holds_five, &hash, &version, 5, &NONE),
            Some(1),
            "a redelivery of version 5"
        );
        assert_eq!(
            unchanged_chunk_count(&holds_five, &hash, &version, 6, &NONE),
            None,
            "version 6 of the same content is stamped again"
        );
        // Stores that keep no versions: the version never matters.
        let unversioned = [stored(&["a"], &hash, &version)];
        assert_eq!(newer_version(&unversioned, 0), None);
        assert_eq!(
            unchanged_chunk_count(&unversioned, &hash, &version, 9, &NONE),
            Some(1)
        );
    }
}
