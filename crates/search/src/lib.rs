//! Search of an index generation — dense, BM25 and hybrid (Reciprocal Rank
//! Fusion of the two), whichever backend holds it — and gold-set
//! evaluation.
//!
//! Results are documents: each document's best chunk, shown as evidence.
//! A [`Searcher`] reads the live generation of the generation catalog and
//! follows it when an operator switches or rolls back, without a restart.

#![warn(missing_docs)]

mod eval;
mod grouping;

pub use docpipe_index::{RRF_K, reciprocal_rank_fusion};
pub use eval::{EvalError, GoldQuery, ModeReport, evaluate, read_gold_set};
pub use grouping::best_chunk_per_document;

use docpipe_catalog::{Catalog, CatalogError, Generation};
use docpipe_core::{ChunkHit, DocumentId, PipelineConfig, PipelineVersion, StoreError, TenantId};
use docpipe_embed::{BatchLimits, EmbedError, Embedder, ModelDir, OnnxEmbedder};
use docpipe_index::{Access, GenerationIndex};
use std::sync::Arc;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// RRF (k = 60) of dense and BM25 rankings.
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
    /// The mode's score for the document (RRF score for hybrid).
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

/// Most documents one search returns: each asks the stores for five times
/// as many chunks (so that enough distinct documents survive grouping), and
/// Milvus returns at most 16,384 (`docpipe_milvus::MAX_SEARCH_LIMIT`) per search.
pub const MAX_TOP_K: usize = 1000;

/// A query embedded by the model of one generation, to run in several
/// modes without embedding it again (see [`Searcher::embed_query`]).
#[derive(Debug, Clone)]
pub struct EmbeddedQuery {
    version: PipelineVersion,
    vector: Vec<f32>,
}

/// Searches the live generation of a pipeline's index family.
pub struct Searcher {
    base: PipelineConfig,
    catalog: Catalog,
    current: tokio::sync::Mutex<Option<Arc<GenerationSearcher>>>,
}

/// The model and index of one generation.
struct GenerationSearcher {
    version: PipelineVersion,
    embedder: Arc<dyn Embedder>,
    index: Arc<dyn GenerationIndex>,
}

impl GenerationSearcher {
    async fn open(base: &PipelineConfig, generation: &Generation) -> Result<Self, SearchError> {
        let config = generation.pipeline(base);
        let model = ModelDir::open(&config.model.dir)?;
        let embedder = Arc::new(OnnxEmbedder::load(
            &model,
            BatchLimits::new(1, 1),
            config.model.intra_threads,
        )?);
        let index = docpipe_index::open(
            base,
            generation,
            embedder.manifest().dimension,
            Access::Read,
        )
        .await?;
        Ok(Self {
            version: generation.version.clone(),
            embedder,
            index,
        })
    }
}

impl Searcher {
    /// A searcher of the index family named by a pipeline definition (its
    /// `milvus.collection`, and `bm25.index_dir` in the `embedded`
    /// backend); the generation searched is whichever the catalog says is
    /// live at each search.
    pub async fn open(config: &PipelineConfig) -> Result<Self, SearchError> {
        let searcher = Self {
            base: config.clone(),
            catalog: docpipe_index::catalog(config).await?,
            current: tokio::sync::Mutex::new(None),
        };
        searcher.live().await?;
        Ok(searcher)
    }

    /// The version of the generation searches read now.
    pub async fn live_version(&self) -> Result<PipelineVersion, SearchError> {
        Ok(self.live().await?.version.clone())
    }

    async fn live(&self) -> Result<Arc<GenerationSearcher>, SearchError> {
        let generations = self.catalog.read().await?;
        let live = generations
            .live()
            .ok_or_else(|| SearchError::NothingIndexed(self.catalog.location()))?;
        let mut current = self.current.lock().await;
        if let Some(searcher) = current
            .as_ref()
            .filter(|searcher| searcher.version == live.version)
        {
            return Ok(searcher.clone());
        }
        let searcher = Arc::new(GenerationSearcher::open(&self.base, live).await?);
        *current = Some(searcher.clone());
        Ok(searcher)
    }

    /// The `top_k` best documents of `tenant` for `query`, in the live generation.
    pub async fn search(
        &self,
        tenant: &TenantId,
        query: &str,
        mode: Mode,
        top_k: usize,
    ) -> Result<Vec<DocumentHit>, SearchError> {
        self.search_embedded(tenant, query, None, mode, top_k).await
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
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(SearchError::TopK(top_k));
        }
        let live = self.live().await?;
        let vector = embedded
            .filter(|embedded| embedded.version == live.version)
            .map(|embedded| embedded.vector.clone());
        // Several chunks of one document may lead a ranking; fetch enough
        // chunks that `top_k` distinct documents survive grouping.
        let candidates = (top_k * 5).max(50);
        let chunks = match mode {
            Mode::Bm25 => scored(live.index.keyword(tenant, query, candidates).await?),
            Mode::Dense => {
                let vector = live.vector(query, vector).await?;
                scored(live.index.dense(tenant, vector, candidates).await?)
            }
            Mode::Hybrid => {
                let vector = live.vector(query, vector).await?;
                live.index.hybrid(tenant, query, vector, candidates).await?
            }
        };
        let mut documents = best_chunk_per_document(chunks);
        documents.truncate(top_k);
        Ok(documents)
    }
}

impl GenerationSearcher {
    async fn embed(&self, query: &str) -> Result<Vec<f32>, SearchError> {
        let embedder = self.embedder.clone();
        let query = query.to_owned();
        Ok(
            tokio::task::spawn_blocking(move || embedder.embed_query(&query))
                .await
                .map_err(|error| EmbedError::Inference(error.to_string()))??,
        )
    }

    /// The query's vector: `vector` if given, else embedded here.
    async fn vector(&self, query: &str, vector: Option<Vec<f32>>) -> Result<Vec<f32>, SearchError> {
        match vector {
            Some(vector) => Ok(vector),
            None => self.embed(query).await,
        }
    }
}

/// Pairs each hit with its store score, keeping the store's order.
fn scored(hits: Vec<ChunkHit>) -> Vec<(ChunkHit, f32)> {
    hits.into_iter()
        .map(|hit| {
            let score = hit.score;
            (hit, score)
        })
        .collect()
}
