//! Grouping ranked chunks into documents.

use crate::DocumentHit;
use docpipe_core::ChunkHit;

/// Keeps each document's best chunk, in the order of the (already sorted)
/// input.
pub fn best_chunk_per_document(chunks: Vec<(ChunkHit, f32)>) -> Vec<DocumentHit> {
    let mut seen = std::collections::HashSet::new();
    chunks
        .into_iter()
        .filter(|(hit, _)| seen.insert(hit.document_id.clone()))
        .map(|(chunk, score)| DocumentHit {
            document_id: chunk.document_id.clone(),
            score,
            chunk,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{ChunkId, DocumentId};

    fn hit(chunk: &str, document: &str) -> ChunkHit {
        ChunkHit {
            chunk_id: ChunkId::from_stored(chunk.to_owned()),
            document_id: DocumentId::new(document).unwrap(),
            ordinal: 0,
            page: None,
            text: String::new(),
            score: 0.0,
        }
    }

    #[test]
    fn documents_are_represented_by_their_best_chunk() {
        let fused = vec![
            (hit("a1", "A"), 0.9),
            (hit("b1", "B"), 0.8),
            (hit("a2", "A"), 0.7),
        ];
        let documents = best_chunk_per_document(fused);
        let shown: Vec<(&str, &str)> = documents
            .iter()
            .map(|hit| (hit.document_id.as_str(), hit.chunk.chunk_id.as_str()))
            .collect();
        assert_eq!(shown, [("A", "a1"), ("B", "b1")]);
    }
}
