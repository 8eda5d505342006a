//! `docpipe status`.

use super::generations::open_index;
use super::print_json;
use crate::cli::StatusArgs;
use docpipe_core::PipelineConfig;
use docpipe_queue::Broker;
use docpipe_serve::Status;
use std::process::ExitCode;

pub async fn run(config: &PipelineConfig, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let queues = broker.queue_depths().await?;
    broker.close().await;
    let catalog = docpipe_index::catalog(config).await?;
    let live = catalog.read().await?.live().cloned();
    let stats = match &live {
        Some(live) => open_index(config, live).await?.stats().await?,
        None => Default::default(),
    };
    let status = Status {
        queues,
        live_generation: live.map(|live| live.version.to_string()),
        backend: config.index.backend.as_str(),
        stores: stats,
    };
    if args.json {
        print_json(&status);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "queues   uploads {:>6} ready   bulk {:>6} ready   dead {:>6}   workers {}",
        status.queues.ingest, status.queues.bulk, status.queues.dead, status.queues.workers
    );
    println!(
        "live     {}",
        status
            .live_generation
            .as_deref()
            .unwrap_or("(nothing indexed yet)")
    );
    println!("backend  {}", status.backend);
    let stores = [
        ("milvus", Some(status.stores.milvus)),
        ("tantivy", status.stores.tantivy),
    ];
    for (name, stats) in stores
        .into_iter()
        .filter_map(|(name, stats)| Some((name, stats?)))
    {
        println!(
            "{name:<8} {:>6} documents   {:>6} chunks",
            stats.documents, stats.chunks
        );
    }
    Ok(ExitCode::SUCCESS)
}
