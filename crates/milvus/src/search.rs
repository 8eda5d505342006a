//! Nearest-neighbour search of a generation's chunks.

use crate::MilvusStore;
use crate::added::{HEADING_PATH, METADATA, OCR_CONFIDENCE, heading_paths, ocr_confidences};
use crate::coalesce::{SearchQuery, SearchShape};
use crate::columns::quoted_list;
use crate::columns::{int64_column, malformed, varchar_column, varchar_ids};
use docpipe_core::config::ReadConsistency;
use docpipe_core::{
    ChunkHit, ChunkId, ChunkText, DocumentId, RankedChunk, SearchScope, StoreError,
};
use milvus::v2::prelude::*;
use std::collections::HashMap;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

/// The HNSW search breadth used when a search asks for fewer candidates:
/// what docpipe always used, measured against the gold sets.
const MIN_EF: usize = 64;

/// Most hits one Milvus search returns (its `topk` limit).
pub const MAX_SEARCH_LIMIT: usize = 16_384;

/// The HNSW search breadth for `limit` hits: Milvus refuses an `ef` below
/// the number of hits asked for ("ef(64) should be larger than k(65)"), so
/// it grows with the limit.
pub(crate) fn ef_for(limit: usize) -> usize {
    limit.max(MIN_EF)
}

/// `limit`, at least 1; more than [`MAX_SEARCH_LIMIT`] is refused.
pub(crate) fn checked_limit(limit: usize) -> Result<usize, StoreError> {
    if limit > MAX_SEARCH_LIMIT {
        return Err(StoreError::Rejected {
            store: crate::STORE,
            message: format!("a search may ask for at most {MAX_SEARCH_LIMIT} chunks, not {limit}"),
        });
    }
    Ok(limit.max(1))
}

/// The boolean expression that keeps a search inside `scope`. Metadata
/// keys are plain words (`MetadataFilter` refuses others) and values JSON
/// literals, so neither can change the expression's shape.
pub(crate) fn scope_filter(scope: &SearchScope) -> String {
    let mut filter = format!("tenant == \"{}\"", scope.tenant_id());
    if let Some(documents) = scope.documents() {
        filter.push_str(&format!(" && document_id in {}", quoted_list(documents)));
    }
    for (key, accepted) in scope.metadata().conditions() {
        let any: Vec<String> = accepted
            .iter()
            .map(|value| format!("{METADATA}[\"{key}\"] == {}", value.literal()))
            .collect();
        filter.push_str(&format!(" && ({})", any.join(" || ")));
    }
    filter
}

impl MilvusStore {
    /// `scope`'s filter expression, or `None` when nothing can match: a
    /// metadata filter naming a key that cannot be filtered on, or on a
    /// collection that predates metadata.
    pub(crate) fn filter_for(&self, scope: &SearchScope) -> Option<String> {
        let metadata = scope.metadata();
        let satisfiable = metadata.is_empty()
            || (self.added.headings_and_metadata && !metadata.is_unsatisfiable());
        satisfiable.then(|| scope_filter(scope))
    }
}

/// The SDK's level for a docpipe read consistency.
pub(crate) fn consistency_level(consistency: ReadConsistency) -> ConsistencyLevel {
    match consistency {
        ReadConsistency::Strong => ConsistencyLevel::Strong,
        ReadConsistency::Bounded => ConsistencyLevel::Bounded,
        ReadConsistency::Session => ConsistencyLevel::Session,
        ReadConsistency::Eventually => ConsistencyLevel::Eventually,
    }
}

impl MilvusStore {
    /// The `limit` chunks in `scope` nearest to `vector` by cosine, read
    /// with the store's search consistency (see
    /// [`with_search_consistency`](Self::with_search_consistency)), ranked
    /// without their text. `limit` is at most [`MAX_SEARCH_LIMIT`]; more is
    /// refused. Searches made at the same time with the same scope and
    /// limit share one request to Milvus.
    pub async fn search(
        &self,
        scope: &SearchScope,
        vector: Vec<f32>,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        self.search_field(SearchQuery::Vector(vector), &RANKED_FIELDS, scope, limit)
            .await
    }

