//! Search of an index generation — dense, BM25 and hybrid (the two fused,
//! by their scores or their ranks, as the pipeline's `[search]` section says),
//! whichever backend holds it — and gold-set evaluation.
//!
//! Results are documents: each document's best chunk, shown as evidence.
//! A [`Searcher`] reads the live generation of the generation catalog and
//! follows it, within a second, when an operator switches or rolls back,
//! without a restart.

#![warn(missing_docs)]

mod eval;
mod fusion;
mod shown;

pub use eval::{EvalError, GoldQuery, ModeReport, QueryOutcome, evaluate, read_gold_set};
use fusion::scored;
pub use fusion::{HybridRankings, RankedDocument, best_chunk_per_document, fuse};
use shown::with_text;

use docpipe_catalog::{Catalog, CatalogError, Generation};
use docpipe_core::{
    ChunkHit, Classify, DocumentId, ErrorClass, PipelineConfig, PipelineVersion, RankedChunk,
    SearchScope, StoreError, TenantId,
};
use docpipe_embed::{BatchingEmbedder, EmbedError, Embedder, ModelDir};
use docpipe_index::{Access, GenerationIndex};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The dense and BM25 rankings fused as `[search]` says.
    Hybrid,
    /// Milvus nearest neighbours of the query embedding.
    Dense,
    /// BM25 (tantivy, or Milvus full-text search).
    Bm25,
}

impl Mode {
    /// Every mode, in the order reports list them.
    pub const ALL: [Mode; 3] = [Mode::Hybrid, Mode::Dense, Mode::Bm25];

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Dense => "dense",
            Self::Bm25 => "bm25",
        }
    }
}

/// One document found, with its best chunk as evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocumentHit {
    /// The document.
    pub document_id: DocumentId,
    /// The mode's score for the document (the fused score for hybrid).
    pub score: f32,
    /// The chunk that earned the score.
    pub chunk: ChunkHit,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query could not be embedded.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The generation catalog is unreadable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The caller asked for more (or fewer) results than a search returns.
    #[error("top_k is {0}; ask for 1 to {MAX_TOP_K} documents")]
    TopK(usize),
    /// Nothing was ever indexed in this index family.
    #[error(
        "nothing is indexed in {0} yet (no live generation); start a worker (`docpipe worker`) and publish documents"
    )]
    NothingIndexed(String),
}

impl SearchError {
    /// Whether retrying the same search may succeed (a store or the
    /// catalog was unreachable, say).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Embed(error) => error.class() == ErrorClass::Transient,
            Self::Store(error) => error.class() == ErrorClass::Transient,
            Self::Catalog(error) => {
                matches!(
                    error,
                    CatalogError::Unavailable { .. } | CatalogError::Io { .. }
                )
            }
            Self::TopK(_) | Self::NothingIndexed(_) => false,
        }
    }
}

/// Most documents one search returns: each asks the stores for five times
/// as many chunks (so that enough distinct documents survive grouping), and
/// Milvus returns at most 16,384 (`docpipe_milvus::MAX_SEARCH_LIMIT`) per search.
pub const MAX_TOP_K: usize = 1000;

/// A query embedded by the model of one generation, to run in several
/// modes without embedding it again (see [`Searcher::embed_query`]).
#[derive(Debug, Clone)]
pub struct EmbeddedQuery {
    version: PipelineVersion,
    vector: Arc<Vec<f32>>,
}

/// One search: what to look for, where, how, and how many documents.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The tenant, and maybe some of its documents.
    pub scope: SearchScope,
    /// The query, as a person typed it.
    pub query: String,
    /// How to search.
    pub mode: Mode,
    /// How many documents to return, 1 to [`MAX_TOP_K`].
    pub top_k: usize,
}

/// What a search found, and how long each stage took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResults {
    /// The generation searched.
    pub generation: PipelineVersion,
    /// The best documents, best first.
    pub documents: Vec<DocumentHit>,
    /// Time spent in each stage.
    pub timings: StageTimings,
}

