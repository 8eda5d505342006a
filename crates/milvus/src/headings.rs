//! Chunks' heading paths in a collection: a varchar column holding each
//! path as a JSON array of strings. Collections created before docpipe
//! stored heading paths lack the column; they stay readable and writable,
//! their hits without a path, until a re-index replaces them.

use crate::MilvusStore;
use crate::columns::{malformed, varchar, varchar_column};
use docpipe_core::{IndexedChunk, StoreError};
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

/// The column's name.
pub(crate) const HEADING_PATH: &str = "heading_path";

/// The column in a collection schema. The chunker bounds a path to 16
/// headings of 200 characters, well within the limit even escaped.
pub(crate) fn heading_path_field() -> sdk::FieldSchema {
    varchar(HEADING_PATH, 65_535)
}

/// Whether a collection's schema has the column.
pub(crate) fn has_heading_paths(schema: &sdk::CollectionSchema) -> bool {
    schema
        .get_fields()
        .iter()
        .any(|field| field.get_name() == HEADING_PATH)
}

impl MilvusStore {
    /// `fields`, and the heading path if the collection has it: what a
    /// search returns with each hit.
    pub(crate) fn hit_fields(&self, fields: &[&'static str]) -> Vec<&'static str> {
        let mut fields = fields.to_vec();
        if self.heading_paths {
            fields.push(HEADING_PATH);
        }
        fields
    }

    /// Adds the chunks' heading paths to the columns of a write, if the
    /// collection has the column.
    pub(crate) fn add_heading_paths(
        &self,
        columns: &mut Vec<sdk::FieldData>,
        chunks: &[IndexedChunk],
    ) {
        if self.heading_paths {
            let paths = chunks
                .iter()
                .map(|chunk| {
                    serde_json::to_string(&chunk.chunk.heading_path)
                        .expect("a list of strings always serializes")
                })
                .collect();
            columns.push(sdk::FieldData::varchar(HEADING_PATH, paths));
        }
    }
}

/// The heading path of each of `rows` hits, from the result's column (none
/// when the collection predates it).
pub(crate) fn heading_paths(
    column: Option<&FieldData>,
    rows: usize,
) -> Result<Vec<Vec<String>>, StoreError> {
    let Some(column) = column else {
        return Ok(vec![Vec::new(); rows]);
    };
    varchar_column(Some(column), HEADING_PATH)?
        .iter()
        .map(|path| {
            serde_json::from_str(path).map_err(|error| {
                malformed(format!(
                    "stored heading path {path:?} is not a JSON list of strings: {error}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::testing::indexed_chunks;
    use docpipe_core::{ChunkStore, DocumentId, SearchScope, TenantId};

    const DIMENSION: usize = 4;

    /// A collection created before docpipe stored heading paths (the dense
    /// store's schema without the column), against the real Milvus.
    #[tokio::test]
    async fn a_collection_without_heading_paths_stays_readable_and_writable() {
        let url =
            std::env::var("DOCPIPE_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".into());
        let collection = format!("test_no_headings_{}", std::process::id());
        let mut legacy = sdk::CollectionSchema::new();
        for field in crate::dense_schema(DIMENSION).get_fields() {
            if field.get_name() != HEADING_PATH {
                legacy = legacy.add_field(field.clone());
            }
        }
        let creator = MilvusStore::existing(&url, &collection).await.unwrap();
        creator
            .create(legacy, vec![crate::dense_index()], true)
            .await
            .unwrap();

        let store = MilvusStore::connect(&url, &collection, DIMENSION)
            .await
            .unwrap();
        assert!(!store.heading_paths);
        let chunks = indexed_chunks("acme", "old", &["written after the upgrade"], DIMENSION);
        assert!(!chunks[0].chunk.heading_path.is_empty());
        let (tenant, document) = (
            TenantId::new("acme").unwrap(),
            DocumentId::new("old").unwrap(),
        );
        store
            .replace_document(&tenant, &document, &chunks)
            .await
            .unwrap();
        let hits = store
            .search(&SearchScope::tenant(tenant), chunks[0].vector.clone(), 1)
            .await
            .unwrap();
        assert_eq!(hits[0].text, "written after the upgrade");
        assert!(hits[0].heading_path.is_empty());
        store.drop_collection().await.unwrap();
    }
}
