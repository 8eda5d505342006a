//! The ingestion worker: message → document → chunks → vectors → stores →
//! ack/event.
//!
//! [`Indexer`] runs one document through every stage; [`Worker`] feeds it
//! from RabbitMQ and settles each delivery; [`assemble`] builds the real
//! components from a pipeline definition.

mod indexer;
mod source;
mod worker;

pub use indexer::{IndexError, Indexed, Indexer};
pub use source::{SourceError, SourceReader};
pub use worker::{Worker, WorkerSummary};

use docpipe_bm25::Bm25Store;
use docpipe_chunk::{ChunkError, Chunker};
use docpipe_core::{ChunkStore, PipelineConfig, PipelineVersion, StoreError};
use docpipe_embed::{EmbedError, ModelDir, OnnxEmbedder};
use docpipe_milvus::MilvusStore;
use std::sync::Arc;

/// Why the pipeline's components could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The model or ONNX Runtime is unusable.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// A store is unreachable or incompatible.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chunker settings are unusable.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// The allowed source roots are unusable.
    #[error("{0}")]
    Sources(String),
}

/// The real components of a pipeline.
pub struct Components {
    /// The wired stages.
    pub indexer: Arc<Indexer>,
    /// The Milvus store (also needed to flush on shutdown).
    pub milvus: MilvusStore,
    /// The tantivy store.
    pub bm25: Bm25Store,
}

/// The version of everything that shapes chunks and vectors: chunking
/// settings, the model's manifest and its weights.
pub fn pipeline_version(
    config: &PipelineConfig,
    model_dir: &ModelDir,
) -> Result<PipelineVersion, EmbedError> {
    Ok(PipelineVersion::derive(
        &config.name,
        &[&config.chunking_fingerprint(), &model_dir.fingerprint()?],
    ))
}

/// Loads the model, connects to Milvus, opens the tantivy index, and wires
/// the stages. The pipeline version covers chunking settings and the model's
/// manifest and weights.
pub async fn assemble(config: &PipelineConfig) -> Result<Components, SetupError> {
    assemble_with(config, |store| store).await
}

/// Like [`assemble`], with every store passed through `wrap` on its way
/// into the indexer (fault-injection tests wrap real stores this way).
pub async fn assemble_with(
    config: &PipelineConfig,
    wrap: impl Fn(Arc<dyn ChunkStore>) -> Arc<dyn ChunkStore>,
) -> Result<Components, SetupError> {
    let sources =
        SourceReader::new(&config.sources, &config.limits).map_err(SetupError::Sources)?;
    let model_dir = ModelDir::open(&config.model.dir)?;
    let version = pipeline_version(config, &model_dir)?;
    let embedder = Arc::new(OnnxEmbedder::load(
        &model_dir,
        config.model.batch_size,
        config.model.intra_threads,
    )?);
    let chunker = Chunker::new(
        model_dir.tokenizer()?,
        &config.chunking,
        config.limits.max_chunks_per_document,
    )?;
    let milvus = MilvusStore::connect(
        &config.milvus.url,
        &config.milvus.collection,
        embedder.manifest().dimension,
    )
    .await?;
    let bm25 = Bm25Store::open(&config.bm25.index_dir)?;
    let stores: Vec<Arc<dyn ChunkStore>> =
        vec![wrap(Arc::new(milvus.clone())), wrap(Arc::new(bm25.clone()))];
    let indexer = Indexer::new(
        sources,
        &config.limits,
        &config.retry,
        chunker,
        embedder,
        stores,
        version,
    );
    Ok(Components {
        indexer: Arc::new(indexer),
        milvus,
        bm25,
    })
}
