//! `docpipe worker`.

use docpipe_core::PipelineConfig;
use docpipe_pipeline::{Worker, assemble};
use std::process::ExitCode;

pub async fn run(config: &PipelineConfig) -> anyhow::Result<ExitCode> {
    let components = assemble(config).await?;
    let worker = Worker::new(components.indexer.clone(), config);
    tracing::info!(
        queue = %config.queue.ingest_queue,
        collection = %config.milvus.collection,
        index = %config.bm25.index_dir.display(),
        pipeline_version = %components.indexer.version(),
        isa = docpipe_embed::cpu_isa(),
        "worker ready"
    );
    let summary = worker.run(shutdown_signal()).await;
    // Flush policy: seal Milvus segments on the way out (acknowledged
    // writes are already durable in Milvus' log; this only speeds recovery).
    if let Err(error) = components.milvus.flush().await {
        tracing::warn!(%error, "cannot flush Milvus on shutdown");
    }
    tracing::info!(
        indexed = summary.indexed,
        unchanged = summary.unchanged,
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
