//! How hybrid search fuses its dense and BM25 rankings: the `[search]`
//! section of a pipeline file. It acts at query time only, so changing it
//! changes no pipeline version and needs no re-index.

use serde::{Deserialize, Serialize};

/// Search settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// How the rankings are fused.
    pub fusion: Fusion,
    /// The Reciprocal Rank Fusion constant (`chunk` and `document` fusion):
    /// a ranking's item at rank r (from 1) adds weight / (rrf_k + r).
    /// Larger values flatten the top.
    pub rrf_k: f32,
    /// The weight of the dense ranking.
    pub dense_weight: f32,
    /// The weight of the BM25 ranking.
    pub bm25_weight: f32,
    /// The weight of a third ranking, of documents by their opening (each
    /// document's first chunk) nearest to the query: a document-level
    /// vector that needs no store of its own, found among the hits of a
    /// deeper dense search. Its share is added to each document's fused
    /// score. 0 leaves it out; 0.25, the default, gained 0.2 points of
    /// Recall@10 and 1 of MRR@10 on the manual-page gold set
    /// (docs/retrieval.md).
    pub opening_weight: f32,
}

/// How hybrid search fuses its rankings into one ranking of documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal Rank Fusion of chunks: chunks are fused, then each
    /// document keeps its best chunk's fused score (credit only when one
    /// chunk matches both ways).
    Chunk,
    /// Reciprocal Rank Fusion of documents: each ranking is first reduced
    /// to its documents (a document ranks where its best chunk does), then
    /// fused. A document whose one section matches the words and another
    /// the meaning gets credit for both.
    Document,
    /// The weighted sum of each ranking's document scores (its best
    /// chunk's), each divided by the ranking's best score, so that how far
    /// ahead a document is counts, not only its place. Ahead of both rank
    /// fusions on the manual-page gold set (docs/retrieval.md).
    #[default]
    Score,
}

impl Fusion {
    /// The method's name, as the pipeline file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chunk => "chunk",
            Self::Document => "document",
            Self::Score => "score",
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            fusion: Fusion::default(),
            rrf_k: 20.0,
            dense_weight: 1.0,
            bm25_weight: 1.0,
            opening_weight: 0.25,
        }
    }
}

impl SearchConfig {
    /// Why the settings cannot rank anything, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        non_negative(
            "search.rrf_k",
            self.rrf_k,
            "20 is the default, 60 the literature's",
        )?;
        for (key, weight) in [
            ("search.dense_weight", self.dense_weight),
            ("search.bm25_weight", self.bm25_weight),
            ("search.opening_weight", self.opening_weight),
        ] {
            non_negative(key, weight, "1 is the usual")?;
        }
        if self.dense_weight + self.bm25_weight == 0.0 {
            return Err(
                "search.dense_weight and search.bm25_weight are both 0; give one of them weight"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Why `value`, the pipeline file's `key`, is not a finite number from 0,
/// if it is not; `hint` says what is usual.
pub(crate) fn non_negative(key: &str, value: f32, hint: &str) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} is {value}; use a number from 0 ({hint})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_section_fuses_scores_with_equal_weights() {
        let config: SearchConfig = toml::from_str("").unwrap();
        assert_eq!(config, SearchConfig::default());
        assert_eq!(config.fusion, Fusion::Score);
        assert!(config.check().is_ok());
    }

    #[test]
    fn weights_that_rank_nothing_are_refused_by_name() {
        let config: SearchConfig = toml::from_str("dense_weight = 0\nbm25_weight = 0").unwrap();
        assert!(config.check().unwrap_err().contains("both 0"));
        let config: SearchConfig = toml::from_str("bm25_weight = -1").unwrap();
        assert!(config.check().unwrap_err().contains("search.bm25_weight"));
        let error = toml::from_str::<SearchConfig>("fusion = \"page\"").unwrap_err();
        assert!(error.to_string().contains("chunk"), "{error}");
    }
}