    /// The `limit` chunks in `scope` that `query` finds in the field its
    /// kind searches, with the columns in `fields` (at least
    /// [`RANKED_FIELDS`]).
    pub(crate) async fn search_field(
        &self,
        query: SearchQuery,
        fields: &[&'static str],
        scope: &SearchScope,
        limit: usize,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        let limit = checked_limit(limit)?;
        let Some(filter) = self.filter_for(scope) else {
            return Ok(Vec::new());
        };
        let shape = SearchShape {
            collection: self.collection.clone(),
            field: query.field(),
            filter,
            output_fields: fields.to_vec(),
            limit,
            consistency: self.search_consistency,
        };
        self.searches.search(shape, query).await
    }
}

/// The columns a search ranks chunks with. Not their text: a search of 200
/// candidates shows 10 at most, and returning the text of every candidate
/// cost Milvus 2.3 a quarter of its CPU per query, and docpipe the decoding
/// (docs/performance.md).
pub(crate) const RANKED_FIELDS: [&str; 2] = ["document_id", "ordinal"];

/// The metric and search parameters of a search of `field` for `limit`
/// hits: BM25 for the sparse field, inner product with a breadth of
/// [`ef_for`] for the dense one.
pub(crate) fn search_params(field: &str, limit: usize) -> (MetricType, HashMap<String, String>) {
    if field == crate::fulltext::SPARSE {
        (MetricType::Bm25, HashMap::new())
    } else {
        (
            MetricType::Ip,
            HashMap::from([("ef".into(), ef_for(limit).to_string())]),
        )
    }
}

/// The chunks one query of a search found, best first, with the server's
/// scores.
pub(crate) fn ranked_chunks(result: &SingleResult) -> Result<Vec<RankedChunk>, StoreError> {
    let ids = varchar_ids(result.get_ids())?;
    // Milvus sends no output columns at all when nothing matched.
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The `milvus` backend's key is the chunk id and a version, so its
    // hits carry the chunk id in a column; the dense store's key is it.
    let chunk_ids = match result.get_output_field("chunk_id") {
        Some(column) => varchar_column(Some(column), "chunk_id")?,
        None => ids,
    };
    ranked_in_columns(
        |name| result.get_output_field(name),
        chunk_ids,
        result.get_scores(),
    )
}

/// The chunks in the columns of a search's or a query's result (`column`
/// gives each by name), one per id of `chunk_ids`, scored by `scores` (0
/// where it has no score: a query ranks nothing).
fn ranked_in_columns<'a>(
    column: impl Fn(&str) -> Option<&'a FieldData>,
    chunk_ids: &[String],
    scores: &[f32],
) -> Result<Vec<RankedChunk>, StoreError> {
    let documents = varchar_column(column("document_id"), "document_id")?;
    let ordinals = int64_column(column("ordinal"), "ordinal")?;
    (0..chunk_ids.len())
        .map(|row| {
            Ok(RankedChunk {
                chunk_id: ChunkId::from_stored(chunk_ids[row].clone()),
                document_id: DocumentId::new(documents[row].clone()).map_err(|error| {
                    malformed(format!("stored document id is invalid: {error}"))
                })?,
                ordinal: ordinals[row] as u32,
                score: scores.get(row).copied().unwrap_or_default(),
            })
        })
        .collect()
}

/// What search results show of each of `rows` chunks in the columns of a
/// query's result (`column` gives each by name).
pub(crate) fn texts_in_columns<'a>(
    column: impl Fn(&str) -> Option<&'a FieldData>,
    rows: usize,
) -> Result<Vec<ChunkText>, StoreError> {
    let pages = int64_column(column("page"), "page")?;
    let texts = varchar_column(column("text"), "text")?;
    let heading_paths = heading_paths(column(HEADING_PATH), rows)?;
    let ocr_confidences = ocr_confidences(column(OCR_CONFIDENCE), rows)?;
    Ok(heading_paths
        .into_iter()
        .zip(ocr_confidences)
        .enumerate()
        .map(|(row, (heading_path, ocr_confidence))| ChunkText {
            page: (pages[row] > 0).then_some(pages[row] as u32),
            heading_path,
            text: texts[row].clone(),
            ocr_confidence,
        })
        .collect())
}

/// The chunks, with what results show of them, in the columns of a
/// query's result (`column` gives each by name), one per id of `chunk_ids`.
pub(crate) fn hits_in_columns<'a>(
    column: impl Fn(&str) -> Option<&'a FieldData> + Copy,
    chunk_ids: &[String],
) -> Result<Vec<ChunkHit>, StoreError> {
    let ranked = ranked_in_columns(column, chunk_ids, &[])?;
    let texts = texts_in_columns(column, chunk_ids.len())?;
    Ok(ranked
        .into_iter()
        .zip(texts)
        .map(|(ranked, text)| ChunkHit::new(ranked, text))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_filters_on_the_tenant_and_on_the_documents_it_names() {
        let tenant = docpipe_core::TenantId::new("acme").unwrap();
        let scope = SearchScope::tenant(tenant);
        assert_eq!(scope_filter(&scope), r#"tenant == "acme""#);
        let narrowed = scope.with_documents(vec![
            DocumentId::new("guides/a").unwrap(),
            DocumentId::new("b").unwrap(),
        ]);
        assert_eq!(
            scope_filter(&narrowed),
            r#"tenant == "acme" && document_id in ["guides/a","b"]"#
        );
        let filter = docpipe_core::MetadataFilter::from_json(
            serde_json::json!({"lang": ["en", "say \"hi\""], "year": 2024})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            scope_filter(&narrowed.with_metadata(filter)),
            r#"tenant == "acme" && document_id in ["guides/a","b"] && (metadata["lang"] == "en" || metadata["lang"] == "say \"hi\"") && (metadata["year"] == 2024)"#
        );
    }

    #[test]
    fn the_search_breadth_is_never_below_the_hits_asked_for() {
        assert_eq!(ef_for(10), MIN_EF);
        assert_eq!(ef_for(65), 65);
        assert_eq!(ef_for(MAX_SEARCH_LIMIT), MAX_SEARCH_LIMIT);
    }
}
