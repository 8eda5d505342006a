//! The index's schema, and the fields of an index as found on disk.

use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

/// The fields of an open index.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub(crate) chunk_id: Field,
    pub(crate) document_id: Field,
    pub(crate) tenant: Field,
    pub(crate) ordinal: Field,
    pub(crate) page: Field,
    pub(crate) body: Field,
    pub(crate) text: Field,
    /// The next three are absent from indexes written before chunks kept
    /// their heading path and their document's metadata.
    pub(crate) heading_path: Option<Field>,
    /// The document's metadata as JSON.
    pub(crate) metadata: Option<Field>,
    /// `key=literal` terms of the metadata, for filters.
    pub(crate) metadata_terms: Option<Field>,
    /// OCR's confidence on the chunk's page, when OCR read it (absent from
    /// indexes written before docpipe stored it).
    pub(crate) ocr_confidence: Option<Field>,
    /// The document's title and the chunk's heading path, analysed as
    /// `body` is, for a BM25 match of their own (absent from indexes
    /// written before docpipe ranked them apart).
    pub(crate) context: Option<Field>,
    pub(crate) pipeline_version: Field,
    pub(crate) content_hash: Field,
    pub(crate) source: Field,
}

/// The stored field holding a chunk's headings, one value per level.
const HEADING_PATH: &str = "heading_path";
/// The stored field holding the document's metadata as JSON.
const METADATA: &str = "metadata";
/// The indexed terms of the metadata (see `docpipe_core::metadata::metadata_terms`).
const METADATA_TERMS: &str = "metadata_terms";
/// The stored OCR confidence of chunks OCR read.
const OCR_CONFIDENCE: &str = "ocr_confidence";
/// The indexed title and heading path.
const CONTEXT: &str = "context";

/// The schema of new indexes.
pub(crate) fn schema() -> Schema {
    let mut builder = Schema::builder();
    let body = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let context = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    builder.add_text_field("chunk_id", STRING | STORED);
    builder.add_text_field("document_id", STRING | STORED);
    builder.add_text_field("tenant", STRING | STORED);
    builder.add_u64_field("ordinal", INDEXED | STORED);
    builder.add_u64_field("page", STORED);
    builder.add_text_field("body", body);
    builder.add_text_field("text", STORED);
    builder.add_text_field("pipeline_version", STRING | STORED);
    builder.add_text_field("content_hash", STRING | STORED);
    builder.add_text_field("source", STRING | STORED);
    builder.add_text_field(HEADING_PATH, STORED);
    builder.add_text_field(METADATA, STORED);
    builder.add_text_field(METADATA_TERMS, STRING);
    builder.add_f64_field(OCR_CONFIDENCE, STORED);
    builder.add_text_field(CONTEXT, context);
    builder.build()
}

impl Fields {
    /// The fields of an index whose schema is [`schema`]'s, or [`schema`]'s
    /// without some of the fields added since (indexes written before
    /// chunks kept heading paths, metadata and OCR confidence: they stay
    /// searchable, and a re-index fills them in).
    pub(crate) fn of(found: &Schema) -> Result<Self, String> {
        let current = schema();
        let unknown = found.fields().find(|(_, entry)| {
            current
                .get_field(entry.name())
                .map_or(true, |field| current.get_field_entry(field) != *entry)
        });
        if let Some((_, entry)) = unknown {
            return Err(format!(
                "its field {} is not one this version writes",
                entry.name()
            ));
        }
        let field = |name: &str| {
            found
                .get_field(name)
                .map_err(|_| format!("it has no field {name}"))
        };
        Ok(Self {
            chunk_id: field("chunk_id")?,
            document_id: field("document_id")?,
            tenant: field("tenant")?,
            ordinal: field("ordinal")?,
            page: field("page")?,
            body: field("body")?,
            text: field("text")?,
            pipeline_version: field("pipeline_version")?,
            content_hash: field("content_hash")?,
            source: field("source")?,
            heading_path: found.get_field(HEADING_PATH).ok(),
            metadata: found.get_field(METADATA).ok(),
            ocr_confidence: found.get_field(OCR_CONFIDENCE).ok(),
            metadata_terms: found.get_field(METADATA_TERMS).ok(),
            context: found.get_field(CONTEXT).ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields added after the first indexes were written.
    const ADDED_FIELDS: [&str; 5] = [
        HEADING_PATH,
        METADATA,
        METADATA_TERMS,
        OCR_CONFIDENCE,
        CONTEXT,
    ];

    /// The schema of indexes written before chunks kept their heading path
    /// and metadata.
    fn without_heading_paths() -> Schema {
        let mut builder = Schema::builder();
        for (_, entry) in schema().fields() {
            if !ADDED_FIELDS.contains(&entry.name()) {
                builder.add_field(entry.clone());
            }
        }
        builder.build()
    }

    #[test]
    fn an_index_without_heading_paths_is_still_usable() {
        let fields = Fields::of(&without_heading_paths()).unwrap();
        assert!(fields.heading_path.is_none() && fields.metadata_terms.is_none());
        assert!(fields.ocr_confidence.is_none() && fields.context.is_none());
        let fields = Fields::of(&schema()).unwrap();
        assert!(fields.heading_path.is_some() && fields.metadata_terms.is_some());
        assert!(fields.ocr_confidence.is_some() && fields.context.is_some());
    }

    #[tokio::test]
    async fn an_index_written_before_heading_paths_opens_and_takes_writes() {
        use docpipe_core::{ChunkStore, DocumentId, SearchScope, TenantId};
        let dir = tempfile::tempdir().unwrap();
        tantivy::Index::create_in_dir(dir.path(), without_heading_paths()).unwrap();
        let store = crate::Bm25Store::open(dir.path()).unwrap();
        let chunks = docpipe_core::testing::indexed_chunks("a", "old", &["spring tides"], 4);
        let (tenant, document) = (TenantId::new("a").unwrap(), DocumentId::new("old").unwrap());
        store
            .replace_document(&tenant, &document, &chunks)
            .await
            .unwrap();
        let hits = store
            .search(&SearchScope::tenant(tenant.clone()), "tides", 1)
            .await
            .unwrap();
        let chunk = hits[0].chunk_id.clone();
        let shown = store
            .chunk_texts(&tenant, std::slice::from_ref(&chunk))
            .await
            .unwrap();
        assert_eq!(shown[&chunk].text, "spring tides");
        assert!(shown[&chunk].heading_path.is_empty());
    }

    #[test]
    fn an_index_of_another_shape_is_refused_naming_the_field() {
        let mut builder = Schema::builder();
        builder.add_text_field("chunk_id", STRING | STORED);
        builder.add_text_field("body", STRING);
        let error = Fields::of(&builder.build()).err().unwrap();
        assert!(error.contains("body"), "{error}");
        let mut builder = Schema::builder();
        builder.add_text_field("chunk_id", STRING | STORED);
        let error = Fields::of(&builder.build()).err().unwrap();
        assert!(error.contains("no field document_id"), "{error}");
    }
}
