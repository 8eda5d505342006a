//! Gold-set evaluation: Recall@1, Recall@k and MRR@k per mode, with latency.

use crate::{Mode, SearchError, Searcher};
use docpipe_core::TenantId;
use std::path::Path;
use std::time::Instant;

/// One line of a gold set: a query and the document that answers it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct GoldQuery {
    /// Query id.
    pub qid: String,
    /// The query text.
    pub query: String,
    /// The id of the document that answers it.
    pub doc_id: String,
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The gold-set file could not be read.
    #[error("cannot read gold set {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a gold query.
    #[error(
        "{path}:{line}: not a gold query ({message}); expected {{\"qid\": ..., \"query\": ..., \"doc_id\": ...}}"
    )]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The gold set has no queries.
    #[error("gold set {0} has no queries")]
    Empty(String),
    /// A search failed.
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// Reads a JSONL gold set; blank lines are skipped, extra fields allowed.
pub fn read_gold_set(path: &Path) -> Result<Vec<GoldQuery>, EvalError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: shown.clone(),
        source,
    })?;
    let queries = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| EvalError::Line {
                path: shown.clone(),
                line: index + 1,
                message: error.to_string(),
            })
        })
        .collect::<Result<Vec<GoldQuery>, _>>()?;
    if queries.is_empty() {
        return Err(EvalError::Empty(shown));
    }
    Ok(queries)
}

/// How one mode did on a gold set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModeReport {
    /// The mode.
    pub mode: Mode,
    /// Queries evaluated.
    pub queries: usize,
    /// The cut-off `k`.
    pub k: usize,
    /// Share of queries whose document ranked first.
    pub recall_at_1: f64,
    /// Share of queries whose document ranked in the top `k`.
    pub recall_at_k: f64,
    /// Mean reciprocal rank of the document, 0 when below `k`.
    pub mrr_at_k: f64,
    /// Median query latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 95th-percentile query latency, milliseconds.
    pub latency_p95_ms: f64,
    /// Query ids whose document was not in the top `k`.
    pub misses: Vec<String>,
    /// Where each query's document ranked, in gold-set order: what a
    /// comparison of two pipelines needs to find the queries that moved.
    pub outcomes: Vec<QueryOutcome>,
}

/// Where one query's document ranked, and what ranked first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryOutcome {
    /// The query id.
    pub qid: String,
    /// The document's rank, from 1; `None` when it was not in the top `k`.
    pub rank: Option<usize>,
    /// The document ranked first, if any (the answer itself when `rank` is 1).
    pub first: Option<String>,
}

/// Runs every query in every mode. Each query is embedded once and its
/// vector shared by the modes that need it; their latencies include the
/// embedding, as a lone search's would.
pub async fn evaluate(
    searcher: &Searcher,
    tenant: &TenantId,
    gold: &[GoldQuery],
    k: usize,
    modes: &[Mode],
) -> Result<Vec<ModeReport>, EvalError> {
    let mut outcomes = vec![Vec::with_capacity(gold.len()); modes.len()];
    let mut latencies = vec![Vec::with_capacity(gold.len()); modes.len()];
    let embeds = modes.iter().any(|&mode| mode != Mode::Bm25);
    for query in gold {
        let started = Instant::now();
        let embedded = match embeds {
            true => Some(searcher.embed_query(&query.query).await?),
            false => None,
        };
        let embedding = started.elapsed();
        for (position, &mode) in modes.iter().enumerate() {
            let started = Instant::now();
            let hits = searcher
                .search_embedded(tenant, &query.query, embedded.as_ref(), mode, k)
                .await?;
            let mut elapsed = started.elapsed();
            if mode != Mode::Bm25 {
                elapsed += embedding;
            }
            latencies[position].push(elapsed.as_secs_f64() * 1000.0);
            outcomes[position].push(QueryOutcome {
                qid: query.qid.clone(),
                rank: hits
                    .iter()
                    .position(|hit| hit.document_id.as_str() == query.doc_id)
                    .map(|index| index + 1),
                first: hits.first().map(|hit| hit.document_id.to_string()),
            });
        }
    }
    Ok(modes
        .iter()
        .zip(outcomes)
        .zip(latencies)
        .map(|((&mode, outcomes), latencies)| report(mode, k, outcomes, latencies))
        .collect())
}

/// The metrics of one mode, derived from its queries' outcomes.
fn report(
    mode: Mode,
    k: usize,
    outcomes: Vec<QueryOutcome>,
    mut latencies: Vec<f64>,
) -> ModeReport {
    let queries = outcomes.len() as f64;
    let share = |hit: fn(usize) -> bool| {
        outcomes
            .iter()
            .filter(|outcome| outcome.rank.is_some_and(hit))
            .count() as f64
            / queries
    };
    latencies.sort_by(f64::total_cmp);
    ModeReport {
        mode,
        queries: outcomes.len(),
        k,
        recall_at_1: share(|rank| rank == 1),
        recall_at_k: share(|_| true),
        mrr_at_k: outcomes
            .iter()
            .map(|outcome| outcome.rank.map_or(0.0, |rank| 1.0 / rank as f64))
            .sum::<f64>()
            / queries,
        latency_p50_ms: percentile(&latencies, 0.50),
        latency_p95_ms: percentile(&latencies, 0.95),
        misses: outcomes
            .iter()
            .filter(|outcome| outcome.rank.is_none())
            .map(|outcome| outcome.qid.clone())
            .collect(),
        outcomes,
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(qid: &str, rank: Option<usize>, first: Option<&str>) -> QueryOutcome {
        QueryOutcome {
            qid: qid.to_owned(),
            rank,
            first: first.map(str::to_owned),
        }
    }

    #[test]
    fn metrics_follow_their_definitions() {
        let outcomes = vec![
            outcome("q0", Some(1), Some("d0")),
            outcome("q1", Some(2), Some("d9")),
            outcome("q2", None, None),
            outcome("q3", Some(4), Some("d9")),
        ];
        let report = report(Mode::Bm25, 10, outcomes, vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(report.recall_at_1, 0.25);
        assert_eq!(report.recall_at_k, 0.75);
        assert!((report.mrr_at_k - (1.0 + 0.5 + 0.25) / 4.0).abs() < 1e-12);
        assert_eq!(report.misses, ["q2"]);
        let outcome = &report.outcomes[1];
        assert_eq!(
            (outcome.rank, outcome.first.as_deref()),
            (Some(2), Some("d9"))
        );
        assert_eq!(report.outcomes[2].rank, None);
        assert_eq!((report.latency_p50_ms, report.latency_p95_ms), (2.0, 4.0));
    }

    #[test]
    fn gold_lines_name_their_position_when_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gold.jsonl");
        std::fs::write(
            &path,
            "{\"qid\":\"a\",\"query\":\"x\",\"doc_id\":\"d\",\"kind\":\"k\"}\n\n{\"qid\":1}\n",
        )
        .unwrap();
        let error = read_gold_set(&path).unwrap_err().to_string();
        assert!(error.contains("gold.jsonl:3"), "{error}");
    }

    #[test]
    fn the_fixtures_gold_set_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/queries.jsonl");
        assert!(read_gold_set(&path).unwrap().len() >= 24);
    }
}
