//! Builders for tests of stages and stores (feature `test-support`).

use crate::{
    Chunk, ChunkHit, ChunkId, ChunkStore, ContentHash, DocumentId, IndexedChunk, PipelineVersion,
    StoreError, TenantId,
};

/// Indexed chunks of one document with the given texts; vector `i` points
/// along axis `i % dimension`, so nearest-neighbour results are predictable;
/// chunk `i` sits under the headings "Guide" › "Part i".
pub fn indexed_chunks(
    tenant: &str,
    document: &str,
    texts: &[&str],
    dimension: usize,
) -> Vec<IndexedChunk> {
    let tenant = TenantId::new(tenant).expect("test tenant ids are valid");
    let document = DocumentId::new(document).expect("test document ids are valid");
    let version = PipelineVersion::derive("test", &[]);
    texts
        .iter()
        .enumerate()
        .map(|(ordinal, text)| {
            let mut vector = vec![0.0; dimension];
            vector[ordinal % dimension] = 1.0;
            IndexedChunk {
                chunk: Chunk {
                    id: ChunkId::derive(&tenant, &document, &version, ordinal as u32, text),
                    tenant: tenant.clone(),
                    document_id: document.clone(),
                    ordinal: ordinal as u32,
                    byte_range: 0..text.len(),
                    page: Some(1),
                    heading_path: vec!["Guide".to_owned(), format!("Part {ordinal}")],
                    title: Some(format!("The {document} handbook")),
                    text: (*text).to_owned(),
                    embed_text: (*text).to_owned(),
                    // The second chunk reads as if OCR had read its page.
                    ocr_confidence: (ordinal == 1).then_some(91.5),
                },
                vector,
                pipeline_version: version.clone(),
                content_hash: ContentHash::of(text.as_bytes()),
                source: format!("file:///test/{document}.html"),
                document_version: 0,
                metadata: serde_json::json!({"lang": "en", "year": 2024})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Writes through `store`, for each of `tenants`, a document
/// `guide-{tenant}` with `texts` as its chunks (see [`indexed_chunks`]):
/// the same texts and vectors under each tenant, so that only the scope
/// tells their hits apart.
pub async fn write_guides(
    store: &dyn ChunkStore,
    tenants: &[&str],
    texts: &[&str],
    dimension: usize,
) -> Result<(), StoreError> {
    for tenant in tenants {
        let document = format!("guide-{tenant}");
        let chunks = indexed_chunks(tenant, &document, texts, dimension);
        let tenant = TenantId::new(*tenant).expect("test tenant ids are valid");
        let document = DocumentId::new(document).expect("test document ids are valid");
        store
            .write_document(&tenant, &document, &chunks, &[])
            .await?;
    }
    Ok(())
}

/// The sorted ids of `chunks`.
pub fn sorted_ids(chunks: &[IndexedChunk]) -> Vec<ChunkId> {
    let mut ids: Vec<ChunkId> = chunks.iter().map(|chunk| chunk.chunk.id.clone()).collect();
    ids.sort();
    ids
}

/// Checks that a store's `document_text` returned exactly `written`'s
/// chunks in reading order: ordinals, texts, pages, heading paths, chunk
/// ids (not a store's row keys), OCR confidence, and a score of 0.
pub fn assert_document_text(text: &[ChunkHit], written: &[IndexedChunk]) {
    let mut expected: Vec<&Chunk> = written.iter().map(|chunk| &chunk.chunk).collect();
    expected.sort_by_key(|chunk| chunk.ordinal);
    assert_eq!(text.len(), expected.len(), "{text:?}");
    for (hit, chunk) in text.iter().zip(expected) {
        assert_eq!(
            (hit.ordinal, &hit.text, hit.page, &hit.heading_path),
            (chunk.ordinal, &chunk.text, chunk.page, &chunk.heading_path)
        );
        assert_eq!(hit.chunk_id, chunk.id, "the chunk id, not a row key");
        assert_eq!(hit.document_id, chunk.document_id);
        assert_eq!(hit.score, 0.0);
        assert_eq!(hit.ocr_confidence, chunk.ocr_confidence);
    }
}
