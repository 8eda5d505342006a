//! Reciprocal Rank Fusion of rankings (the `embedded` backend fuses its two
//! stores' rankings here; Milvus fuses on the server with the same k).

use docpipe_core::{ChunkHit, ChunkId};
use std::collections::HashMap;

/// The RRF constant from Cormack et al. (2009): dampens the weight of the
/// very top ranks so that agreement between rankings matters most.
pub const RRF_K: f32 = 60.0;

/// Fuses rankings: each chunk scores Σ 1 / (k + rank) over the rankings it
/// appears in (ranks from 1). Returns chunks by descending fused score;
/// ties keep first-seen order.
pub fn reciprocal_rank_fusion(rankings: &[Vec<ChunkHit>], k: f32) -> Vec<(ChunkHit, f32)> {
    let mut fused: Vec<(ChunkHit, f32)> = Vec::new();
    let mut position: HashMap<ChunkId, usize> = HashMap::new();
    for ranking in rankings {
        for (rank, hit) in ranking.iter().enumerate() {
            let contribution = 1.0 / (k + rank as f32 + 1.0);
            match position.get(&hit.chunk_id) {
                Some(&index) => fused[index].1 += contribution,
                None => {
                    position.insert(hit.chunk_id.clone(), fused.len());
                    fused.push((hit.clone(), contribution));
                }
            }
        }
    }
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::DocumentId;

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

    fn ids(fused: &[(ChunkHit, f32)]) -> Vec<&str> {
        fused.iter().map(|(hit, _)| hit.chunk_id.as_str()).collect()
    }

    #[test]
    fn agreement_between_rankings_wins() {
        let dense = vec![hit("a", "1"), hit("b", "2"), hit("c", "3")];
        let keyword = vec![hit("c", "3"), hit("b", "2"), hit("d", "4")];
        let fused = reciprocal_rank_fusion(&[dense, keyword], RRF_K);
        // c: 1/63 + 1/61 edges out b: 1/62 + 1/62; both beat a: 1/61 alone.
        assert_eq!(ids(&fused), ["c", "b", "a", "d"]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-6);
        assert!((fused[2].1 - 1.0 / 61.0).abs() < 1e-6);
    }

    #[test]
    fn a_single_ranking_keeps_its_order() {
        let fused = reciprocal_rank_fusion(&[vec![hit("x", "1"), hit("y", "2")]], RRF_K);
        assert_eq!(ids(&fused), ["x", "y"]);
    }
}
