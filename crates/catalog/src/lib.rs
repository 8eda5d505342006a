//! The generation catalog: which index generation searchers read, and which
//! one a re-index is building.
//!
//! A *generation* is everything one pipeline version wrote: a Milvus
//! collection `<milvus.collection>_<digest>` and a tantivy index
//! `<bm25.index_dir>/<digest>`, where `<digest>` is the hash part of the
//! pipeline version. The catalog says what each generation is; where it
//! lives depends on the index backend ([`CatalogStore`]): beside the
//! tantivy indexes in `<bm25.index_dir>/generations.json` ([`FileCatalog`],
//! the `embedded` backend), or in a Milvus collection (the `milvus`
//! backend, so that workers and searchers on other machines share it):
//!
//! - **live**: what searchers read (exactly one, once anything is indexed);
//! - **building**: what `docpipe reindex` is filling (at most one);
//! - **previous**: the generation live before the last switch, kept up to
//!   date so that `docpipe rollback` loses nothing;
//! - **retired**: older generations, no longer written, dropped by `docpipe gc`.
//!
//! Workers write every live, building and previous generation (dual write),
//! and re-read the catalog for every delivery; searchers re-read it once a
//! second at most, while they are searching. Switching is one atomic write
//! of the whole catalog (a rename of `generations.json`, an upsert of one
//! Milvus row), so no process ever sees a half-switched catalog, and no
//! restart is needed.
//!
//! The parsed copies a re-index starts from are kept apart, where every
//! worker can read them (the `docpipe-parsed` crate).

#![warn(missing_docs)]

use docpipe_core::config::{ChunkingConfig, ModelConfig};
use docpipe_core::{PipelineConfig, PipelineVersion};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

mod file;
pub use file::FileCatalog;

/// Why the catalog could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file of the catalog could not be read or written.
    #[error("catalog I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file of the catalog is not what this version wrote.
    #[error(
        "{path} is corrupt ({message}); restore it from a backup or remove the index directory"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The requested change does not fit the catalog's current state.
    #[error("{0}")]
    Refused(String),
    /// The store cannot hold the catalog (a server too old, say).
    #[error("{0}")]
    Incompatible(String),
    /// The store holding the catalog cannot be reached; retrying may help.
    #[error("the generation catalog in {location} is unavailable: {message}")]
    Unavailable {
        /// Where the catalog lives.
        location: String,
        /// What happened.
        message: String,
    },
}

impl CatalogError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A change to the catalog's content, as [`CatalogStore::update_with`] applies it.
pub type CatalogChange<'a> =
    dyn for<'g> FnMut(&'g mut Generations) -> Result<(), CatalogError> + Send + 'a;

/// Where a catalog is kept: it reads the whole catalog, and changes it as
/// a whole.
#[async_trait::async_trait]
pub trait CatalogStore: Send + Sync {
    /// Where the catalog lives, for messages (a directory, a collection).
    fn location(&self) -> String;

    /// The current content (empty if nothing was ever indexed).
    async fn read(&self) -> Result<Generations, CatalogError>;

    /// Reads the content, lets `change` change it once, and stores what
    /// it leaves if it succeeds and changed anything.
    async fn update_with(&self, change: &mut CatalogChange<'_>) -> Result<(), CatalogError>;
}

/// What a generation is for; see the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerationState {
    /// Being filled by a re-index; written by workers, not searched.
    Building,
    /// Searched, and written by workers.
    Live,
    /// Live before the last switch; still written, so a rollback loses nothing.
    Previous,
    /// No longer written or searched; dropped by `docpipe gc`.
    Retired,
}

impl GenerationState {
    /// Whether workers write this generation.
    pub fn is_written(self) -> bool {
        self != Self::Retired
    }

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Live => "live",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }
}

/// One generation: a pipeline version and the settings that produce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The pipeline version, e.g. `default@3fa2b1c9d0e1`.
    pub version: PipelineVersion,
    /// What the generation is for.
    pub state: GenerationState,
    /// The pipeline name the version was derived with.
    pub name: String,
    /// Chunking settings of this generation.
    pub chunking: ChunkingConfig,
    /// The model of this generation.
    pub model: ModelConfig,
    /// When it was added, in milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
    /// When it last became live, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_since_unix_ms: Option<u64>,
    /// The [`INDEX_FORMAT`] its stores were written in (1 for generations
    /// catalogued before docpipe recorded it).
    #[serde(default = "first_index_format")]
    pub index_format: u32,
}

/// The revision of what the stores keep of each chunk, beyond what the
/// chunking settings and the model decide. It is part of the pipeline
/// version of new generations, so an index written by an older docpipe is
/// rebuilt by `docpipe reindex` instead of being read as if it had fields
/// it lacks. 1: the first; 2: the document title and heading path in a
/// BM25 field of their own (`context`).
pub const INDEX_FORMAT: u32 = 2;

