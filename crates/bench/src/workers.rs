//! `docpipe bench --workers N`: the total throughput of N worker processes
//! consuming one queue, against one worker process, on this machine. On a
//! machine with few cores the embedding of both competes for the same
//! cores, so about 1× is expected; what the comparison shows is that
//! nothing else (the catalog, the stores, the broker) serialises workers.

use crate::end_to_end::remove_rig;
use crate::process::BenchProcess;
use crate::{BenchError, corpus, document_id, failed, tenant, unique_config};
use docpipe_core::config::IndexBackend;
use docpipe_core::{DocumentEvent, IngestRequest, PipelineConfig};
use docpipe_queue::Broker;
use futures::StreamExt as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a worker process may take to load its model and connect.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// One run: some worker processes indexing the corpus.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkersRun {
    /// Worker processes.
    pub workers: usize,
    /// Seconds from the first request published to the last event.
    pub seconds: f64,
    /// Chunks indexed per second, all workers together.
    pub chunks_per_s: f64,
}

/// N worker processes against one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkersReport {
    /// Documents in the corpus.
    pub documents: usize,
    /// Chunks they produce.
    pub chunks: u64,
    /// One worker process.
    pub one: WorkersRun,
    /// N worker processes.
    pub many: WorkersRun,
    /// `many` over `one` chunks per second.
    pub ratio: f64,
}

impl WorkersReport {
    /// The report as a table for people.
    pub fn table(&self) -> String {
        let row = |run: &WorkersRun| {
            format!(
                "{} worker process(es)                                   {:>8.1} chunks/s   {:>7.1} s\n",
                run.workers, run.chunks_per_s, run.seconds
            )
        };
        format!(
            "{} documents, {} chunks\n{}{}{} workers over 1                                      {:>8.2} x\n",
            self.documents,
            self.chunks,
            row(&self.one),
            row(&self.many),
            self.many.workers,
            self.ratio
        )
    }
}

/// Indexes a generated corpus of `documents` with one worker process, then
/// with `workers`, each started as `worker_command` (the `docpipe` binary)
/// followed by `--pipeline <file> worker`. Workers share an index only in
/// the `milvus` backend, so `config` must use it.
pub async fn compare_workers(
    config: &PipelineConfig,
    workers: usize,
    documents: usize,
    worker_command: &OsString,
) -> Result<WorkersReport, BenchError> {
    if config.index.backend != IndexBackend::Milvus {
        return Err(failed("checking the pipeline")(
            "several workers share an index only with index.backend = \"milvus\" \
             (DOCPIPE_INDEX_BACKEND=milvus and a Milvus 2.5+ in DOCPIPE_MILVUS_URL)",
        ));
    }
    let scratch = tempfile::tempdir().map_err(failed("creating a scratch directory"))?;
    let root = scratch.path().join("corpus");
    let paths = corpus::write(&root, documents).map_err(failed("writing the corpus"))?;
    let (one, chunks) = run(config, 1, &paths, &root, scratch.path(), worker_command).await?;
    let (many, _) = run(
        config,
        workers,
        &paths,
        &root,
        scratch.path(),
        worker_command,
    )
    .await?;
    Ok(WorkersReport {
        documents,
        chunks,
        ratio: many.chunks_per_s / one.chunks_per_s,
        one,
        many,
    })
}

/// Indexes `paths` with `workers` worker processes on a family and queues
/// of their own; returns the run and the chunk count.
async fn run(
    base: &PipelineConfig,
    workers: usize,
    paths: &[PathBuf],
    root: &Path,
    scratch: &Path,
    worker_command: &OsString,
) -> Result<(WorkersRun, u64), BenchError> {
    let rig = scratch.join(format!("workers-{workers}"));
    std::fs::create_dir_all(&rig).map_err(failed("creating the rig directory"))?;
    let mut config = unique_config(base, &rig);
    config.sources.allowed_roots = vec![root.to_owned()];
    // Side by side on one machine, they cannot share a metrics port.
    config.worker.metrics_addr = None;
    let pipeline = rig.join("pipeline.toml");
    std::fs::write(&pipeline, config.to_toml()).map_err(failed("writing the pipeline file"))?;
    let broker = Broker::connect(&config.queue, &config.retry)
        .await
        .map_err(failed("connecting to RabbitMQ"))?;
    let events = broker
        .subscribe_events()
        .await
        .map_err(failed("subscribing to events"))?;
    let mut processes = (0..workers)
        .map(|number| {
            let mut command = Command::new(worker_command);
            command.arg("--pipeline").arg(&pipeline).arg("worker");
            BenchProcess::start(command, &rig.join(format!("worker-{number}.log")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for process in &mut processes {
        process.wait_until_logged("worker ready", READY_TIMEOUT)?;
    }
    let publisher = broker
        .publisher()
        .await
        .map_err(failed("opening a publisher"))?;
    let started = Instant::now();
    for (index, path) in paths.iter().enumerate() {
        let uri = url::Url::from_file_path(path)
            .map_err(|()| failed("publishing")("not an absolute path"))?;
        let request = IngestRequest::for_file(tenant(), document_id(index), uri.to_string());
        publisher
            .publish_ingest(&request, None)
            .await
            .map_err(failed("publishing"))?;
    }
    let mut chunks = 0;
    let mut events = std::pin::pin!(events.take(paths.len()));
    while let Some(event) = tokio::time::timeout(Duration::from_secs(3600), events.next())
        .await
        .map_err(|_| failed("ingesting with worker processes")("no event for an hour"))?
    {
        match event {
            DocumentEvent::Indexed { chunks: count, .. } => chunks += u64::from(count),
            other => {
                return Err(failed("ingesting with worker processes")(format!(
                    "expected document.indexed, got {other:?}"
                )));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    for process in &mut processes {
        process.stop();
    }
    remove_rig(&broker, &config).await?;
    let run = WorkersRun {
        workers,
        seconds,
        chunks_per_s: chunks as f64 / seconds,
    };
    Ok((run, chunks))
}
