//! `docpipe worker`.

use docpipe_core::PipelineConfig;
use docpipe_pipeline::{Generations, Worker, no_wrapping};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(config: &PipelineConfig) -> anyhow::Result<ExitCode> {
    let generations = Arc::new(Generations::open(config, no_wrapping()).await?);
    let live = generations.live().await?;
    tracing::info!(
        queue = %config.queue.ingest_queue,
        bulk_queue = %config.queue.bulk_queue(),
        collection = %live.milvus.collection(),
        index = %config.bm25.index_dir.display(),
        live_generation = %live.generation.version,
        isa = docpipe_embed::cpu_isa(),
        "worker ready"
    );
    let worker = Worker::new(generations.clone(), config);
    let summary = worker.run(shutdown_signal()).await;
    // Flush policy: seal Milvus segments on the way out (acknowledged
    // writes are already durable in Milvus' log; this only speeds recovery).
    for generation in generations.written().await.unwrap_or_default() {
        if let Err(error) = generation.milvus.flush().await {
            tracing::warn!(%error, "cannot flush Milvus on shutdown");
        }
    }
    tracing::info!(
        indexed = summary.indexed,
        unchanged = summary.unchanged,
        removed = summary.removed,
        retried = summary.retried,
        dead_lettered = summary.dead_lettered,
        requeued = summary.requeued,
        reconnections = summary.reconnections,
        "worker exited cleanly"
    );
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}
