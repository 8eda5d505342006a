//! `docpipe worker`.

use anyhow::Context as _;
use docpipe_core::PipelineConfig;
use docpipe_pipeline::{Generations, Worker, no_wrapping};
use docpipe_telemetry::http::Readiness;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How often the worker checks that Milvus answers, for `/readyz`.
const MILVUS_PROBE_INTERVAL: Duration = Duration::from_secs(10);

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
    if let Some(address) = config.worker.metrics_addr {
        let readiness = worker.readiness();
        let bound = docpipe_telemetry::http::serve(address, readiness.clone())
            .await
            .with_context(|| {
                format!("cannot serve metrics on {address} (worker.metrics_addr); is another worker using it?")
            })?;
        tracing::info!(address = %bound, "serving /metrics, /healthz and /readyz");
        tokio::spawn(probe_milvus(
            generations.clone(),
            readiness,
            config.milvus.collection.clone(),
        ));
    }
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

/// Keeps `/readyz`'s Milvus flag current: Milvus is up if it can resolve
/// the live generation's alias.
async fn probe_milvus(generations: Arc<Generations>, readiness: Arc<Readiness>, alias: String) {
    let mut probes = tokio::time::interval(MILVUS_PROBE_INTERVAL);
    loop {
        probes.tick().await;
        let up = match generations.live().await {
            Ok(live) => live.milvus.aliased_collection(&alias).await.is_ok(),
            Err(_) => false,
        };
        readiness.set_milvus(up);
    }
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
