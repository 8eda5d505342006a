//! Columns added to docpipe's collections after the first ones were
//! created: each chunk's heading path (a varchar holding a JSON array of
//! strings) and its document's metadata (JSON); later, OCR's confidence on
//! the chunk's page (a float, [`NOT_OCR`] for text the document carried).
//! Collections created before lack them; they stay readable and writable,
//! their hits without a path or OCR confidence and their documents without
//! metadata (a metadata filter matches none of them), until a re-index
//! replaces them.

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
/// The OCR confidence column.
pub(crate) const OCR_CONFIDENCE: &str = "ocr_confidence";
/// What the OCR confidence column holds for a chunk OCR did not read
/// (Milvus 2.3 has no nullable columns).
const NOT_OCR: f32 = -1.0;

/// Which added columns a collection has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AddedColumns {
    /// The heading path and metadata columns (added together).
    pub headings_and_metadata: bool,
    /// The OCR confidence column.
    pub ocr_confidence: bool,
}

impl AddedColumns {
    /// A collection this version creates.
    pub(crate) const ALL: Self = Self {
        headings_and_metadata: true,
        ocr_confidence: true,
    };
}

/// `schema` with the added columns. The chunker bounds a heading path to
/// 16 headings of 200 characters, well within the varchar's limit even
/// escaped.
pub(crate) fn with_added_fields(schema: sdk::CollectionSchema) -> sdk::CollectionSchema {
    schema
        .add_field(varchar(HEADING_PATH, 65_535))
        .add_field(
            sdk::FieldSchema::new()
                .name(METADATA)
                .data_type(sdk::DataType::Json),
        )
        .add_field(
            sdk::FieldSchema::new()
                .name(OCR_CONFIDENCE)
                .data_type(sdk::DataType::Float),
        )
}

/// Which added columns a collection's schema has; refuses one with only
/// one of the heading path and metadata columns, or the OCR column without
/// them (no docpipe version created such a collection).
pub(crate) fn added_columns(
    collection: &str,
    schema: &sdk::CollectionSchema,
) -> Result<AddedColumns, StoreError> {
    let present = |name: &str| {
        schema
            .get_fields()
            .iter()
            .any(|field| field.get_name() == name)
    };
    match (
        present(HEADING_PATH),
        present(METADATA),
        present(OCR_CONFIDENCE),
    ) {
        (true, true, ocr_confidence) => Ok(AddedColumns {
            headings_and_metadata: true,
            ocr_confidence,
        }),
        (false, false, false) => Ok(AddedColumns::default()),
        _ => Err(malformed(format!(
            "collection {collection} has only some of the columns {HEADING_PATH}, {METADATA} and \
             {OCR_CONFIDENCE}; it was not created by docpipe: use another milvus.collection"
        ))),
    }
}

impl MilvusStore {
    /// `fields`, and the metadata column if the collection has it.
    pub(crate) fn with_metadata(&self, fields: &[&'static str]) -> Vec<&'static str> {
        let mut fields = fields.to_vec();
        if self.added.headings_and_metadata {
            fields.push(METADATA);
        }
        fields
    }

    /// `fields`, and the added columns a search hit shows (heading path,
    /// OCR confidence) that the collection has.
    pub(crate) fn with_hit_columns(&self, fields: &[&'static str]) -> Vec<&'static str> {
        let mut fields = fields.to_vec();
        if self.added.headings_and_metadata {
            fields.push(HEADING_PATH);
        }
        if self.added.ocr_confidence {
            fields.push(OCR_CONFIDENCE);
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
        if self.added.ocr_confidence {
            let confidences = chunks
                .iter()
                .map(|chunk| chunk.chunk.ocr_confidence.unwrap_or(NOT_OCR))
                .collect();
            columns.push(sdk::FieldData::float(OCR_CONFIDENCE, confidences));
        }
        if !self.added.headings_and_metadata {
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

/// The OCR confidence of each of `rows` hits, from the result's column
/// (none when the collection predates it).
pub(crate) fn ocr_confidences(
    column: Option<&FieldData>,
    rows: usize,
) -> Result<Vec<Option<f32>>, StoreError> {
    let Some(column) = column else {
        return Ok(vec![None; rows]);
    };
    let values = column
        .as_float()
        .ok_or_else(|| malformed(format!("response has no float column {OCR_CONFIDENCE}")))?;
    Ok(values
        .iter()
        .map(|&confidence| (confidence >= 0.0).then_some(confidence))
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
            if ![HEADING_PATH, METADATA, OCR_CONFIDENCE].contains(&field.get_name()) {
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
        assert_eq!(store.added, AddedColumns::default());
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
        assert_eq!(hits[0].chunk_id, chunks[0].chunk.id);
        store.drop_collection().await.unwrap();
    }
}
