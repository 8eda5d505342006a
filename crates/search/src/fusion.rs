//! From ranked chunks to ranked documents: grouping one ranking, and
//! fusing the dense and BM25 rankings (by their scores, or by Reciprocal
//! Rank Fusion) as the pipeline's `[search]` section says.

use docpipe_core::{ChunkId, DocumentId, Fusion, RankedChunk, SearchConfig};
use std::collections::HashMap;

/// One document a search ranked, with the chunk that earned its place.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedDocument {
    /// The document.
    pub document_id: DocumentId,
    /// The mode's score for the document (the fused score for hybrid).
    pub score: f32,
    /// The chunk that earned the score.
    pub chunk: RankedChunk,
}

/// Keeps each document's best chunk, in the order of the (already sorted)
/// input.
pub fn best_chunk_per_document(chunks: Vec<(RankedChunk, f32)>) -> Vec<RankedDocument> {
    let mut seen = std::collections::HashSet::new();
    chunks
        .into_iter()
        .filter(|(hit, _)| seen.insert(hit.document_id.clone()))
        .map(|(chunk, score)| RankedDocument {
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
    pub dense: Vec<RankedChunk>,
    /// Chunks by BM25.
    pub keyword: Vec<RankedChunk>,
    /// Documents' first chunks by nearness (empty when
    /// `search.opening_weight` is 0).
    pub openings: Vec<RankedChunk>,
    /// How many chunks each ranking was asked for: one that holds that many
    /// was cut short, and the chunks it left out may score nearly as well
    /// as its last.
    pub limit: usize,
}

/// Fuses the rankings of a hybrid search into documents, best first, as
/// `config.fusion` says.
pub fn fuse(config: &SearchConfig, rankings: &HybridRankings) -> Vec<RankedDocument> {
    let mut documents = match config.fusion {
        Fusion::Chunk | Fusion::Document => fuse_ranks(config, rankings),
        Fusion::Score => fuse_scores(config, rankings),
    };
    // Stable: equal scores keep the order of the evidence.
    documents.sort_by(|a, b| b.score.total_cmp(&a.score));
    documents
}

/// Reciprocal Rank Fusion. Each document's evidence is its chunk with the
/// best chunk-level fused score; its score is the fused score at the
/// configured level, plus the RRF share of its rank among the openings.
fn fuse_ranks(config: &SearchConfig, rankings: &HybridRankings) -> Vec<RankedDocument> {
    let weighted = [
        (rankings.dense.as_slice(), config.dense_weight),
        (rankings.keyword.as_slice(), config.bm25_weight),
    ];
    let chunks = fuse_chunks(&weighted, config.rrf_k);
    let mut documents = best_chunk_per_document(chunks);
    if config.fusion == Fusion::Document {
        let scores = fuse_documents(&weighted, config.rrf_k);
        for document in &mut documents {
            document.score = scores[&document.document_id];
        }
    }
    if !rankings.openings.is_empty() {
        add_openings(&mut documents, &rankings.openings, config);
    }
    documents
}

/// Score fusion: each ranking gives a document its best chunk's score
/// divided by the ranking's best, times the ranking's weight; the sum is
/// the document's score. A document a ranking left out scores as the
/// ranking's last one if the ranking was cut short (it may have come
/// next), and 0 if not (it did not match at all). The evidence is the
/// chunk that earned the largest share.
fn fuse_scores(config: &SearchConfig, rankings: &HybridRankings) -> Vec<RankedDocument> {
    let weighted = [
        (rankings.dense.as_slice(), config.dense_weight),
        (rankings.keyword.as_slice(), config.bm25_weight),
        (rankings.openings.as_slice(), config.opening_weight),
    ];
    let mut documents: Vec<(RankedDocument, f32)> = Vec::new();
    let mut position: HashMap<DocumentId, usize> = HashMap::new();
    let mut floors = 0.0;
    for (ranking, weight) in weighted {
        let best = ranking.first().map_or(0.0, |hit| hit.score);
        if weight == 0.0 || best <= 0.0 {
            continue;
        }
        let floor = match ranking.last() {
            Some(last) if ranking.len() >= rankings.limit => weight * last.score.max(0.0) / best,
            _ => 0.0,
        };
        floors += floor;
        for hit in best_chunk_per_document(scored(ranking.to_vec())) {
            // Above the floor, which every document gets.
            let share = weight * hit.score / best - floor;
            match position.get(&hit.document_id) {
                Some(&index) => {
                    let (document, largest) = &mut documents[index];
                    document.score += share;
                    if share > *largest {
                        document.chunk = hit.chunk;
                        *largest = share;
                    }
                }
                None => {
                    position.insert(hit.document_id.clone(), documents.len());
                    documents.push((
                        RankedDocument {
                            score: share,
                            ..hit
                        },
                        share,
                    ));
                }
            }
        }
    }
    documents
        .into_iter()
        .map(|(document, _)| RankedDocument {
            score: document.score + floors,
            ..document
        })
        .collect()
}

/// Pairs each hit with its store score, keeping the store's order.
pub(crate) fn scored(hits: Vec<RankedChunk>) -> Vec<(RankedChunk, f32)> {
    hits.into_iter()
        .map(|hit| {
            let score = hit.score;
            (hit, score)
        })
        .collect()
}

/// Adds each document's RRF share of the openings ranking to its score; a
/// document found only by its opening joins with that chunk as evidence.
fn add_openings(
    documents: &mut Vec<RankedDocument>,
    openings: &[RankedChunk],
    config: &SearchConfig,
) {
    let position: HashMap<DocumentId, usize> = documents
        .iter()
        .enumerate()
        .map(|(index, document)| (document.document_id.clone(), index))
        .collect();
    for (rank, opening) in openings.iter().enumerate() {
        let share = contribution(config.opening_weight, config.rrf_k, rank);
        match position.get(&opening.document_id) {
            Some(&index) => documents[index].score += share,
            None => documents.push(RankedDocument {
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
fn fuse_chunks(rankings: &[(&[RankedChunk], f32)], k: f32) -> Vec<(RankedChunk, f32)> {
    let mut fused: Vec<(RankedChunk, f32)> = Vec::new();
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
fn fuse_documents(rankings: &[(&[RankedChunk], f32)], k: f32) -> HashMap<DocumentId, f32> {
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

    fn hit(chunk: &str, document: &str) -> RankedChunk {
        scoring(chunk, document, 0.0)
    }

    fn scoring(chunk: &str, document: &str, score: f32) -> RankedChunk {
        RankedChunk {
            chunk_id: ChunkId::from_stored(chunk.to_owned()),
            document_id: DocumentId::new(document).unwrap(),
            ordinal: 0,
            score,
        }
    }

    fn shown(documents: &[RankedDocument]) -> Vec<(&str, &str)> {
        documents
            .iter()
            .map(|hit| (hit.document_id.as_str(), hit.chunk.chunk_id.as_str()))
            .collect()
    }

    /// Rankings that were not cut short (each asked for ten chunks).
    fn hybrid(dense: &[RankedChunk], keyword: &[RankedChunk]) -> HybridRankings {
        HybridRankings {
            dense: dense.to_vec(),
            keyword: keyword.to_vec(),
            openings: Vec::new(),
            limit: 10,
        }
    }

    /// Reciprocal Rank Fusion of chunks with the literature's k = 60, which
    /// the expected scores below are worked out with.
    fn k60() -> SearchConfig {
        SearchConfig {
            fusion: Fusion::Chunk,
            rrf_k: 60.0,
            ..SearchConfig::default()
        }
    }

    fn config(fusion: Fusion) -> SearchConfig {
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
        let documents = fuse(&config(Fusion::Chunk), &hybrid(&dense, &keyword));
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
        let by_chunk = fuse(&config(Fusion::Chunk), &hybrid(&dense, &keyword));
        assert_eq!(by_chunk[0].document_id.as_str(), "B");
        let by_document = fuse(&config(Fusion::Document), &hybrid(&dense, &keyword));
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
        let documents = fuse(&config(Fusion::Document), &hybrid(&dense, &[]));
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

    #[test]
    fn score_fusion_counts_how_far_ahead_a_document_is_not_only_its_place() {
        // A is far ahead in the words and a close second in meaning; B leads
        // the meaning by a hair. Rank fusion ties them; scores do not.
        let dense = [scoring("b", "B", 0.62), scoring("a", "A", 0.61)];
        let keyword = [scoring("a", "A", 30.0), scoring("b", "B", 6.0)];
        let by_rank = fuse(&config(Fusion::Document), &hybrid(&dense, &keyword));
        assert_eq!(by_rank[0].score, by_rank[1].score);
        let documents = fuse(&SearchConfig::default(), &hybrid(&dense, &keyword));
        assert_eq!(shown(&documents), [("A", "a"), ("B", "b")]);
        assert!((documents[0].score - (0.61 / 0.62 + 1.0)).abs() < 1e-6);
        assert!((documents[1].score - (1.0 + 0.2)).abs() < 1e-6);
    }

    #[test]
    fn a_document_missing_from_a_complete_ranking_gets_nothing_from_it() {
        // BM25 found only A: nothing else holds the query's words.
        let dense = [scoring("b", "B", 0.60), scoring("a", "A", 0.50)];
        let keyword = [scoring("a", "A", 8.0)];
        let documents = fuse(&SearchConfig::default(), &hybrid(&dense, &keyword));
        assert_eq!(shown(&documents), [("A", "a"), ("B", "b")]);
        assert!((documents[1].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_document_missing_from_a_ranking_cut_short_scores_as_its_last() {
        // Both rankings were asked for two chunks and returned two: C, not
        // among the dense ones, may have come third, so it scores as B.
        let dense = [scoring("a", "A", 0.8), scoring("b", "B", 0.4)];
        let keyword = [scoring("c", "C", 10.0), scoring("a", "A", 5.0)];
        let rankings = HybridRankings {
            limit: 2,
            ..hybrid(&dense, &keyword)
        };
        let documents = fuse(&SearchConfig::default(), &rankings);
        let score = |id: &str| {
            documents
                .iter()
                .find(|document| document.document_id.as_str() == id)
                .unwrap()
                .score
        };
        assert!((score("A") - (1.0 + 0.5)).abs() < 1e-6);
        assert!((score("C") - (0.5 + 1.0)).abs() < 1e-6);
        assert!((score("B") - (0.5 + 0.5)).abs() < 1e-6);
    }

    #[test]
    fn score_fusion_shows_the_chunk_that_earned_the_most() {
        // A's meaning is in one chunk, its words in another, which lead.
        let dense = [scoring("b", "B", 0.6), scoring("a-meaning", "A", 0.5)];
        let keyword = [scoring("a-words", "A", 9.0)];
        let documents = fuse(&SearchConfig::default(), &hybrid(&dense, &keyword));
        assert_eq!(shown(&documents), [("A", "a-words"), ("B", "b")]);
    }
}
