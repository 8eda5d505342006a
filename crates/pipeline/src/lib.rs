//! The ingestion worker: message → document → chunks → vectors → stores →
//! ack/event.
//!
//! [`Indexer`] runs one document through every stage of one generation;
//! [`Generations`] keeps one indexer per generation the catalog says to
//! write; [`Worker`] feeds them from RabbitMQ and settles each delivery;
//! [`assemble`] builds a generation's real components.

#![warn(missing_docs)]

mod generations;
mod https;
mod in_flight;
mod indexer;
mod s3;
mod source;
mod worker;

pub use generations::{Generations, drop_generations};
pub use indexer::{IndexError, Indexed, Indexer};
pub use source::{SourceError, SourceReader};
pub use worker::{Worker, WorkerSummary};

use docpipe_catalog::{CatalogError, Generation, INDEX_FORMAT};
use docpipe_chunk::{ChunkError, Chunker};
use docpipe_core::{ChunkStore, DocumentsUnderway, PipelineConfig, PipelineVersion, StoreError};
use docpipe_embed::{BatchingEmbedder, EmbedError, ModelDir};
use docpipe_index::{Access, GenerationIndex};
use docpipe_parse::DocumentParser;
use docpipe_parsed::ParsedCopies;
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
    /// The catalog has no live generation.
    #[error(
        "the catalog in {0} has no live generation; start a worker with a pipeline file to create one"
    )]
    NoLiveGeneration(String),
    /// The generation catalog is unusable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The PDF engine or OCR cannot be set up.
    #[error(transparent)]
    Parser(#[from] docpipe_parse::ParserSetupError),
    /// The parsed copies' location is unusable.
    #[error(transparent)]
    Parsed(#[from] docpipe_parsed::ParsedError),
    /// A generation's model files are not the ones it was built with.
    #[error(
        "the model files of generation {generation} changed on disk (they now make {now}); restore them, or build a new generation with `docpipe reindex`"
    )]
    ModelChanged {
        /// The generation.
        generation: PipelineVersion,
        /// The version the files on disk make.
        now: PipelineVersion,
    },
}

impl SetupError {
    /// Whether trying again later may succeed: a store that is unavailable
    /// (not running yet, restarting), rather than a wrong setting.
    pub fn is_transient(&self) -> bool {
        use docpipe_core::{Classify as _, ErrorClass};
        match self {
            Self::Store(error) => error.class() == ErrorClass::Transient,
            Self::Parsed(error) => error.class() == ErrorClass::Transient,
            Self::Catalog(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// Wraps each store on its way into an indexer (fault-injection tests
/// wrap real stores this way); [`no_wrapping`] leaves them as they are.
pub type StoreWrapper = Arc<dyn Fn(Arc<dyn ChunkStore>) -> Arc<dyn ChunkStore> + Send + Sync>;

/// A [`StoreWrapper`] that changes nothing.
pub fn no_wrapping() -> StoreWrapper {
    Arc::new(|store| store)
}

/// The real components of one generation.
pub struct Components {
    /// The generation, as the catalog had it when it was assembled.
    pub generation: Generation,
    /// The wired stages.
    pub indexer: Arc<Indexer>,
    /// The generation's index, as its backend lays it out.
    pub index: Arc<dyn GenerationIndex>,
}

/// The version of everything that shapes chunks and vectors, for a new
/// generation: chunking settings, the model's manifest and its weights, and
/// the current [`INDEX_FORMAT`].
pub fn pipeline_version(
    config: &PipelineConfig,
    model_dir: &ModelDir,
) -> Result<PipelineVersion, EmbedError> {
    pipeline_version_in_format(config, model_dir, INDEX_FORMAT)
}

/// The version as derived for a generation written in `index_format`: the
/// first format is not part of it, so versions derived before formats were
/// numbered stay what they were.
pub fn pipeline_version_in_format(
    config: &PipelineConfig,
    model_dir: &ModelDir,
    index_format: u32,
) -> Result<PipelineVersion, EmbedError> {
    let chunking = config.chunking_fingerprint();
    let model = model_dir.fingerprint()?;
    let format = format!("index format {index_format}");
    let mut parts: Vec<&[u8]> = vec![&chunking, &model];
    if index_format > 1 {
        parts.push(format.as_bytes());
    }
    Ok(PipelineVersion::derive(&config.name, &parts))
}

/// Loads a generation's model, opens its index (Milvus, and tantivy in the
/// `embedded` backend), and wires the stages; `base` gives everything that is not
/// the generation's own (limits, sources, queues, connection URLs).
pub async fn assemble(
    base: &PipelineConfig,
    generation: &Generation,
    wrap: &StoreWrapper,
) -> Result<Components, SetupError> {
    let config = generation.pipeline(base);
    let sources =
        SourceReader::new(&config.sources, &config.limits).map_err(SetupError::Sources)?;
    let model_dir = ModelDir::open(&config.model.dir)?;
    let version = pipeline_version_in_format(&config, &model_dir, generation.index_format)?;
    if version != generation.version {
        return Err(SetupError::ModelChanged {
            generation: generation.version.clone(),
            now: version,
        });
    }
    let embedder = Arc::new(BatchingEmbedder::for_model(
        &model_dir,
        &config.model,
        // Every document being prepared may wait for the executor at once.
        config.worker.preparing_documents,
    )?);
    let dimension = embedder.manifest().dimension;
    let chunker = Chunker::new(
        model_dir.tokenizer()?,
        &config.chunking,
        config.limits.max_chunks_per_document,
    )?;
    let underway = DocumentsUnderway::default();
    let index =
        docpipe_index::open(base, generation, dimension, Access::Write(underway.clone())).await?;
    let stores: Vec<Arc<dyn ChunkStore>> = index
        .stores()
        .iter()
        .map(|store| wrap(store.clone()))
        .collect();
    let indexer = Indexer::new(
        sources,
        DocumentParser::for_pipeline(&config)?,
        &config.limits,
        &config.retry,
        config.worker.preparing_documents,
        chunker,
        embedder,
        stores,
        version,
        underway,
        ParsedCopies::for_pipeline(base)?,
    );
    Ok(Components {
        generation: generation.clone(),
        indexer: Arc::new(indexer),
        index,
    })
}
