//! End-to-end runs: documents published through RabbitMQ to a worker in
//! this process, timed until their events.

use crate::embed::ModelWork;
use crate::memory::{peak_rss_mib, reset_peak_rss, rss_mib};
use crate::{BenchError, document_id, failed, tenant, unique_config};
use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, PipelineConfig};
use docpipe_pipeline::{Generations, Worker, WorkerSummary, no_wrapping};
use docpipe_queue::{Broker, Publisher};
use futures::{Stream, StreamExt as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One end-to-end run.
pub(crate) struct EndToEnd {
    pub(crate) seconds: f64,
    /// Chunks per second once the pipeline is full (see [`sustained_rate`]).
    pub(crate) sustained_chunks_per_s: f64,
    pub(crate) peak_rss_mib: Option<f64>,
    /// Resident memory with the worker started, before the first document.
    pub(crate) rss_at_start_mib: Option<f64>,
    /// Share of the token positions computed that were padding.
    pub(crate) padding: f64,
}

/// Publishes `paths` (under `root`) through RabbitMQ to an in-process
/// worker whose resources are named after `rig_dir`, and times it until the
/// last document's event.
pub(crate) async fn end_to_end(
    config: &PipelineConfig,
    rig_dir: &Path,
    root: &Path,
    paths: &[PathBuf],
) -> Result<EndToEnd, BenchError> {
    reset_peak_rss();
    let mut rig = Rig::start(config, rig_dir, root).await?;
    let rss_at_start_mib = rss_mib();
    let (started, work) = (Instant::now(), ModelWork::now());
    for (index, path) in paths.iter().enumerate() {
        rig.publish(document_id(index), path).await?;
    }
    let (mut waited, mut indexed) = (Ok(()), Vec::with_capacity(paths.len()));
    for _ in paths {
        match rig.next_indexed().await {
            Ok((_, chunks, at)) => indexed.push((at, chunks)),
            Err(error) => {
                waited = Err(error);
                break;
            }
        }
    }
    let measured = EndToEnd {
        seconds: started.elapsed().as_secs_f64(),
        sustained_chunks_per_s: sustained_rate(&mut indexed),
        peak_rss_mib: peak_rss_mib(),
        rss_at_start_mib,
        padding: work.padding_since(),
    };
    rig.remove().await?;
    waited.map(|()| measured)
}

/// Chunks per second between the first and the last tenth of the
/// documents to be indexed (by event time, in ms since the epoch), leaving
/// out the pipeline filling up and draining.
pub(crate) fn sustained_rate(indexed: &mut [(u64, u32)]) -> f64 {
    indexed.sort_unstable();
    let (first, last) = (indexed.len() / 10, indexed.len() * 9 / 10);
    if last <= first + 1 {
        return f64::NAN;
    }
    let chunks: u32 = indexed[first + 1..=last]
        .iter()
        .map(|(_, chunks)| chunks)
        .sum();
    let seconds = indexed[last].0.saturating_sub(indexed[first].0) as f64 / 1000.0;
    f64::from(chunks) / seconds
}

/// A worker running in this process, fed through RabbitMQ, on queues, a
/// collection and an index of its own.
pub(crate) struct Rig {
    config: PipelineConfig,
    broker: Broker,
    publisher: Publisher,
    events: Pin<Box<dyn Stream<Item = DocumentEvent> + Send>>,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<WorkerSummary>,
}

impl Rig {
    /// Starts a worker for `base` on fresh resources named after `scratch`;
    /// documents may come from anywhere under `root`.
    pub(crate) async fn start(
        base: &PipelineConfig,
        scratch: &Path,
        root: &Path,
    ) -> Result<Self, BenchError> {
        let mut config = unique_config(base, scratch);
        config.sources.allowed_roots = vec![root.to_owned()];
        let generations = Arc::new(
            Generations::open(&config, no_wrapping())
                .await
                .map_err(failed("assembling the pipeline"))?,
        );
        let broker = Broker::connect(&config.queue, &config.retry)
            .await
            .map_err(failed("connecting to RabbitMQ"))?;
        let events = Box::pin(
            broker
                .subscribe_events()
                .await
                .map_err(failed("subscribing to events"))?,
        );
        let publisher = broker
            .publisher()
            .await
            .map_err(failed("opening a publisher"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker::new(generations, &config);
        let running = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            config,
            broker,
            publisher,
            events,
            stop,
            running,
        })
    }

    /// Publishes an ingest request for the file at `path`, as `document`.
    pub(crate) async fn publish(
        &self,
        document: DocumentId,
        path: &Path,
    ) -> Result<(), BenchError> {
        let uri = url::Url::from_file_path(path)
            .map_err(|()| failed("publishing")("not an absolute path"))?;
        let request = IngestRequest::for_file(tenant(), document, uri.to_string());
        self.publisher
            .publish_ingest(&request, None)
            .await
            .map_err(failed("publishing"))
    }

    /// The next indexed document, its chunk count and when the worker
    /// indexed it (ms since the epoch); a failed document fails the bench.
    pub(crate) async fn next_indexed(&mut self) -> Result<(DocumentId, u32, u64), BenchError> {
        let event = tokio::time::timeout(Duration::from_secs(3600), self.events.next())
            .await
            .map_err(|_| failed("ingesting end to end")("no event for an hour"))?;
        match event {
            Some(
                DocumentEvent::Indexed {
                    document_id,
                    chunks,
                    at_unix_ms,
                    ..
                }
                | DocumentEvent::Unchanged {
                    document_id,
                    chunks,
                    at_unix_ms,
                    ..
                },
            ) => Ok((document_id, chunks, at_unix_ms)),
            Some(DocumentEvent::Failed { reason, .. }) => Err(failed("ingesting")(reason)),
            Some(other) => Err(failed("ingesting")(format!("unexpected event {other:?}"))),
            None => Err(failed("ingesting")("the event stream closed")),
        }
    }

    /// Stops the worker and removes the queues, collection and index.
    pub(crate) async fn remove(self) -> Result<(), BenchError> {
        let Self {
            config,
            broker,
            publisher,
            events,
            stop,
            running,
        } = self;
        let _ = stop.send(());
        let _ = running.await;
        // Their channels close before the connection does.
        publisher.close().await;
        drop(events);
        remove_rig(&broker, &config).await
    }
}

/// Removes a rig's queues, exchanges, collections and indexes, and closes
/// its broker connection.
pub(crate) async fn remove_rig(broker: &Broker, config: &PipelineConfig) -> Result<(), BenchError> {
    broker
        .delete_topology()
        .await
        .map_err(failed("removing bench queues"))?;
    broker.close().await;
    docpipe_index::remove_family(config)
        .await
        .map_err(failed("dropping the bench collections"))
}
