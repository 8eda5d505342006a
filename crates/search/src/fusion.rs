//! From ranked chunks to ranked documents: grouping one ranking, and
//! Reciprocal Rank Fusion of the dense and BM25 rankings as the pipeline's
//! `[search]` section says.

use crate::DocumentHit;
use docpipe_core::{ChunkHit, ChunkId, DocumentId, FusionLevel, SearchConfig};
use std::collections::HashMap;

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

/// The rankings a hybrid search fuses, each best first.
#[derive(Debug, Default)]
pub struct HybridRankings {
    /// Chunks by their vectors' nearness to the query's.
    pub dense: Vec<ChunkHit>,
    /// Chunks by BM25.
    pub keyword: Vec<ChunkHit>,
    /// Documents' first chunks by nearness (empty when
    /// `search.opening_weight` is 0).
    pub openings: Vec<ChunkHit>,
}

/// Fuses the rankings of a hybrid search into documents, best first.
/// Each document's evidence is its chunk with the best chunk-level fused
/// score; its score is the fused score at the configured level, plus the
/// RRF share of its rank among the openings.
pub fn fuse(config: &SearchConfig, rankings: &HybridRankings) -> Vec<DocumentHit> {
    let weighted = [
        (rankings.dense.as_slice(), config.dense_weight),
        (rankings.keyword.as_slice(), config.bm25_weight),
    ];
    let chunks = fuse_chunks(&weighted, config.rrf_k);
    let mut documents = best_chunk_per_document(chunks);
    if config.fusion == FusionLevel::Document {
        let scores = fuse_documents(&weighted, config.rrf_k);
        for document in &mut documents {
            document.score = scores[&document.document_id];
        }
    }
    if !rankings.openings.is_empty() {
        add_openings(&mut documents, &rankings.openings, config);
    }
    // Stable: equal scores keep the chunk-level order.
    documents.sort_by(|a, b| b.score.total_cmp(&a.score));
    documents
}

/// Adds each document's RRF share of the openings ranking to its score; a
/// document found only by its opening joins with that chunk as evidence.
fn add_openings(documents: &mut Vec<DocumentHit>, openings: &[ChunkHit], config: &SearchConfig) {
    let position: HashMap<DocumentId, usize> = documents
        .iter()
        .enumerate()
        .map(|(index, document)| (document.document_id.clone(), index))
        .collect();
    for (rank, opening) in openings.iter().enumerate() {
        let share = contribution(config.opening_weight, config.rrf_k, rank);
        match position.get(&opening.document_id) {
            Some(&index) => documents[index].score += share,
            None => documents.push(DocumentHit {
                document_id: opening.document_id.clone(),
                score: share,
                chunk: opening.clone(),
            }),
        }
    }
}

/// The weighted RRF contribution of rank `rank` (from 0).
fn contribution(weight: f32, k: f32, rank: usize) -> f32 {
    weight / (k + rank as f32 + 1.0)
}

