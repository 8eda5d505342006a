//! The library without the queue: index the fixture corpus straight
//! through an `Indexer` into an index family of its own (a Milvus
//! collection and a tantivy directory), search it in every mode, then drop it.
//!
//! ```sh
//! scripts/milvus.sh start
//! cargo run --example index_and_search -- "which flag lists hidden dot files"
//! ```

use docpipe_core::{DocumentId, IngestRequest, PipelineConfig, TenantId};
use docpipe_index::remove_family;
use docpipe_pipeline::{Generations, no_wrapping};
use docpipe_search::{Mode, Searcher};
use std::path::Path;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let query = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "which flag lists hidden dot files".into());
    let scratch = tempfile::tempdir()?;
    let mut config = PipelineConfig::load(Path::new("pipelines/default.toml"))?;
    config.milvus.collection = format!("example_{}", std::process::id());
    config.bm25.index_dir = scratch.path().join("index");
    config.milvus.search_consistency = docpipe_core::config::ReadConsistency::Strong;

    // The first use of a family makes this pipeline its live generation.
    let generations = Generations::open(&config, no_wrapping()).await?;
    let live = generations.live().await?;
    let tenant = TenantId::new("example")?;
    let corpus = std::fs::canonicalize("fixtures/corpus")?;
    for name in [
        "man-ls.1.html",
        "beekeeping-seasons.html",
        "sourdough-bread.pdf",
    ] {
        let path = corpus.join(name);
        let id = DocumentId::new(name.rsplit_once('.').map_or(name, |(stem, _)| stem))?;
        let uri = url::Url::from_file_path(&path)
            .expect("an absolute path")
            .to_string();
        let indexed = live
            .indexer
            .index(&IngestRequest::for_file(tenant.clone(), id.clone(), uri))
            .await?;
        println!("indexed {id}: {} chunks", indexed.chunks);
    }

    let searcher = Searcher::open(&config).await?;
    for mode in Mode::ALL {
        let hits = searcher.search(&tenant, &query, mode, 3).await?;
        let found: Vec<String> = hits
            .iter()
            .map(|hit| format!("{} ({:.3})", hit.document_id, hit.score))
            .collect();
        println!("{:<6} {query:?}: {}", mode.as_str(), found.join(", "));
    }
    drop((searcher, live, generations));
    remove_family(&config).await?;
    Ok(())
}