/// Milliseconds spent in each stage of one search.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimings {
    /// Embedding the query (0 when the query embedding cache had it, or
    /// the mode needs no vector).
    pub embed_ms: f64,
    /// Whether the query's embedding came from the cache.
    pub embedding_cached: bool,
    /// Searching the stores.
    pub retrieve_ms: f64,
    /// Fusing the rankings (hybrid) and grouping chunks into documents.
    pub group_ms: f64,
    /// Reading the text of the chunks shown (searches rank chunks without
    /// it).
    pub text_ms: f64,
    /// The whole search.
    pub total_ms: f64,
}

/// How many times its candidates a hybrid search's dense search fetches
/// when the opening ranking is on, to find openings among them.
const OPENING_DEPTH: usize = 4;

/// The document openings (first chunks) among `hits`, nearest first, at
/// most `limit`. They are exactly the openings a search of openings alone
/// would rank first, since every opening nearer the query than one in
/// `hits` is in `hits` too; a second search, filtered to openings, cost
/// Milvus more CPU than the first (its fixed cost per search, and a graph
/// walk that skips 24 of 25 chunks).
fn openings_among(hits: &[RankedChunk], limit: usize) -> Vec<RankedChunk> {
    hits.iter()
        .filter(|hit| hit.ordinal == 0)
        .take(limit)
        .cloned()
        .collect()
}

/// Query embeddings kept per generation: at 384 dimensions, about 15 MB.
const QUERY_CACHE_ENTRIES: usize = 10_000;

/// How long searches trust the catalog as a searcher read it last. Read
/// for every search, it cost a Strong Milvus query each in the `milvus`
/// backend (200–400 ms on Milvus 2.3); this way one search a second reads
/// it, and a switch or rollback reaches searches within a second.
const CATALOG_FRESH_FOR: Duration = Duration::from_secs(1);

/// Searches the live generation of a pipeline's index family.
pub struct Searcher {
    base: PipelineConfig,
    catalog: Catalog,
    /// The live generation as the catalog said last, and when it was read.
    followed: Mutex<Option<Followed>>,
    /// Held by the one search that reads the catalog again.
    reading: tokio::sync::Mutex<()>,
}

/// A live generation and when the catalog said so.
#[derive(Clone)]
struct Followed {
    searcher: Arc<GenerationSearcher>,
    read_at: Instant,
}

impl Followed {
    fn is_fresh(&self) -> bool {
        self.read_at.elapsed() < CATALOG_FRESH_FOR
    }
}

/// The model and index of one generation.
struct GenerationSearcher {
    version: PipelineVersion,
    embedder: Arc<BatchingEmbedder>,
    index: Arc<dyn GenerationIndex>,
    /// Recent queries' embeddings: people repeat queries, and a cached
    /// embedding saves the only CPU-heavy stage of a search.
    cache: Mutex<LruCache<String, Arc<Vec<f32>>>>,
}

impl GenerationSearcher {
    async fn open(base: &PipelineConfig, generation: &Generation) -> Result<Self, SearchError> {
        let config = generation.pipeline(base);
        let model = ModelDir::open(&config.model.dir)?;
        let embedder = Arc::new(BatchingEmbedder::for_queries(&model, &config.model)?);
        let dimension = embedder.manifest().dimension;
        let index = docpipe_index::open(base, generation, dimension, Access::Read).await?;
        Ok(Self {
            version: generation.version.clone(),
            embedder,
            index,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(QUERY_CACHE_ENTRIES).expect("non-zero"),
            )),
        })
    }
}

impl Searcher {
    /// A searcher of the index family named by a pipeline definition (its
    /// `milvus.collection`, and `bm25.index_dir` in the `embedded`
    /// backend); the generation searched is whichever the catalog says is
    /// live, read again once a second at most.
    pub async fn open(config: &PipelineConfig) -> Result<Self, SearchError> {
        let searcher = Self {
            base: config.clone(),
            catalog: docpipe_index::catalog(config).await?,
            followed: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
        };
        searcher.live().await?;
        Ok(searcher)
    }

    /// The version of the live generation, as the catalog says now (searches
    /// follow it from here on).
    pub async fn live_version(&self) -> Result<PipelineVersion, SearchError> {
        let _reading = self.reading.lock().await;
        Ok(self.read_live().await?.version.clone())
    }

    /// The live generation's index, as searches read it.
    pub async fn live_index(&self) -> Result<Arc<dyn GenerationIndex>, SearchError> {
        Ok(self.live().await?.index.clone())
    }

