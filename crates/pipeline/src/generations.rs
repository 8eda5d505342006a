//! The generations a worker writes, following the catalog as it changes.

use crate::{Components, SetupError, StoreWrapper, assemble, pipeline_version};
use docpipe_catalog::{Catalog, CatalogError, Generation, GenerationState};
use docpipe_core::{PipelineConfig, PipelineVersion};
use docpipe_embed::ModelDir;
use docpipe_milvus::MilvusStore;
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
    /// Opens the index family of `base` (its `milvus.collection` and
    /// `bm25.index_dir`). If nothing is live yet, `base`'s own pipeline
    /// becomes the live generation. The live generation is assembled at
    /// once, so a missing model or an unreachable store shows at start-up.
    pub async fn open(base: &PipelineConfig, wrap: StoreWrapper) -> Result<Self, SetupError> {
        let catalog = Catalog::new(&base.bm25.index_dir);
        let version = pipeline_version(base, &ModelDir::open(&base.model.dir)?)?;
        let first = Generation::of(base, version.clone(), GenerationState::Live);
        catalog.update(|generations| Ok(generations.bootstrap(first)))?;
        let generations = Self {
            base: base.clone(),
            catalog,
            wrap,
            assembled: Mutex::new(HashMap::new()),
        };
        let live = generations.live().await?;
        if live.generation.version != version {
            tracing::warn!(
                pipeline_file = %version,
                live = %live.generation.version,
                "the pipeline file describes another generation than the live one; \
                 workers and searchers follow the catalog (run `docpipe reindex` to build and switch to it)"
            );
        }
        // Clients outside docpipe find the live generation through the alias.
        live.milvus.point_alias(&base.milvus.collection).await?;
        Ok(generations)
    }

    /// The family's catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The live generation.
    pub async fn live(&self) -> Result<Arc<Components>, SetupError> {
        let generations = self.catalog.read()?;
        let live = generations
            .live()
            .ok_or_else(|| SetupError::NoLiveGeneration(self.catalog.root().to_owned()))?;
        self.components(live).await
    }

    /// Every generation workers write: live first, then building and previous.
    pub async fn written(&self) -> Result<Vec<Arc<Components>>, SetupError> {
        let generations = self.catalog.read()?;
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
        let generations = self.catalog.read()?;
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

/// Drops generations' Milvus collections and tantivy directories (after
/// `docpipe gc` took them out of the catalog).
pub async fn drop_generations(
    base: &PipelineConfig,
    dropped: &[Generation],
) -> Result<(), SetupError> {
    for generation in dropped {
        let config = generation.pipeline(base);
        MilvusStore::existing(&config.milvus.url, &config.milvus.collection)
            .await?
            .drop_collection()
            .await?;
        remove_dir(&config.bm25.index_dir)?;
    }
    Ok(())
}

/// Removes a whole index family: its alias, every generation, the catalog
/// and parsed copies (tests and the bench clean up with this).
pub async fn remove_family(base: &PipelineConfig) -> Result<(), SetupError> {
    let catalog = Catalog::new(&base.bm25.index_dir);
    let generations = catalog.read()?.generations;
    let alias = &base.milvus.collection;
    MilvusStore::existing(&base.milvus.url, alias)
        .await?
        .drop_alias(alias)
        .await?;
    drop_generations(base, &generations).await?;
    remove_dir(&base.bm25.index_dir)
}

fn remove_dir(directory: &std::path::Path) -> Result<(), SetupError> {
    match std::fs::remove_dir_all(directory) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(SetupError::Catalog(CatalogError::Io {
                path: directory.to_owned(),
                source: error,
            }))
        }
        _ => Ok(()),
    }
}