fn first_index_format() -> u32 {
    1
}

impl Generation {
    /// A generation of `config`'s chunking and model, at `version`, in the
    /// current [`INDEX_FORMAT`].
    pub fn of(config: &PipelineConfig, version: PipelineVersion, state: GenerationState) -> Self {
        Self {
            version,
            state,
            name: config.name.clone(),
            chunking: config.chunking.clone(),
            model: config.model.clone(),
            created_at_unix_ms: now_unix_ms(),
            live_since_unix_ms: (state == GenerationState::Live).then(now_unix_ms),
            index_format: INDEX_FORMAT,
        }
    }

    /// Its Milvus collection, given the family's alias (`milvus.collection`).
    pub fn collection(&self, alias: &str) -> String {
        format!("{alias}_{}", self.version.digest())
    }

    /// Its tantivy directory, given the family's root (`bm25.index_dir`).
    pub fn index_dir(&self, root: &Path) -> PathBuf {
        root.join(self.version.digest())
    }

    /// `base` with this generation's name, chunking, model and stores.
    pub fn pipeline(&self, base: &PipelineConfig) -> PipelineConfig {
        let mut config = base.clone();
        config.name = self.name.clone();
        config.chunking = self.chunking.clone();
        config.model = self.model.clone();
        config.milvus.collection = self.collection(&base.milvus.collection);
        config.bm25.index_dir = self.index_dir(&base.bm25.index_dir);
        config
    }
}

/// The catalog's content: every generation not yet dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generations {
    /// Oldest first.
    pub generations: Vec<Generation>,
}

impl Generations {
    /// The generation in `state`, if any (live and building are unique).
    pub fn in_state(&self, state: GenerationState) -> Option<&Generation> {
        self.generations
            .iter()
            .rev()
            .find(|generation| generation.state == state)
    }

    /// The live generation.
    pub fn live(&self) -> Option<&Generation> {
        self.in_state(GenerationState::Live)
    }

    /// The generation being built.
    pub fn building(&self) -> Option<&Generation> {
        self.in_state(GenerationState::Building)
    }

    /// The generation of `version`.
    pub fn get(&self, version: &PipelineVersion) -> Option<&Generation> {
        self.generations
            .iter()
            .find(|generation| generation.version == *version)
    }

    /// The generations workers write: live first, then building and previous.
    pub fn written(&self) -> Vec<&Generation> {
        let mut written: Vec<&Generation> = self
            .generations
            .iter()
            .filter(|generation| generation.state.is_written())
            .collect();
        written.sort_by_key(|generation| generation.state != GenerationState::Live);
        written
    }

    /// Makes `generation` live if nothing is: the first worker or searcher
    /// of a new index family does this. Returns whether it changed anything.
    pub fn bootstrap(&mut self, generation: Generation) -> bool {
        if self.live().is_some() {
            return false;
        }
        self.generations
            .retain(|existing| existing.version != generation.version);
        self.generations.push(Generation {
            state: GenerationState::Live,
            live_since_unix_ms: Some(now_unix_ms()),
            ..generation
        });
        true
    }

    /// Starts (or resumes) building `generation`. Refused if it is live or
    /// if another generation is being built.
    pub fn begin_building(&mut self, generation: Generation) -> Result<(), CatalogError> {
        if let Some(building) = self.building() {
            if building.version == generation.version {
                return Ok(());
            }
            return Err(CatalogError::Refused(format!(
                "generation {} is being built; finish it (re-run its `docpipe reindex`) or drop it with `docpipe gc --building` first",
                building.version
            )));
        }
        if self
            .get(&generation.version)
            .is_some_and(|existing| existing.state == GenerationState::Live)
        {
            return Err(CatalogError::Refused(format!(
                "generation {} is already live; nothing to re-index",
                generation.version
            )));
        }
        // A previous or retired generation of the same version is rebuilt
        // in place: documents already there are found unchanged.
        self.generations
            .retain(|existing| existing.version != generation.version);
        self.generations.push(Generation {
            state: GenerationState::Building,
            ..generation
        });
        Ok(())
    }

    /// Makes the building generation `version` live; the live one becomes
    /// previous and the previous one retired.
    pub fn switch_to(&mut self, version: &PipelineVersion) -> Result<(), CatalogError> {
        match self.get(version).map(|generation| generation.state) {
            Some(GenerationState::Building) => {}
            Some(state) => {
                return Err(CatalogError::Refused(format!(
                    "generation {version} is {}, not building",
                    state.as_str()
                )));
            }
            None => {
                return Err(CatalogError::Refused(format!(
                    "generation {version} is not in the catalog"
                )));
            }
        }
        self.demote(GenerationState::Previous, GenerationState::Retired);
        self.demote(GenerationState::Live, GenerationState::Previous);
        self.promote(version);
        Ok(())
    }

