//! The generations a worker writes, following the catalog as it changes.

use crate::{Components, SetupError, StoreWrapper, assemble, pipeline_version};
use docpipe_catalog::{Catalog, Generation, GenerationState, INDEX_FORMAT};
use docpipe_core::{PipelineConfig, PipelineVersion};
use docpipe_embed::ModelDir;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// One assembled [`Components`] per generation the catalog says to write.
/// The catalog is re-read on every call, so a re-index started, switched or
/// rolled back by an operator takes effect at the next delivery, without a
/// restart.
pub struct Generations {
    base: PipelineConfig,
    catalog: Catalog,
    wrap: StoreWrapper,
    assembled: Mutex<HashMap<PipelineVersion, Arc<Components>>>,
}

impl Generations {
    /// Opens the index family of `base` (its `milvus.collection`, and
    /// `bm25.index_dir` in the `embedded` backend). If nothing is live yet, `base`'s own pipeline
    /// becomes the live generation. The live generation is assembled at
    /// once, so a missing model or an unreachable store shows at start-up.
    pub async fn open(base: &PipelineConfig, wrap: StoreWrapper) -> Result<Self, SetupError> {
        let catalog = docpipe_index::catalog(base).await?;
        let version = pipeline_version(base, &ModelDir::open(&base.model.dir)?)?;
        let first = Generation::of(base, version.clone(), GenerationState::Live);
        catalog
            .update(|generations| Ok(generations.bootstrap(first)))
            .await?;
        let generations = Self {
            base: base.clone(),
            catalog,
            wrap,
            assembled: Mutex::new(HashMap::new()),
        };
        let live = generations.live().await?;
        if live.generation.index_format < INDEX_FORMAT {
            tracing::warn!(
                live = %live.generation.version,
                live_index_format = live.generation.index_format,
                index_format = INDEX_FORMAT,
                "the live generation was written by an older docpipe: it is searched without what \
                 newer index formats keep (document titles as a BM25 field of their own) until \
                 `docpipe reindex` rebuilds it as a new generation"
            );
        } else if live.generation.version != version {
            tracing::warn!(
                pipeline_file = %version,
                live = %live.generation.version,
                "the pipeline file describes another generation than the live one; \
                 workers and searchers follow the catalog (run `docpipe reindex` to build and switch to it)"
            );
        }
        // Clients outside docpipe find the live generation through the alias.
        live.index.point_alias(&base.milvus.collection).await?;
        Ok(generations)
    }

    /// The family's catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The live generation.
    pub async fn live(&self) -> Result<Arc<Components>, SetupError> {
        let generations = self.catalog.read().await?;
        let live = generations
            .live()
            .ok_or_else(|| SetupError::NoLiveGeneration(self.catalog.location()))?;
        self.components(live).await
    }

    /// Every generation workers write: live first, then building and previous.
    pub async fn written(&self) -> Result<Vec<Arc<Components>>, SetupError> {
        let generations = self.catalog.read().await?;
        let written = generations.written();
        self.assembled.lock().await.retain(|version, _| {
            written
                .iter()
                .any(|generation| generation.version == *version)
        });
        let mut components = Vec::with_capacity(written.len());
        for generation in written {
            components.push(self.components(generation).await?);
        }
        Ok(components)
    }

    /// The generation of `version`, if the catalog has it and it is written.
    pub async fn get(
        &self,
        version: &PipelineVersion,
    ) -> Result<Option<Arc<Components>>, SetupError> {
        let generations = self.catalog.read().await?;
        match generations.get(version) {
            Some(generation) if generation.state.is_written() => {
                Ok(Some(self.components(generation).await?))
            }
            _ => Ok(None),
        }
    }

    async fn components(&self, generation: &Generation) -> Result<Arc<Components>, SetupError> {
        let mut assembled = self.assembled.lock().await;
        if let Some(components) = assembled.get(&generation.version) {
            return Ok(components.clone());
        }
        tracing::info!(generation = %generation.version, state = generation.state.as_str(), "assembling generation");
        let components = Arc::new(assemble(&self.base, generation, &self.wrap).await?);
        assembled.insert(generation.version.clone(), components.clone());
        Ok(components)
    }
}

/// Drops what generations stored (after `docpipe gc` took them out of
/// the catalog).
pub async fn drop_generations(
    base: &PipelineConfig,
    dropped: &[Generation],
) -> Result<(), SetupError> {
    for generation in dropped {
        docpipe_index::drop_generation(base, generation).await?;
    }
    Ok(())
}