/// Weighted RRF of chunks, best first; ties keep first-seen order.
fn fuse_chunks(rankings: &[(&[ChunkHit], f32)], k: f32) -> Vec<(ChunkHit, f32)> {
    let mut fused: Vec<(ChunkHit, f32)> = Vec::new();
    let mut position: HashMap<&ChunkId, usize> = HashMap::new();
    for &(ranking, weight) in rankings {
        for (rank, hit) in ranking.iter().enumerate() {
            let score = contribution(weight, k, rank);
            match position.get(&hit.chunk_id) {
                Some(&index) => fused[index].1 += score,
                None => {
                    position.insert(&hit.chunk_id, fused.len());
                    fused.push((hit.clone(), score));
                }
            }
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
}

/// Weighted RRF of documents: in each ranking a document ranks where its
/// first (best) chunk does among the distinct documents.
fn fuse_documents(rankings: &[(&[ChunkHit], f32)], k: f32) -> HashMap<DocumentId, f32> {
    let mut scores: HashMap<DocumentId, f32> = HashMap::new();
    for &(ranking, weight) in rankings {
        let mut seen = std::collections::HashSet::new();
        let distinct = ranking.iter().filter(|hit| seen.insert(&hit.document_id));
        for (rank, hit) in distinct.enumerate() {
            *scores.entry(hit.document_id.clone()).or_default() += contribution(weight, k, rank);
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(chunk: &str, document: &str) -> ChunkHit {
        ChunkHit {
            chunk_id: ChunkId::from_stored(chunk.to_owned()),
            document_id: DocumentId::new(document).unwrap(),
            ordinal: 0,
            page: None,
            heading_path: Vec::new(),
            ocr_confidence: None,
            text: String::new(),
            score: 0.0,
        }
    }

    fn shown(documents: &[DocumentHit]) -> Vec<(&str, &str)> {
        documents
            .iter()
            .map(|hit| (hit.document_id.as_str(), hit.chunk.chunk_id.as_str()))
            .collect()
    }

    fn hybrid(dense: &[ChunkHit], keyword: &[ChunkHit]) -> HybridRankings {
        HybridRankings {
            dense: dense.to_vec(),
            keyword: keyword.to_vec(),
            openings: Vec::new(),
        }
    }

    /// The defaults with the literature's k = 60, which the expected
    /// scores below are worked out with.
    fn k60() -> SearchConfig {
        SearchConfig {
            rrf_k: 60.0,
            ..SearchConfig::default()
        }
    }

    fn config(fusion: FusionLevel) -> SearchConfig {
        SearchConfig { fusion, ..k60() }
    }

    #[test]
    fn documents_are_represented_by_their_best_chunk() {
        let ranked = vec![
            (hit("a1", "A"), 0.9),
            (hit("b1", "B"), 0.8),
            (hit("a2", "A"), 0.7),
        ];
        let documents = best_chunk_per_document(ranked);
        assert_eq!(shown(&documents), [("A", "a1"), ("B", "b1")]);
    }

    #[test]
    fn chunk_fusion_rewards_one_chunk_found_both_ways() {
        let dense = [hit("a", "1"), hit("b", "2"), hit("c", "3")];
        let keyword = [hit("c", "3"), hit("b", "2"), hit("d", "4")];
        let documents = fuse(&config(FusionLevel::Chunk), &hybrid(&dense, &keyword));
        // c: 1/63 + 1/61 edges out b: 1/62 + 1/62; both beat a: 1/61 alone.
        assert_eq!(
            shown(&documents),
            [("3", "c"), ("2", "b"), ("1", "a"), ("4", "d")]
        );
        assert!((documents[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-6);
    }

    #[test]
    fn document_fusion_rewards_a_document_found_both_ways_by_different_chunks() {
        // Document A leads both rankings, through different chunks; B's one
        // chunk is second in both.
        let dense = [hit("a-meaning", "A"), hit("b", "B"), hit("c", "C")];
        let keyword = [hit("a-words", "A"), hit("b", "B"), hit("d", "D")];
        let by_chunk = fuse(&config(FusionLevel::Chunk), &hybrid(&dense, &keyword));
        assert_eq!(by_chunk[0].document_id.as_str(), "B");
        let by_document = fuse(&config(FusionLevel::Document), &hybrid(&dense, &keyword));
        assert_eq!(
            shown(&by_document),
            [("A", "a-meaning"), ("B", "b"), ("C", "c"), ("D", "d")]
        );
        assert!((by_document[0].score - 2.0 / 61.0).abs() < 1e-6);
    }

    #[test]
    fn a_document_ranks_among_documents_not_among_chunks() {
        // Three chunks of A before B: B is still the second document.
        let dense = [
            hit("a1", "A"),
            hit("a2", "A"),
            hit("a3", "A"),
            hit("b", "B"),
        ];
        let documents = fuse(&config(FusionLevel::Document), &hybrid(&dense, &[]));
        assert!((documents[1].score - 1.0 / 62.0).abs() < 1e-6);
    }

    #[test]
    fn weights_scale_each_ranking() {
        let dense = [hit("a", "A"), hit("b", "B")];
        let keyword = [hit("b", "B"), hit("a", "A")];
        let favour_words = SearchConfig {
            bm25_weight: 2.0,
            ..k60()
        };
        let documents = fuse(&favour_words, &hybrid(&dense, &keyword));
        assert_eq!(documents[0].document_id.as_str(), "B");
        let words_only = SearchConfig {
            dense_weight: 0.0,
            ..k60()
        };
        let documents = fuse(&words_only, &hybrid(&dense, &keyword));
        assert_eq!(shown(&documents), [("B", "b"), ("A", "a")]);
    }

    #[test]
    fn an_opening_near_the_query_lifts_its_document() {
        // B's opening is nearest the query; A leads the chunk rankings.
        let rankings = HybridRankings {
            openings: vec![hit("b0", "B"), hit("a0", "A")],
            ..hybrid(
                &[hit("a3", "A"), hit("b2", "B")],
                &[hit("a3", "A"), hit("b2", "B")],
            )
        };
        let chunks_only = fuse(&k60(), &rankings);
        assert_eq!(
            shown(&chunks_only),
            [("A", "a3"), ("B", "b2")],
            "weight 0: ignored"
        );
        let with_openings = SearchConfig {
            opening_weight: 3.0,
            ..k60()
        };
        let documents = fuse(&with_openings, &rankings);
        assert_eq!(shown(&documents), [("B", "b2"), ("A", "a3")]);
        assert!((documents[0].score - (2.0 / 62.0 + 3.0 / 61.0)).abs() < 1e-6);
    }

    #[test]
    fn a_document_found_only_by_its_opening_joins_with_it_as_evidence() {
        let rankings = HybridRankings {
            openings: vec![hit("c0", "C")],
            ..hybrid(&[hit("a1", "A")], &[])
        };
        let config = SearchConfig {
            opening_weight: 1.0,
            ..k60()
        };
        assert_eq!(shown(&fuse(&config, &rankings)), [("A", "a1"), ("C", "c0")]);
    }
}