    /// Makes the previous generation live again and the live one previous.
    /// Returns the generation now live.
    pub fn roll_back(&mut self) -> Result<PipelineVersion, CatalogError> {
        let previous = self
            .in_state(GenerationState::Previous)
            .ok_or_else(|| {
                CatalogError::Refused(
                    "there is no previous generation to roll back to (none switched yet, or `docpipe gc` dropped it)"
                        .into(),
                )
            })?
            .version
            .clone();
        self.demote(GenerationState::Live, GenerationState::Previous);
        self.promote(&previous);
        Ok(previous)
    }

    /// Removes and returns the generations `docpipe gc` drops: previous and
    /// retired ones, and with `building` also an unfinished build.
    pub fn collect_garbage(&mut self, building: bool) -> Vec<Generation> {
        let dropped = |generation: &Generation| match generation.state {
            GenerationState::Previous | GenerationState::Retired => true,
            GenerationState::Building => building,
            GenerationState::Live => false,
        };
        let (gone, kept) = std::mem::take(&mut self.generations)
            .into_iter()
            .partition(dropped);
        self.generations = kept;
        gone
    }

    fn demote(&mut self, from: GenerationState, to: GenerationState) {
        for generation in &mut self.generations {
            if generation.state == from {
                generation.state = to;
            }
        }
    }

    fn promote(&mut self, version: &PipelineVersion) {
        for generation in &mut self.generations {
            if generation.version == *version {
                generation.state = GenerationState::Live;
                generation.live_since_unix_ms = Some(now_unix_ms());
            }
        }
    }
}

/// The generation catalog of one index family, wherever it is kept.
#[derive(Clone)]
pub struct Catalog(Arc<dyn CatalogStore>);

impl Catalog {
    /// The catalog kept in `store`.
    pub fn new(store: impl CatalogStore + 'static) -> Self {
        Self(Arc::new(store))
    }

    /// The catalog kept in `<root>/generations.json`.
    pub fn file(root: &Path) -> Self {
        Self::new(FileCatalog::new(root))
    }

    /// Where the catalog lives, for messages.
    pub fn location(&self) -> String {
        self.0.location()
    }

    /// The current content (empty if nothing was ever indexed).
    pub async fn read(&self) -> Result<Generations, CatalogError> {
        self.0.read().await
    }

    /// Changes the catalog: `change` sees the current content, and what it
    /// leaves is stored as a whole if it succeeds.
    pub async fn update<T: Send>(
        &self,
        change: impl FnOnce(&mut Generations) -> Result<T, CatalogError> + Send,
    ) -> Result<T, CatalogError> {
        let mut change = Some(change);
        let mut result = None;
        self.0
            .update_with(&mut |generations| {
                let change = change
                    .take()
                    .expect("a catalog store calls the change once");
                result = Some(change(generations)?);
                Ok(())
            })
            .await?;
        Ok(result.expect("the change ran"))
    }

