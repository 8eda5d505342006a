//! The worker: consume → index → ack; or retry later, or dead-letter.
//!
//! Every delivery is settled exactly one way: acknowledged after its
//! document is durably indexed (or found unchanged); acknowledged after a
//! copy is safely in a delay queue (transient failure) or in the
//! dead-letter queue (permanent failure, or too many attempts); or, if even
//! that publish fails, returned to the queue. A crash at any point leaves
//! the delivery unacknowledged, and the broker redelivers it.

use crate::Components;
use crate::generations::Generations;
use crate::in_flight::{InFlight, publish_statuses};
use crate::indexer::{IndexError, Indexed};
use backon::{BackoffBuilder, ExponentialBuilder};
use docpipe_core::config::{PipelineConfig, QueueConfig, RetryConfig, WorkerConfig};
use docpipe_core::event::now_unix_ms;
use docpipe_core::message::{IngestRequest, ReindexRequest, RemoveRequest, Request};
use docpipe_core::{
    Classify, DocumentEvent, DocumentId, ErrorClass, PipelineVersion, StoredDocument, TenantId,
};
use docpipe_queue::{Broker, DeadLetter, IngestDelivery, Publisher, QueueError};
use docpipe_telemetry::http::Readiness;
use docpipe_telemetry::metrics::{QueueLabels, metrics};
use docpipe_telemetry::propagation;
use futures::FutureExt as _;
use futures::future::FusedFuture as _;
use futures::future::Shared;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::field::Empty;
use tracing::{Instrument as _, Span, info_span};

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Indexed and acknowledged.
    Indexed,
    /// Already indexed with the same content; acknowledged without work.
    Unchanged,
    /// A newer version was already indexed; acknowledged without work.
    Superseded,
    /// Removed from the index and acknowledged.
    Removed,
    /// Failed transiently; parked in a delay queue for another attempt.
    Retried,
    /// Published to the dead-letter queue and acknowledged.
    DeadLettered,
    /// Returned to the queue because it could not be settled otherwise.
    Requeued,
}

/// Deliveries handled by a worker, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Documents indexed.
    pub indexed: u64,
    /// Documents found unchanged.
    pub unchanged: u64,
    /// Requests for a version older than the one indexed.
    pub superseded: u64,
    /// Documents removed.
    pub removed: u64,
    /// Deliveries sent to a delay queue after a transient failure.
    pub retried: u64,
    /// Messages dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries returned to the queue.
    pub requeued: u64,
    /// Times the worker reconnected to the broker.
    pub reconnections: u64,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Indexed => "indexed",
            Self::Unchanged => "unchanged",
            Self::Superseded => "superseded",
            Self::Removed => "removed",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Requeued => "requeued",
        }
    }
}

impl WorkerSummary {
    fn record(&mut self, outcome: Outcome) {
        metrics().outcome(outcome.as_str());
        match outcome {
            Outcome::Indexed => self.indexed += 1,
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Superseded => self.superseded += 1,
            Outcome::Removed => self.removed += 1,
            Outcome::Retried => self.retried += 1,
            Outcome::DeadLettered => self.dead_lettered += 1,
            Outcome::Requeued => self.requeued += 1,
        }
    }
}

type Shutdown = Shared<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Consumes ingest requests and indexes them, reconnecting to the broker
/// whenever it goes away.
pub struct Worker {
    generations: Arc<Generations>,
    readiness: Arc<Readiness>,
    queue: QueueConfig,
    retry: RetryConfig,
    settings: WorkerConfig,
}

impl Worker {
    /// A worker for the pipeline `config`, writing every generation
    /// `generations` says to write.
    pub fn new(generations: Arc<Generations>, config: &PipelineConfig) -> Self {
        Self {
            generations,
            readiness: Arc::default(),
            queue: config.queue.clone(),
            retry: config.retry.clone(),
            settings: config.worker.clone(),
        }
    }