    /// The generation catalog searches follow.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The live generation searches read: as the catalog said within
    /// [`CATALOG_FRESH_FOR`], or read again.
    async fn live(&self) -> Result<Arc<GenerationSearcher>, SearchError> {
        if let Some(followed) = self.followed() {
            if followed.is_fresh() {
                return Ok(followed.searcher);
            }
            // One search reads the catalog again; the others meanwhile
            // search the generation it said last.
            return match self.reading.try_lock() {
                Ok(_reading) => self.read_live().await,
                Err(_) => Ok(followed.searcher),
            };
        }
        let _reading = self.reading.lock().await;
        match self.followed().filter(Followed::is_fresh) {
            Some(followed) => Ok(followed.searcher),
            None => self.read_live().await,
        }
    }

    /// Reads the catalog and follows its live generation, opened once.
    async fn read_live(&self) -> Result<Arc<GenerationSearcher>, SearchError> {
        let generations = self.catalog.read().await?;
        let live = generations
            .live()
            .ok_or_else(|| SearchError::NothingIndexed(self.catalog.location()))?;
        let searcher = match self
            .followed()
            .filter(|followed| followed.searcher.version == live.version)
        {
            Some(followed) => followed.searcher,
            None => Arc::new(GenerationSearcher::open(&self.base, live).await?),
        };
        *self.followed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Followed {
            searcher: searcher.clone(),
            read_at: Instant::now(),
        });
        Ok(searcher)
    }

    fn followed(&self) -> Option<Followed> {
        self.followed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `top_k` best documents of `tenant` for `query`, in the live generation.
    pub async fn search(
        &self,
        tenant: &TenantId,
        query: &str,
        mode: Mode,
        top_k: usize,
    ) -> Result<Vec<DocumentHit>, SearchError> {
        let request = SearchRequest {
            scope: SearchScope::from(tenant),
            query: query.to_owned(),
            mode,
            top_k,
        };
        Ok(self.find(&request).await?.documents)
    }

    /// Runs `request` in the live generation: its documents, and how long
    /// each stage took.
    #[tracing::instrument(
        name = "docpipe.search",
        skip_all,
        fields(
            mode = request.mode.as_str(),
            tenant = %request.scope.tenant_id(),
            top_k = request.top_k,
            generation = tracing::field::Empty,
            results = tracing::field::Empty,
            scores = tracing::field::Empty,
            embedding_cached = tracing::field::Empty,
        )
    )]
    pub async fn find(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let results = self.run(request, None).await?;
        let span = tracing::Span::current();
        span.record("generation", results.generation.as_str());
        span.record("embedding_cached", results.timings.embedding_cached);
        // Document ids and scores, never chunk text: it may be confidential.
        let ids: Vec<&str> = results
            .documents
            .iter()
            .map(|hit| hit.document_id.as_str())
            .collect();
        let scores: Vec<String> = results
            .documents
            .iter()
            .map(|hit| format!("{:.4}", hit.score))
            .collect();
        span.record("results", ids.join(","));
        span.record("scores", scores.join(","));
        Ok(results)
    }

    /// `query` embedded by the live generation's model, for
    /// [`search_embedded`](Self::search_embedded) in several modes.
    pub async fn embed_query(&self, query: &str) -> Result<EmbeddedQuery, SearchError> {
        let live = self.live().await?;
        Ok(EmbeddedQuery {
            version: live.version.clone(),
            vector: live.embed(query).await?,
        })
    }

    /// Like [`search`](Self::search), reusing `embedded` (from
    /// [`embed_query`](Self::embed_query) with the same text) where the
    /// mode needs the query's vector and the live generation is still the
    /// one that embedded it.
    pub async fn search_embedded(
        &self,
        tenant: &TenantId,
        query: &str,
        embedded: Option<&EmbeddedQuery>,
        mode: Mode,
        top_k: usize,
    ) -> Result<Vec<DocumentHit>, SearchError> {
        let request = SearchRequest {
            scope: SearchScope::from(tenant),
            query: query.to_owned(),
            mode,
            top_k,
        };
        Ok(self.run(&request, embedded).await?.documents)
    }

    async fn run(
        &self,
        request: &SearchRequest,
        embedded: Option<&EmbeddedQuery>,
    ) -> Result<SearchResults, SearchError> {
        let started = Instant::now();
        let top_k = request.top_k;
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(SearchError::TopK(top_k));
        }
        let live = self.live().await?;
        let mut timings = StageTimings::default();
        let vector = match (request.mode, embedded) {
            (Mode::Bm25, _) => None,
            (_, Some(embedded)) if embedded.version == live.version => {
                Some(embedded.vector.clone())
            }
            _ => {
                let embedding = Instant::now();
                let (vector, cached) = live.cached_embedding(&request.query).await?;
                timings.embed_ms = milliseconds(embedding.elapsed());
                timings.embedding_cached = cached;
                Some(vector)
            }
        };
        // Several chunks of one document may lead a ranking; fetch enough
        // chunks that `top_k` distinct documents survive grouping.
        let candidates = (top_k * 5).max(50);
        let opening_weight = self.base.search.opening_weight;
        let dense_limit = match request.mode {
            Mode::Hybrid if opening_weight > 0.0 => candidates * OPENING_DEPTH,
            _ => candidates,
        };
        let (scope, query) = (&request.scope, request.query.as_str());
        let retrieval = Instant::now();
        let index = &live.index;
        let dense = |vector: Arc<Vec<f32>>| {
            index
                .dense(scope, vector.to_vec(), dense_limit)
                .instrument(tracing::info_span!("docpipe.dense"))
        };
        let keyword = || {
            index
                .keyword(scope, query, candidates)
                .instrument(tracing::info_span!("docpipe.bm25"))
        };
        let rankings = match vector {
            None => Rankings::One(keyword().await?),
            Some(vector) if request.mode == Mode::Dense => Rankings::One(dense(vector).await?),
            Some(vector) => {
                let (dense, keyword) = tokio::join!(dense(vector), keyword());
                let mut dense = dense?;
                let openings = if dense_limit > candidates {
                    openings_among(&dense, candidates)
                } else {
                    Vec::new()
                };
                dense.truncate(candidates);
                Rankings::Hybrid(HybridRankings {
                    dense,
                    keyword: keyword?,
                    openings,
                    limit: candidates,
                })
            }
        };
        timings.retrieve_ms = milliseconds(retrieval.elapsed());
        let grouping = Instant::now();
        let mut ranked = match rankings {
            Rankings::One(hits) => best_chunk_per_document(scored(hits)),
            Rankings::Hybrid(rankings) => {
                let _fuse = tracing::info_span!("docpipe.fuse").entered();
                fuse(&self.base.search, &rankings)
            }
        };
        ranked.truncate(top_k);
        timings.group_ms = milliseconds(grouping.elapsed());
        let reading = Instant::now();
        let documents = with_text(index.as_ref(), scope, ranked)
            .instrument(tracing::info_span!("docpipe.text"))
            .await?;
        timings.text_ms = milliseconds(reading.elapsed());
        timings.total_ms = milliseconds(started.elapsed());
        Ok(SearchResults {
            generation: live.version.clone(),
            documents,
            timings,
        })
    }
}

impl GenerationSearcher {
    #[tracing::instrument(name = "docpipe.embed", skip_all)]
    async fn embed(&self, query: &str) -> Result<Arc<Vec<f32>>, SearchError> {
        let embedder = self.embedder.clone();
        let query = query.to_owned();
        let vector = tokio::task::spawn_blocking(move || embedder.embed_query(&query))
            .await
            .map_err(|error| EmbedError::Inference(error.to_string()))??;
        Ok(Arc::new(vector))
    }

    /// The query's vector from the cache, or embedded now and cached;
    /// and whether the cache had it.
    async fn cached_embedding(&self, query: &str) -> Result<(Arc<Vec<f32>>, bool), SearchError> {
        if let Some(vector) = self.lock_cache().get(query) {
            return Ok((vector.clone(), true));
        }
        let vector = self.embed(query).await?;
        self.lock_cache().put(query.to_owned(), vector.clone());
        Ok((vector, false))
    }

    fn lock_cache(&self) -> MutexGuard<'_, LruCache<String, Arc<Vec<f32>>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn milliseconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// What the stores returned for one search.
enum Rankings {
    /// One mode's chunks, best first.
    One(Vec<RankedChunk>),
    /// What a hybrid search fuses.
    Hybrid(HybridRankings),
}