    /// Makes the previous generation live again and the live one previous
    /// (see [`Generations::roll_back`]); with `expected_live`, only if that
    /// is the generation live now, so that a stale confirmation cannot roll
    /// back twice. Returns the generation now live.
    pub async fn roll_back(&self, expected_live: Option<&str>) -> Result<Generation, CatalogError> {
        self.update(|generations| {
            let current = generations.live().map(|live| live.version.to_string());
            if let Some(expected) = expected_live.filter(|expected| current.as_deref() != Some(*expected)) {
                return Err(CatalogError::Refused(format!(
                    "generation {expected:?} is not live (the live one is {current:?}); reload and confirm again"
                )));
            }
            let live = generations.roll_back()?;
            Ok(generations
                .get(&live)
                .cloned()
                .expect("the generation just made live"))
        })
        .await
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PipelineConfig {
        PipelineConfig::from_toml(include_str!("../../../pipelines/default.toml")).unwrap()
    }

    fn generation(digest: &str) -> Generation {
        Generation::of(
            &config(),
            PipelineVersion::from_stored(format!("default@{digest}")),
            GenerationState::Building,
        )
    }

    #[test]
    fn a_generation_catalogued_before_index_formats_were_recorded_is_of_the_first() {
        let mut old = serde_json::to_value(generation("3fa2b1c9d0e1")).unwrap();
        old.as_object_mut().unwrap().remove("index_format");
        let old: Generation = serde_json::from_value(old).unwrap();
        assert_eq!(old.index_format, 1);
        assert_eq!(generation("3fa2b1c9d0e1").index_format, INDEX_FORMAT);
    }

    fn states(generations: &Generations) -> Vec<(String, &'static str)> {
        generations
            .generations
            .iter()
            .map(|generation| {
                (
                    generation.version.digest().to_owned(),
                    generation.state.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn a_reindex_switches_then_rolls_back_without_losing_a_generation() {
        let mut catalog = Generations::default();
        assert!(catalog.bootstrap(generation("aaa")));
        assert!(!catalog.bootstrap(generation("bbb")), "one live generation");

        catalog.begin_building(generation("bbb")).unwrap();
        assert_eq!(
            states(&catalog),
            [("aaa".into(), "live"), ("bbb".into(), "building")]
        );
        assert_eq!(catalog.written().len(), 2, "dual write while building");
        assert_eq!(catalog.written()[0].version.digest(), "aaa", "live first");

        catalog.switch_to(&generation("bbb").version).unwrap();
        assert_eq!(
            states(&catalog),
            [("aaa".into(), "previous"), ("bbb".into(), "live")]
        );

        assert_eq!(catalog.roll_back().unwrap().digest(), "aaa");
        assert_eq!(
            states(&catalog),
            [("aaa".into(), "live"), ("bbb".into(), "previous")]
        );

        let dropped = catalog.collect_garbage(false);
        assert_eq!(dropped.len(), 1);
        assert_eq!(states(&catalog), [("aaa".into(), "live")]);
        assert!(catalog.roll_back().is_err(), "nothing left to roll back to");
    }

    #[test]
    fn only_one_generation_is_built_at_a_time_and_never_the_live_one() {
        let mut catalog = Generations::default();
        catalog.bootstrap(generation("aaa"));
        let error = catalog.begin_building(generation("aaa")).unwrap_err();
        assert!(error.to_string().contains("already live"), "{error}");

        catalog.begin_building(generation("bbb")).unwrap();
        catalog.begin_building(generation("bbb")).unwrap();
        let error = catalog.begin_building(generation("ccc")).unwrap_err();
        assert!(error.to_string().contains("being built"), "{error}");
        assert!(catalog.switch_to(&generation("ccc").version).is_err());
    }

    #[test]
    fn a_second_switch_retires_the_oldest_generation() {
        let mut catalog = Generations::default();
        catalog.bootstrap(generation("aaa"));
        for next in ["bbb", "ccc"] {
            catalog.begin_building(generation(next)).unwrap();
            catalog.switch_to(&generation(next).version).unwrap();
        }
        assert_eq!(
            states(&catalog),
            [
                ("aaa".into(), "retired"),
                ("bbb".into(), "previous"),
                ("ccc".into(), "live")
            ]
        );
        assert_eq!(
            catalog.written().len(),
            2,
            "retired generations are not written"
        );
    }

    #[tokio::test]
    async fn changes_survive_a_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let catalog = Catalog::file(directory.path());
        assert_eq!(catalog.read().await.unwrap(), Generations::default());
        catalog
            .update(|generations| {
                generations.bootstrap(generation("aaa"));
                Ok(())
            })
            .await
            .unwrap();
        let reopened = Catalog::file(directory.path()).read().await.unwrap();
        assert_eq!(reopened.live().unwrap().version.digest(), "aaa");
    }

    #[tokio::test]
    async fn a_rollback_confirmed_for_a_generation_no_longer_live_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let catalog = Catalog::file(directory.path());
        catalog
            .update(|generations| {
                generations.bootstrap(generation("aaa"));
                generations.begin_building(generation("bbb"))?;
                generations.switch_to(&generation("bbb").version)
            })
            .await
            .unwrap();
        let live = generation("bbb").version.to_string();
        let stale = generation("aaa").version.to_string();
        let refused = catalog.roll_back(Some(&stale)).await.unwrap_err();
        assert!(matches!(refused, CatalogError::Refused(_)), "{refused}");
        let now_live = catalog.roll_back(Some(&live)).await.unwrap();
        assert_eq!(now_live.version.digest(), "aaa");
        assert_eq!(
            catalog
                .read()
                .await
                .unwrap()
                .live()
                .unwrap()
                .version
                .digest(),
            "aaa"
        );
        // Unconfirmed, as `docpipe rollback` does: back to "bbb".
        assert_eq!(
            catalog.roll_back(None).await.unwrap().version.digest(),
            "bbb"
        );
    }

    #[test]
    fn a_generation_names_its_own_collection_and_directory() {
        let generation = generation("3fa2b1c9d0e1");
        let pipeline = generation.pipeline(&config());
        assert_eq!(pipeline.milvus.collection, "docpipe_chunks_3fa2b1c9d0e1");
        assert!(
            pipeline
                .bm25
                .index_dir
                .ends_with("docpipe_chunks/3fa2b1c9d0e1")
        );
    }
}