    /// What `/readyz` reports of this worker: the broker flag is up while it
    /// consumes (whoever probes Milvus sets the other).
    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    /// Consumes until `shutdown` completes. If the broker goes away, the
    /// worker lets in-flight documents finish, then reconnects with
    /// exponential backoff and resumes consuming; unacknowledged deliveries
    /// of the lost connection are redelivered by the broker. On shutdown it
    /// stops consuming and lets in-flight documents finish (for at most
    /// `worker.shutdown_timeout_secs`).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send + 'static) -> WorkerSummary {
        let shutdown: Shutdown =
            (Box::pin(shutdown) as Pin<Box<dyn Future<Output = ()> + Send>>).shared();
        let mut summary = WorkerSummary::default();
        let mut delays = self.reconnect_delays();
        loop {
            let connecting = async {
                let broker = Broker::connect(&self.queue, &self.retry).await?;
                let publisher = Arc::new(broker.publisher().await?);
                Ok::<_, QueueError>((broker, publisher))
            };
            // Shutdown interrupts connecting, but not consuming: `consume`
            // watches it itself and lets in-flight documents finish.
            let connected = tokio::select! {
                biased;
                () = shutdown.clone() => break,
                connected = connecting => connected,
            };
            let error = match connected {
                Ok((broker, publisher)) => {
                    delays = self.reconnect_delays();
                    let result = self
                        .consume(&broker, publisher.clone(), shutdown.clone(), &mut summary)
                        .await;
                    publisher.close().await;
                    broker.close().await;
                    match result {
                        Ok(()) => break,
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            let delay = delays
                .next()
                .unwrap_or(Duration::from_secs(self.settings.reconnect_max_delay_secs));
            tracing::warn!(%error, ?delay, "lost the broker; reconnecting");
            summary.reconnections += 1;
            tokio::select! {
                biased;
                () = shutdown.clone() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!(?summary, "worker stopped");
        summary
    }

    fn reconnect_delays(&self) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(
                self.settings.reconnect_max_delay_secs.max(1),
            ))
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// One broker session: `Ok` when shutdown ends it, `Err` when the
    /// broker does.
    async fn consume(
        &self,
        broker: &Broker,
        publisher: Arc<Publisher>,
        shutdown: Shutdown,
        summary: &mut WorkerSummary,
    ) -> Result<(), QueueError> {
        let tag = format!("docpipe-worker-{}", uuid::Uuid::new_v4());
        let mut consumer = broker.consume_ingest(&tag).await?;
        tracing::info!(queue = %self.queue.ingest_queue, "consuming");
        self.readiness.set_broker(true);
        let mut depth_samples = tokio::time::interval(QUEUE_DEPTH_INTERVAL);
        // Sampling is a broker round trip: it runs beside the loop, never
        // in it, so a slow broker cannot hold up deliveries and completions.
        let sampling = sample_queue_depths(broker).fuse();
        tokio::pin!(sampling);
        let mut in_flight = JoinSet::new();
        let documents = Arc::new(InFlight::default());
        let statuses = tokio::spawn(publish_statuses(documents.clone(), publisher.clone()));
        let mut broker_error = None;
        loop {
            tokio::select! {
                biased;
                () = shutdown.clone() => {
                    tracing::info!(in_flight = in_flight.len(), "shutting down: no new deliveries");
                    break;
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    summary.record(done.unwrap_or(Outcome::Requeued));
                }
                _ = depth_samples.tick(), if sampling.is_terminated() => {
                    sampling.set(sample_queue_depths(broker).fuse());
                }
                () = &mut sampling, if !sampling.is_terminated() => {}
                // A free slot goes to an upload if one waits (see
                // `IngestConsumer::next`); the limit keeps bulk deliveries
                // buffered rather than started while uploads may arrive.
                delivery = consumer.next(), if in_flight.len() < usize::from(self.queue.prefetch) => match delivery {
                    Some(Ok(delivery)) => {
                        let (generations, publisher) = (self.generations.clone(), publisher.clone());
                        let max_attempts = self.retry.max_attempts;
                        let span = consume_span(&delivery);
                        let (documents, key) = (documents.clone(), documents.start(delivery.body()));
                        in_flight.spawn(async move {
                            metrics().in_flight.inc();
                            let outcome = handle(&generations, &publisher, delivery, max_attempts)
                                .instrument(span)
                                .await;
                            metrics().in_flight.dec();
                            documents.finish(key);
                            outcome
                        });
                    }
                    Some(Err(error)) => {
                        broker_error = Some(error);
                        break;
                    }
                    None => {
                        broker_error = Some(QueueError::Operation {
                            operation: "basic.consume",
                            message: "the broker cancelled the consumer or closed the connection".into(),
                        });
                        break;
                    }
                },
            }
        }
        self.readiness.set_broker(false);
        if broker_error.is_none() {
            let _ = consumer.cancel().await;
        }
        let limit = Duration::from_secs(self.settings.shutdown_timeout_secs);
        let drained = tokio::time::timeout(limit, async {
            while let Some(done) = in_flight.join_next().await {
                summary.record(done.unwrap_or(Outcome::Requeued));
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = in_flight.len(),
                ?limit,
                "in-flight documents did not finish in time; the broker redelivers them"
            );
            in_flight.abort_all();
        }
        statuses.abort();
        consumer.close().await;
        match broker_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Handles one delivery to completion; see the module documentation for
/// how every delivery is settled.
/// How often the worker samples queue depths for `docpipe_queue_depth`.
const QUEUE_DEPTH_INTERVAL: Duration = Duration::from_secs(10);

async fn sample_queue_depths(broker: &Broker) {
    match broker.queue_depths().await {
        Ok(depths) => {
            for (queue, depth) in [
                ("uploads", depths.ingest),
                ("bulk", depths.bulk),
                ("dead", depths.dead),
            ] {
                metrics()
                    .queue_depth
                    .get_or_create(&QueueLabels {
                        queue: queue.to_owned(),
                    })
                    .set(i64::from(depth));
            }
        }
        Err(error) => tracing::debug!(%error, "cannot sample queue depths"),
    }
}

/// The root span of a delivery's work: a child of the publisher's span
/// (`traceparent`), linked to the previous attempt's span for a retry.
fn consume_span(delivery: &IngestDelivery) -> Span {
    let span = info_span!(
        "docpipe.consume",
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        action = Empty,
        document.id = Empty,
        tenant = Empty,
        attempt = delivery.history().attempts + 1,
        queue.wait_ms = Empty,
        outcome = Empty,
        error.class = Empty,
        error.code = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
    );
    propagation::set_remote_parent(&span, delivery.traceparent().as_deref());
    if let Some(previous) = delivery.previous_attempt() {
        propagation::link_to(&span, &previous);
    }
    // Time spent in the queue (or in a delay queue, for a retry), apart
    // from the time spent working on the document.
    if let Some(published) = delivery.published_at_unix_ms() {
        let waited = now_unix_ms().saturating_sub(published);
        span.record("queue.wait_ms", waited);
        metrics().queue_wait_seconds.observe(waited as f64 / 1000.0);
    }
    span
}

/// Marks the current (consume) span as failed with `error`'s class and code.
fn record_failure(error: &(impl Classify + std::fmt::Display)) {
    let span = Span::current();
    span.record("error.class", error.class().as_str());
    span.record("error.code", error.code());
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", error.to_string());
}

async fn handle(
    generations: &Generations,
    publisher: &Publisher,
    delivery: IngestDelivery,
    max_attempts: u32,
) -> Outcome {
    let outcome = settle_delivery(generations, publisher, delivery, max_attempts).await;
    Span::current().record("outcome", outcome.as_str());
    outcome
}

async fn settle_delivery(
    generations: &Generations,
    publisher: &Publisher,
    delivery: IngestDelivery,
    max_attempts: u32,
) -> Outcome {
    let traceparent = delivery.traceparent();
    let request = match Request::decode(delivery.body()) {
        Ok(request) => request,
        Err(error) => {
            let (document_id, tenant) = identify(delivery.body());
            let failure = Failure {
                document_id,
                tenant,
                traceparent,
            };
            return failure.dead_letter(publisher, &delivery, &error).await;
        }
    };
    let failure = Failure {
        document_id: Some(request.document_id().clone()),
        tenant: Some(request.tenant().clone()),
        traceparent: traceparent.clone(),
    };
    let span = Span::current();
    span.record("document.id", request.document_id().as_str());
    span.record("tenant", request.tenant().as_str());
    span.record(
        "action",
        match &request {
            Request::Index(_) => "index",
            Request::Remove(_) => "remove",
            Request::Reindex(_) => "reindex",
        },
    );
    let done = match &request {
        Request::Index(request) => index(generations, request).await,
        Request::Remove(request) => remove(generations, request).await,
        Request::Reindex(request) => reindex(generations, request).await,
    };
    match done {
        Ok(event) => {
            let outcome = match event {
                DocumentEvent::Indexed { .. } => Outcome::Indexed,
                DocumentEvent::Unchanged { .. } => Outcome::Unchanged,
                DocumentEvent::Superseded { .. } => Outcome::Superseded,
                _ => Outcome::Removed,
            };
            // Event consumers continue the trace from the worker's span.
            let context = propagation::traceparent_of(&span).or(traceparent);
            if let Err(error) = publisher.publish_event(&event, context.as_deref()).await {
                tracing::warn!(%error, document_id = %request.document_id(), "cannot publish event; requeueing");
                return requeue(&delivery).await;
            }
            ack(&delivery, outcome).await
        }
        Err(error) if error.class() == ErrorClass::Permanent => {
            failure.dead_letter(publisher, &delivery, &error).await
        }
        Err(error) => {
            failure
                .retry_later(publisher, &delivery, &error, max_attempts)
                .await
        }
    }
}

/// Indexes an upload into every written generation, live first (so a bad
/// document fails before any other generation spends work on it). The event
/// reports the live generation.
async fn index(
    generations: &Generations,
    request: &IngestRequest,
) -> Result<DocumentEvent, IndexError> {
    let (mut reported, mut done) = (None, Vec::new());
    loop {
        let targets = still_to_write(generations, &done).await?;
        if targets.is_empty() {
            break;
        }
        for target in targets {
            let indexed = target.indexer.index(request).await?;
            reported.get_or_insert((indexed, target.indexer.version().to_string()));
            done.push(target.generation.version.clone());
        }
    }
    let (indexed, version) = reported.expect("a live generation is always written");
    if let Some(newer_version) = indexed.superseded_by {
        return Ok(DocumentEvent::Superseded {
            document_id: request.document_id.clone(),
            tenant: request.tenant.clone(),
            document_version: request.document_version,
            newer_version,
            at_unix_ms: now_unix_ms(),
        });
    }
    Ok(indexed_event(
        request.tenant.clone(),
        request.document_id.clone(),
        indexed,
        version,
    ))
}

/// Removes a document from every written generation.
async fn remove(
    generations: &Generations,
    request: &RemoveRequest,
) -> Result<DocumentEvent, IndexError> {
    let (mut chunks, mut done) = (0, Vec::new());
    loop {
        let targets = still_to_write(generations, &done).await?;
        if targets.is_empty() {
            break;
        }
        for target in targets {
            let removed = target
                .indexer
                .remove(&request.tenant, &request.document_id)
                .await?;
            chunks = chunks.max(removed);
            done.push(target.generation.version.clone());
        }
    }
    Ok(DocumentEvent::Removed {
        document_id: request.document_id.clone(),
        tenant: request.tenant.clone(),
        chunks,
        at_unix_ms: now_unix_ms(),
    })
}

/// Rebuilds a live document in the generation being built. A document no
/// longer live was removed since the re-index listed it: it is removed from
/// the new generation too.
async fn reindex(
    generations: &Generations,
    request: &ReindexRequest,
) -> Result<DocumentEvent, IndexError> {
    let target = generations
        .get(&request.generation)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| IndexError::UnknownGeneration(request.generation.to_string()))?;
    let live = generations.live().await.map_err(unavailable)?;
    let (tenant, document_id) = (&request.tenant, &request.document_id);
    let live_chunks = live.index.document_chunks(tenant, document_id).await?;
    let Some(first) = live_chunks.first() else {
        let chunks = target
            .indexer
            .remove(&request.tenant, &request.document_id)
            .await?;
        return Ok(DocumentEvent::Removed {
            document_id: request.document_id.clone(),
            tenant: request.tenant.clone(),
            chunks,
            at_unix_ms: now_unix_ms(),
        });
    };
    let stored = StoredDocument {
        tenant: tenant.clone(),
        document_id: document_id.clone(),
        content_hash: first.content_hash.clone(),
        pipeline_version: first.pipeline_version.clone(),
        source: first.source.clone(),
        document_version: first.document_version.unwrap_or(0),
        metadata: first.metadata.clone(),
    };
    let indexed = target.indexer.rebuild(&stored).await?;
    Ok(indexed_event(
        request.tenant.clone(),
        request.document_id.clone(),
        indexed,
        target.indexer.version().to_string(),
    ))
}

/// The generations still to write, live first, given those `done`. Callers
/// call it again after writing until nothing is left: a generation added
/// while a delivery is being written (a re-index starting) gets it too. So
/// every write either lands in the new generation or finished before it was
/// added, and then the re-index's listing of live documents, made after
/// adding it, sees the write.
async fn still_to_write(
    generations: &Generations,
    done: &[PipelineVersion],
) -> Result<Vec<Arc<Components>>, IndexError> {
    let written = generations.written().await.map_err(unavailable)?;
    Ok(written
        .into_iter()
        .filter(|target| !done.contains(&target.generation.version))
        .collect())
}

fn indexed_event(
    tenant: TenantId,
    document_id: DocumentId,
    indexed: Indexed,
    pipeline_version: String,
) -> DocumentEvent {
    let (chunks, at_unix_ms) = (indexed.chunks, now_unix_ms());
    if indexed.unchanged {
        DocumentEvent::Unchanged {
            document_id,
            tenant,
            chunks,
            pipeline_version,
            at_unix_ms,
        }
    } else {
        DocumentEvent::Indexed {
            document_id,
            tenant,
            chunks,
            pipeline_version,
            at_unix_ms,
        }
    }
}

/// A generation that cannot be assembled now (Milvus down, say) is a
/// transient failure of the delivery.
fn unavailable(error: crate::SetupError) -> IndexError {
    IndexError::Generation(error.to_string())
}

/// Who a failed delivery was about, for its dead letter and event.
struct Failure {
    document_id: Option<DocumentId>,
    tenant: Option<TenantId>,
    traceparent: Option<String>,
}

impl Failure {
    /// Parks a transiently failed delivery in the delay queue for its
    /// attempt, or dead-letters it once it has used `max_attempts`.
    async fn retry_later(
        self,
        publisher: &Publisher,
        delivery: &IngestDelivery,
        error: &(impl Classify + std::fmt::Display),
        max_attempts: u32,
    ) -> Outcome {
        let history = delivery.history().after(error);
        if history.attempts >= max_attempts {
            return self.dead_letter(publisher, delivery, error).await;
        }
        record_failure(error);
        metrics().failure(false, error.class().as_str(), error.code());
        let attempt_span = Span::current();
        let span = info_span!(
            "docpipe.retry",
            error.class = error.class().as_str(),
            error.code = error.code(),
            attempt = history.attempts,
        );
        tracing::warn!(
            %error,
            code = error.code(),
            attempt = history.attempts,
            document_id = ?self.document_id.as_ref().map(DocumentId::as_str),
            "transient failure; retrying later"
        );
        let parked = publisher
            .publish_retry(
                delivery.body(),
                &history,
                self.traceparent.as_deref(),
                propagation::traceparent_of(&attempt_span).as_deref(),
            )
            .instrument(span)
            .await;
        match parked {
            Ok(()) => ack(delivery, Outcome::Retried).await,
            Err(error) => {
                tracing::warn!(%error, "cannot park delivery for a retry; requeueing");
                requeue(delivery).await
            }
        }
    }

    /// Publishes the dead letter and a `document.failed` event, then acks.
    async fn dead_letter(
        self,
        publisher: &Publisher,
        delivery: &IngestDelivery,
        error: &(impl Classify + std::fmt::Display),
    ) -> Outcome {
        tracing::warn!(%error, code = error.code(), document_id = ?self.document_id.as_ref().map(DocumentId::as_str), "dead-lettering message");
        record_failure(error);
        metrics().failure(true, error.class().as_str(), error.code());
        let span = info_span!(
            "docpipe.dead_letter",
            error.class = error.class().as_str(),
            error.code = error.code(),
            reason = %error,
            otel.status_code = "ERROR",
        );
        let mut letter = DeadLetter::new(delivery.body(), error, delivery.history().after(error));
        letter.document_id = self.document_id.clone();
        letter.tenant = self.tenant.clone();
        letter.traceparent = self.traceparent.clone();
        let event = DocumentEvent::Failed {
            document_id: self.document_id,
            tenant: self.tenant,
            error_class: error.class(),
            error_code: error.code().to_owned(),
            reason: error.to_string(),
            at_unix_ms: letter.failed_at_unix_ms,
        };
        // The dead letter must be safely stored before the original is acked.
        let published = publisher
            .publish_dead_letter(&letter)
            .instrument(span)
            .await;
        let announced = match published {
            Ok(()) => {
                publisher
                    .publish_event(&event, self.traceparent.as_deref())
                    .await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = announced {
            tracing::warn!(%error, "cannot publish dead letter or event; requeueing");
            return requeue(delivery).await;
        }
        ack(delivery, Outcome::DeadLettered).await
    }
}

/// Acknowledges a delivery settled as `outcome`.
async fn ack(delivery: &IngestDelivery, outcome: Outcome) -> Outcome {
    let started = std::time::Instant::now();
    let acked = delivery
        .ack()
        .instrument(info_span!("docpipe.ack", outcome = outcome.as_str()))
        .await;
    metrics().stage("ack", started.elapsed());
    settle(acked, outcome)
}

async fn requeue(delivery: &IngestDelivery) -> Outcome {
    settle(delivery.requeue().await, Outcome::Requeued)
}

fn settle(result: Result<(), QueueError>, outcome: Outcome) -> Outcome {
    if let Err(error) = result {
        // The broker redelivers unsettled messages; writes are idempotent.
        tracing::warn!(%error, "cannot settle delivery; the broker will redeliver it");
    }
    outcome
}

/// Best effort: the document and tenant named by a message that failed to
/// decode, so its dead letter and event can still say whose it was.
fn identify(body: &[u8]) -> (Option<DocumentId>, Option<TenantId>) {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    (
        text("document_id").and_then(|id| DocumentId::new(id).ok()),
        text("tenant").and_then(|tenant| TenantId::new(tenant).ok()),
    )
}
