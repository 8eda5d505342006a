//! `docpipe status`.

use super::print_json;
use crate::cli::StatusArgs;
use docpipe_bm25::Bm25Store;
use docpipe_core::{ChunkStore, PipelineConfig, StoreStats};
use docpipe_embed::ModelDir;
use docpipe_milvus::MilvusStore;
use docpipe_queue::{Broker, QueueDepths};
use std::process::ExitCode;

#[derive(serde::Serialize)]
struct Status {
    queues: QueueDepths,
    milvus: StoreStats,
    tantivy: StoreStats,
}

pub async fn run(config: &PipelineConfig, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let queues = broker.queue_depths().await?;
    broker.close().await;
    // Only the manifest's dimension is needed: no model is loaded to count.
    let dimension = ModelDir::open(&config.model.dir)?.manifest().dimension;
    let milvus =
        MilvusStore::connect(&config.milvus.url, &config.milvus.collection, dimension).await?;
    let status = Status {
        queues,
        milvus: milvus.stats().await?,
        tantivy: Bm25Store::open(&config.bm25.index_dir)?.stats().await?,
    };
    if args.json {
        print_json(&status);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "queues   ingest {:>6} ready   dead {:>6}",
        status.queues.ingest, status.queues.dead
    );
    for (name, stats) in [("milvus", status.milvus), ("tantivy", status.tantivy)] {
        println!(
            "{name:<8} {:>6} documents   {:>6} chunks",
            stats.documents, stats.chunks
        );
    }
    Ok(ExitCode::SUCCESS)
}
