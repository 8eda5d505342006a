//! What a search shows: the ranked documents with their chunks' text, read
//! apart from the ranking, for the chunks shown only.

use crate::{DocumentHit, RankedDocument, SearchError};
use docpipe_core::{ChunkHit, ChunkId, ChunkText, SearchScope};
use docpipe_index::GenerationIndex;
use std::collections::HashMap;

/// The ranked documents with their chunks' text, read from the store that
/// keeps it.
pub(crate) async fn with_text(
    index: &dyn GenerationIndex,
    scope: &SearchScope,
    ranked: Vec<RankedDocument>,
) -> Result<Vec<DocumentHit>, SearchError> {
    let chunks: Vec<ChunkId> = ranked
        .iter()
        .map(|document| document.chunk.chunk_id.clone())
        .collect();
    let texts = index.chunk_texts(scope.tenant_id(), &chunks).await?;
    Ok(shown(ranked, texts))
}

/// Each ranked document with its chunk's text from `texts`. A document
/// whose chunk has none there was replaced or deleted after the search
/// ranked it (a re-ingest in between) and is left out: its text is gone,
/// and the new version is not what the search ranked.
fn shown(ranked: Vec<RankedDocument>, mut texts: HashMap<ChunkId, ChunkText>) -> Vec<DocumentHit> {
    let count = ranked.len();
    let shown: Vec<DocumentHit> = ranked
        .into_iter()
        .filter_map(|document| {
            let text = texts.remove(&document.chunk.chunk_id)?;
            Some(DocumentHit {
                document_id: document.document_id,
                score: document.score,
                chunk: ChunkHit::new(document.chunk, text),
            })
        })
        .collect();
    if shown.len() < count {
        tracing::debug!(
            ranked = count,
            shown = shown.len(),
            "documents changed between ranking and reading their text; left out"
        );
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{DocumentId, RankedChunk};

    fn ranked(document: &str, chunk: &str, score: f32) -> RankedDocument {
        let document_id = DocumentId::new(document).unwrap();
        RankedDocument {
            document_id: document_id.clone(),
            score,
            chunk: RankedChunk {
                chunk_id: ChunkId::from_stored(chunk.to_owned()),
                document_id,
                ordinal: 2,
                score: score / 2.0,
            },
        }
    }

    fn text(text: &str) -> ChunkText {
        ChunkText {
            text: text.to_owned(),
            ..ChunkText::default()
        }
    }

    #[test]
    fn results_show_each_documents_chunk_with_its_text_in_rank_order() {
        let texts = HashMap::from([
            (ChunkId::from_stored("b2".into()), text("bee")),
            (ChunkId::from_stored("a7".into()), text("ay")),
        ]);
        let documents = shown(vec![ranked("a", "a7", 0.9), ranked("b", "b2", 0.5)], texts);
        let seen: Vec<(&str, f32, &str, f32, u32)> = documents
            .iter()
            .map(|hit| {
                let chunk = &hit.chunk;
                (
                    hit.document_id.as_str(),
                    hit.score,
                    chunk.text.as_str(),
                    chunk.score,
                    chunk.ordinal,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [("a", 0.9, "ay", 0.45, 2), ("b", 0.5, "bee", 0.25, 2)]
        );
    }

    #[test]
    fn a_document_whose_chunk_vanished_after_ranking_is_left_out() {
        // "b" was re-ingested between the search and the read of the text.
        let texts = HashMap::from([(ChunkId::from_stored("a7".into()), text("ay"))]);
        let documents = shown(vec![ranked("a", "a7", 0.9), ranked("b", "b2", 0.5)], texts);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].document_id.as_str(), "a");
    }
}
