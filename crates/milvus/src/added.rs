//! Columns added to docpipe's collections after the first ones were
//! created: each chunk's heading path (a varchar holding a JSON array of
//! strings) and its document's metadata (JSON). Collections created before
//! lack both; they stay readable and writable, their hits without a path
//! and their documents without metadata (a metadata filter matches none of
//! them), until a re-index replaces them.

use crate::MilvusStore;
use crate::columns::{malformed, varchar, varchar_column};
use docpipe_core::{IndexedChunk, Metadata, StoreError};
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

/// The heading path column.
pub(crate) const HEADING_PATH: &str = "heading_path";
/// The metadata column.
pub(crate) const METADATA: &str = "metadata";

/// `schema` with the added columns. The chunker bounds a heading path to
/// 16 headings of 200 characters, well within the varchar's limit even
/// escaped.
pub(crate) fn with_added_fields(schema: sdk::CollectionSchema) -> sdk::CollectionSchema {
    schema.add_field(varchar(HEADING_PATH, 65_535)).add_field(
        sdk::FieldSchema::new()
            .name(METADATA)
            .data_type(sdk::DataType::Json),
    )
}

/// Whether a collection's schema has the added columns; refuses one with
/// only some of them (no docpipe version created such a collection).
pub(crate) fn has_added_columns(
    collection: &str,
    schema: &sdk::CollectionSchema,
) -> Result<bool, StoreError> {
    let present = |name: &str| {
        schema
            .get_fields()
            .iter()
            .any(|field| field.get_name() == name)
    };
    match (present(HEADING_PATH), present(METADATA)) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        _ => Err(malformed(format!(
            "collection {collection} has only one of the columns {HEADING_PATH} and {METADATA}; \
             it was not created by docpipe: use another milvus.collection"
        ))),
    }
}

impl MilvusStore {
    /// `fields`, and `added` if the collection has the added columns.
    pub(crate) fn with_added(
        &self,
        fields: &[&'static str],
        added: &'static str,
    ) -> Vec<&'static str> {
        let mut fields = fields.to_vec();
        if self.added_columns {
            fields.push(added);
        }
        fields
    }

    /// Adds the chunks' heading paths and metadata to the columns of a
    /// write, if the collection has the columns.
    pub(crate) fn add_added_columns(
        &self,
        columns: &mut Vec<sdk::FieldData>,
        chunks: &[IndexedChunk],
    ) {
        if !self.added_columns {
            return;
        }
        let paths = chunks
            .iter()
            .map(|chunk| {
                serde_json::to_string(&chunk.chunk.heading_path)
                    .expect("a list of strings always serializes")
            })
            .collect();
        columns.push(sdk::FieldData::varchar(HEADING_PATH, paths));
        let metadata = chunks
            .iter()
            .map(|chunk| serde_json::Value::Object(chunk.metadata.clone()))
            .collect();
        columns.push(sdk::FieldData::json(METADATA, metadata));
    }
}

/// The metadata of each of `rows` stored chunks, from the result's column
/// (none when the collection predates it).
pub(crate) fn metadata_column(
    column: Option<&FieldData>,
    rows: usize,
) -> Result<Vec<Metadata>, StoreError> {
    let Some(column) = column else {
        return Ok(vec![Metadata::new(); rows]);
    };
    let values = column
        .as_json()
        .ok_or_else(|| malformed(format!("response has no JSON column {METADATA}")))?;
    Ok(values
        .iter()
        .map(|value| value.as_object().cloned().unwrap_or_default())
        .collect())
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

    /// A collection created before docpipe stored heading paths and
    /// metadata (the dense store's schema without them), against the real
    /// Milvus.
    #[tokio::test]
    async fn a_collection_without_the_added_columns_stays_readable_and_writable() {
        let url =
            std::env::var("DOCPIPE_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".into());
        let collection = format!("test_no_headings_{}", std::process::id());
        let mut legacy = sdk::CollectionSchema::new();
        for field in crate::dense_schema(DIMENSION).get_fields() {
            if ![HEADING_PATH, METADATA].contains(&field.get_name()) {
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
        assert!(!store.added_columns);
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
