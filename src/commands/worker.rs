//! `docpipe worker`.

use anyhow::Context as _;
use docpipe_core::PipelineConfig;
use docpipe_pipeline::{Generations, Worker, no_wrapping};
use docpipe_telemetry::http::Readiness;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the worker checks that Milvus answers, for `/readyz`.
const MILVUS_PROBE_INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(config: &PipelineConfig) -> anyhow::Result<ExitCode> {
    let Some(generations) = open_generations(config).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let generations = Arc::new(generations);
    let live = generations.live().await?;
    tracing::info!(
        queue = %config.queue.ingest_queue,
        bulk_queue = %config.queue.bulk_queue(),
        collection = %config.milvus.collection,
        backend = config.index.backend.as_str(),
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
        if let Err(error) = generation.index.flush().await {
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

/// Opens the generations the worker writes, waiting (with growing delays)
/// while a store is unavailable, for at most `worker.startup_timeout_secs`:
/// a worker often starts beside Milvus, or while it restarts. `None` if a
/// signal asked the worker to stop meanwhile.
async fn open_generations(config: &PipelineConfig) -> anyhow::Result<Option<Generations>> {
    let deadline = Instant::now() + Duration::from_secs(config.worker.startup_timeout_secs);
    let mut delay = Duration::from_millis(500);
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        match Generations::open(config, no_wrapping()).await {
            Ok(generations) => return Ok(Some(generations)),
            Err(error) if error.is_transient() && Instant::now() + delay < deadline => {
                tracing::warn!(%error, ?delay, "a store is unavailable; waiting for it before consuming");
            }
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            () = &mut stop => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Keeps `/readyz`'s Milvus flag current: Milvus is up if it can resolve
/// the live generation's alias.
async fn probe_milvus(generations: Arc<Generations>, readiness: Arc<Readiness>, alias: String) {
    let mut probes = tokio::time::interval(MILVUS_PROBE_INTERVAL);
    loop {
        probes.tick().await;
        let up = match generations.live().await {
            Ok(live) => live.index.aliased_collection(&alias).await.is_ok(),
            Err(_) => false,
        };
        readiness.set_milvus(up);
    }
}

/// Completes on SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}
