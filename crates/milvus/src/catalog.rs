//! The `milvus` backend's generation catalog: one row of the collection
//! `<family>_catalog`, holding the catalog as JSON. Every worker and
//! searcher, on any machine, reads it from there; a change replaces the row
//! in one upsert, so a reader sees the catalog before or after it, never
//! half of it.
//!
//! Changes are read-modify-write without a lock across machines: operators'
//! commands (`reindex`, `rollback`, `gc`) must not run at the same time,
//! and workers only ever make the first generation live (the same one, from
//! the same pipeline file).

use crate::columns::{classify, varchar, varchar_column};
use crate::{MilvusEndpoint, MilvusStore};
use docpipe_catalog::{CatalogChange, CatalogError, CatalogStore, Generations};
use docpipe_core::StoreError;
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
// The SDK prelude has its own `Result`; ours carries `CatalogError`.
use std::result::Result;
use std::sync::atomic::{AtomicBool, Ordering};

const FAMILY: &str = "family";
const CONTENT: &str = "generations";
/// Milvus wants a vector field in every collection; this one is unused.
const PLACEHOLDER: &str = "unused_vector";

/// The catalog of the index family `family`, in Milvus.
pub struct MilvusCatalog {
    milvus: MilvusStore,
    family: String,
    /// Whether the collection is known to exist and be loaded, so that
    /// reads (one per delivery) cost one query.
    loaded: AtomicBool,
}

impl MilvusCatalog {
    /// The catalog of `family` (its `milvus.collection`) in the Milvus at
    /// `url`; its collection is created on the first change.
    pub async fn connect(
        endpoint: impl Into<MilvusEndpoint>,
        family: &str,
    ) -> Result<Self, CatalogError> {
        let collection = format!("{family}_catalog");
        let milvus = MilvusStore::existing(endpoint, &collection)
            .await
            .map_err(|error| unavailable(&collection, error))?;
        Ok(Self {
            milvus,
            family: family.to_owned(),
            loaded: AtomicBool::new(false),
        })
    }

    fn error(&self, error: StoreError) -> CatalogError {
        unavailable(self.milvus.collection(), error)
    }

    async fn ensure_collection(&self) -> Result<(), StoreError> {
        if self.loaded.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.milvus.exists().await? {
            self.milvus.load().await?;
            self.loaded.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let schema = sdk::CollectionSchema::new()
            .add_field(varchar(FAMILY, 256).primary_key(true).auto_id(false))
            .add_field(varchar(CONTENT, 65_535))
            .add_field(
                sdk::FieldSchema::new()
                    .name(PLACEHOLDER)
                    .data_type(sdk::DataType::FloatVector)
                    .dimension(2),
            );
        let index = IndexParam::new()
            .field_name(PLACEHOLDER)
            .index_type(IndexType::Flat)
            .metric_type(MetricType::L2);
        self.milvus.create(schema, vec![index], false).await?;
        self.milvus.load().await?;
        self.loaded.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn read_row(&self) -> Result<Generations, StoreError> {
        if !self.loaded.load(Ordering::Relaxed) {
            if !self.milvus.exists().await? {
                return Ok(Generations::default());
            }
            self.ensure_collection().await?;
        }
        let response = self
            .milvus
            .client
            .query(
                QueryRequest::builder()
                    .collection_name(self.milvus.collection())
                    .filter(format!("{FAMILY} == \"{}\"", self.family))
                    .output_fields([CONTENT])
                    .limit(1)
                    .consistency_level(ConsistencyLevel::Strong)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        if response.results().get_row_count() == 0 {
            return Ok(Generations::default());
        }
        let content = varchar_column(response.results().get_output_field(CONTENT), CONTENT)?;
        serde_json::from_str(&content[0]).map_err(|error| StoreError::Rejected {
            store: crate::STORE,
            message: format!(
                "the catalog row of {} in {} is corrupt ({error}); restore it or drop the collection",
                self.family,
                self.milvus.collection()
            ),
        })
    }

    async fn write_row(&self, generations: &Generations) -> Result<(), StoreError> {
        let content = serde_json::to_string(generations).expect("the catalog serializes");
        let columns = vec![
            sdk::FieldData::varchar(FAMILY, vec![self.family.clone()]),
            sdk::FieldData::varchar(CONTENT, vec![content]),
            sdk::FieldData::float_vector(PLACEHOLDER, vec![vec![0.0, 0.0]]),
        ];
        self.milvus.upsert(columns).await
    }

    /// Drops the catalog's collection (when the whole family is removed).
    pub async fn drop_collection(&self) -> Result<(), CatalogError> {
        self.milvus
            .drop_collection()
            .await
            .map_err(|error| self.error(error))
    }
}

fn unavailable(collection: &str, error: StoreError) -> CatalogError {
    CatalogError::Unavailable {
        location: format!("Milvus collection {collection}"),
        message: error.to_string(),
    }
}

#[async_trait::async_trait]
impl CatalogStore for MilvusCatalog {
    fn location(&self) -> String {
        format!("Milvus collection {}", self.milvus.collection())
    }

    async fn read(&self) -> Result<Generations, CatalogError> {
        self.read_row().await.map_err(|error| self.error(error))
    }

    async fn update_with(&self, change: &mut CatalogChange<'_>) -> Result<(), CatalogError> {
        self.ensure_collection()
            .await
            .map_err(|error| self.error(error))?;
        let mut generations = self.read().await?;
        let before = generations.clone();
        change(&mut generations)?;
        if generations != before {
            self.write_row(&generations)
                .await
                .map_err(|error| self.error(error))?;
        }
        Ok(())
    }
}
