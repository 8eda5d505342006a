//! `docpipe status`.

use super::generations::Stores;
use super::print_json;
use crate::cli::StatusArgs;
use docpipe_catalog::Catalog;
use docpipe_core::{PipelineConfig, StoreStats};
use docpipe_queue::{Broker, QueueDepths};
use std::process::ExitCode;

#[derive(serde::Serialize)]
struct Status {
    queues: QueueDepths,
    live_generation: Option<String>,
    milvus: StoreStats,
    tantivy: StoreStats,
}

pub async fn run(config: &PipelineConfig, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let queues = broker.queue_depths().await?;
    broker.close().await;
    let live = Catalog::new(&config.bm25.index_dir).read()?.live().cloned();
    let (milvus, tantivy) = match &live {
        Some(live) => Stores::open(config, live).await?.stats().await?,
        None => Default::default(),
    };
    let status = Status {
        queues,
        live_generation: live.map(|live| live.version.to_string()),
        milvus,
        tantivy,
    };
    if args.json {
        print_json(&status);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "queues   uploads {:>6} ready   bulk {:>6} ready   dead {:>6}",
        status.queues.ingest, status.queues.bulk, status.queues.dead
    );
    println!(
        "live     {}",
        status
            .live_generation
            .as_deref()
            .unwrap_or("(nothing indexed yet)")
    );
    for (name, stats) in [("milvus", status.milvus), ("tantivy", status.tantivy)] {
        println!(
            "{name:<8} {:>6} documents   {:>6} chunks",
            stats.documents, stats.chunks
        );
    }
    Ok(ExitCode::SUCCESS)
}
