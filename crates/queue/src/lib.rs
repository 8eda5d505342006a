//! RabbitMQ for docpipe: the topology, a publisher with confirms, the ingest
//! consumer, dead letters and document events.
//!
//! Topology (names from the pipeline file's `[queue]` table):
//! - `ingest_exchange` (direct, durable) → `ingest_queue` (durable), routing
//!   key [`INGEST_ROUTING_KEY`], for uploads; and → `<ingest_queue>.bulk`,
//!   routing key [`BULK_ROUTING_KEY`], for backfills and re-indexes. A worker
//!   takes uploads first: bulk work never delays an upload by more than the
//!   documents already in flight. Messages are persistent.
//! - `dead_letter_exchange` (fanout, durable) → `dead_letter_queue`. The
//!   worker publishes dead letters there itself, with the reason in headers;
//!   the ingest queue also names it as its broker-level dead-letter exchange,
//!   so a message rejected without requeue is never dropped.
//! - `events_exchange` (topic, durable): `document.indexed`,
//!   `document.unchanged` and `document.failed` events, for anyone who binds
//!   a queue.
//! - `<ingest_exchange>.retry` (direct, durable) → `<ingest_queue>.retry.N`
//!   for each attempt N before the last: durable classic queues whose
//!   message TTL is the delay before attempt N + 1 and whose dead-letter
//!   exchange is the ingest exchange, so an expired message goes back to work.
//!
//! The ingest and dead-letter queues are quorum queues by default (replicated
//! and durable, RabbitMQ 3.8+; `queue_type = "classic"` for older brokers).
//! Retry queues stay classic: they only hold copies for a few seconds, and
//! classic queues dead-letter expired messages on every broker version.

#![warn(missing_docs)]

mod headers;

use docpipe_core::config::{QueueConfig, RetryConfig};
use docpipe_core::message::Request;
use docpipe_core::{Classify, DocumentEvent, ErrorClass, IngestRequest, WorkerStatus};
use futures::{Stream, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

pub use headers::{DeadLetter, FailureHistory, TRACEPARENT};

/// The routing key uploads are published with.
pub const INGEST_ROUTING_KEY: &str = "ingest";
/// The routing key bulk work (backfills, re-indexes) is published with.
pub const BULK_ROUTING_KEY: &str = "bulk";
/// Header: when a message was published, in ms since the Unix epoch.
const PUBLISHED_AT: &str = "x-docpipe-published-at-ms";
/// Header: the `traceparent` of a retried delivery's previous attempt.
const PREVIOUS_ATTEMPT: &str = "x-docpipe-previous-attempt";
/// AMQP delivery mode for messages that survive a broker restart.
const PERSISTENT: u8 = 2;

/// A broker operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker is unreachable or the connection or channel broke.
    #[error("RabbitMQ is unavailable at {url}: {message}")]
    Unavailable {
        /// The AMQP URL (without credentials).
        url: String,
        /// What happened.
        message: String,
    },
    /// An AMQP operation failed.
    #[error("RabbitMQ {operation} failed: {message}")]
    Operation {
        /// What was attempted.
        operation: &'static str,
        /// The broker's or client's message.
        message: String,
    },
    /// The broker refused to take responsibility for a published message.
    #[error("RabbitMQ did not confirm the message published to {exchange:?} ({reason})")]
    NotConfirmed {
        /// The exchange published to.
        exchange: String,
        /// Nacked or returned as unroutable.
        reason: &'static str,
    },
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }

    fn code(&self) -> &'static str {
        "broker_unavailable"
    }
}

/// Declaring fails when the name exists with other settings (e.g. a classic
/// queue where a quorum queue is configured); say how to resolve it.
fn declare_error(kind: &'static str, name: &str) -> impl Fn(lapin::Error) -> QueueError {
    move |error| {
        let mut message = error.to_string();
        if message.contains("PRECONDITION_FAILED") || message.contains("inequivalent") {
            message.push_str(&format!(
                "; the {kind} {name:?} exists with other settings: delete it (e.g. `rabbitmqctl delete_queue {name}`) \
                 or use other names in the pipeline's [queue] table"
            ));
        }
        QueueError::Operation {
            operation: "declare",
            message,
        }
    }
}

fn operation(operation: &'static str) -> impl Fn(lapin::Error) -> QueueError {
    move |error| QueueError::Operation {
        operation,
        message: error.to_string(),
    }
}

/// A connection to RabbitMQ with docpipe's names.
pub struct Broker {
    connection: Connection,
    config: QueueConfig,
    retry: RetryConfig,
}

impl Broker {
    /// Connects (over TLS for `amqps://`, trusting `queue.ca_file` besides
    /// the system's CAs) and declares the topology (idempotent).
    pub async fn connect(config: &QueueConfig, retry: &RetryConfig) -> Result<Self, QueueError> {
        let unavailable = |message: String| QueueError::Unavailable {
            url: redacted(&config.url),
            message,
        };
        let tls = lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: config
                .ca_file
                .as_deref()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|error| {
                        unavailable(format!(
                            "cannot read queue.ca_file {}: {error}",
                            path.display()
                        ))
                    })
                })
                .transpose()?,
        };
        let runtime =
            lapin::runtime::default_runtime().map_err(|error| unavailable(error.to_string()))?;
        let connection = Connection::connect_with_config(
            &config.url,
            ConnectionProperties::default(),
            tls,
            runtime,
        )
        .await
        .map_err(|error| {
            let hint = if config.url.starts_with("amqps://") {
                " (TLS: does queue.ca_file, or the system, trust the broker's certificate, and does it name the URL's host?)"
            } else {
                ""
            };
            unavailable(format!("{error}{hint}"))
        })?;
        let broker = Self {
            connection,
            config: config.clone(),
            retry: retry.clone(),
        };
        broker.declare_topology().await?;
        Ok(broker)
    }

    async fn declare_topology(&self) -> Result<(), QueueError> {
        let channel = self.channel().await?;
        let config = &self.config;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let retry_exchange = config.retry_exchange();
        for (exchange, kind) in [
            (&config.ingest_exchange, ExchangeKind::Direct),
            (&config.dead_letter_exchange, ExchangeKind::Fanout),
            (&config.events_exchange, ExchangeKind::Topic),
            (&retry_exchange, ExchangeKind::Direct),
        ] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    kind,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(declare_error("exchange", exchange))?;
        }

        let typed = |extra: &[(&str, AMQPValue)]| {
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(config.queue_type.as_str().into()),
            );
            for (key, value) in extra {
                arguments.insert((*key).into(), value.clone());
            }
            arguments
        };
        let dead_letter_exchange =
            AMQPValue::LongString(config.dead_letter_exchange.as_str().into());
        let mut queues = vec![
            (
                config.ingest_queue.clone(),
                config.ingest_exchange.clone(),
                INGEST_ROUTING_KEY.to_owned(),
                typed(&[("x-dead-letter-exchange", dead_letter_exchange.clone())]),
            ),
            (
                config.bulk_queue(),
                config.ingest_exchange.clone(),
                BULK_ROUTING_KEY.to_owned(),
                typed(&[("x-dead-letter-exchange", dead_letter_exchange)]),
            ),
            (
                config.dead_letter_queue.clone(),
                config.dead_letter_exchange.clone(),
                String::new(),
                typed(&[]),
            ),
        ];
        for attempt in 1..self.retry.max_attempts {
            let mut arguments = FieldTable::default();
            let delay = self.retry.delay_after(attempt).as_millis() as i64;
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(delay));
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(config.ingest_exchange.as_str().into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(INGEST_ROUTING_KEY.into()),
            );
            queues.push((
                config.retry_queue(attempt),
                retry_exchange.clone(),
                attempt.to_string(),
                arguments,
            ));
        }
        for (queue, exchange, key, arguments) in queues {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::durable(),
                    arguments,
                )
                .await
                .map_err(declare_error("queue", &queue))?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(operation("queue.bind"))?;
        }
        close_channel(&channel).await;
        Ok(())
    }

    async fn channel(&self) -> Result<Channel, QueueError> {
        self.connection
            .create_channel()
            .await
            .map_err(operation("channel.open"))
    }

    /// A publisher whose every publish waits for the broker's confirm.
    pub async fn publisher(&self) -> Result<Publisher, QueueError> {
        let channel = self.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(operation("confirm.select"))?;
        Ok(Publisher {
            channel,
            config: self.config.clone(),
        })
    }

    /// Starts consuming uploads and bulk work, holding at most `prefetch`
    /// unacknowledged deliveries of each.
    pub async fn consume_ingest(&self, consumer_tag: &str) -> Result<IngestConsumer, QueueError> {
        let channel = self.channel().await?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(operation("basic.qos"))?;
        let tags = [
            format!("{consumer_tag}.uploads"),
            format!("{consumer_tag}.bulk"),
        ];
        let mut consumers = Vec::with_capacity(2);
        for (queue, tag) in [self.config.ingest_queue.clone(), self.config.bulk_queue()]
            .iter()
            .zip(&tags)
        {
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(operation("basic.consume"))?;
            consumers.push(consumer);
        }
        let bulk = consumers.pop().expect("two consumers");
        let uploads = consumers.pop().expect("two consumers");
        Ok(IngestConsumer {
            channel,
            uploads,
            bulk,
            tags,
        })
    }

    /// Subscribes to document events from now on, through an exclusive,
    /// auto-deleted queue. Subscribe before publishing so no event is missed.
    pub async fn subscribe_events(
        &self,
    ) -> Result<impl Stream<Item = DocumentEvent> + use<>, QueueError> {
        self.subscribe(DocumentEvent::ROUTING_PATTERN).await
    }

    /// The messages of the events exchange routed by `routing_key` that
    /// read as `T`, from now on, through an exclusive, auto-deleted queue.
    pub async fn subscribe<T: serde::de::DeserializeOwned>(
        &self,
        routing_key: &str,
    ) -> Result<impl Stream<Item = T> + use<T>, QueueError> {
        let channel = self.channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(operation("queue.declare"))?;
        channel
            .queue_bind(
                queue.name().clone(),
                self.config.events_exchange.as_str().into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(operation("queue.bind"))?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(operation("basic.consume"))?;
        Ok(consumer.filter_map(move |delivery| {
            // The channel lives as long as the stream.
            let _channel = &channel;
            let event = delivery
                .ok()
                .and_then(|delivery| serde_json::from_slice::<T>(&delivery.data).ok());
            async move { event }
        }))
    }

    /// Up to `limit` dead letters, oldest first, left in the queue.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let channel = self.channel().await?;
        let mut letters = Vec::new();
        while letters.len() < limit {
            match self.get_dead_letter(&channel).await? {
                Some(message) => letters.push(DeadLetter::from_delivery(&message.delivery)),
                None => break,
            }
        }
        // Closing the channel returns every unacknowledged message to the
        // queue, in its original position.
        close_channel(&channel).await;
        Ok(letters)
    }

    /// Republishes the dead letters `select` picks to the ingest exchange
    /// (as first deliveries, keeping their `traceparent`) and removes them
    /// from the dead-letter queue; the others stay. Returns those replayed.
    pub async fn replay_dead_letters(
        &self,
        select: impl Fn(&DeadLetter) -> bool,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let publisher = self.publisher().await?;
        let channel = self.channel().await?;
        let mut replayed = Vec::new();
        // A message taken but not acknowledged is not offered again on this
        // channel, so this visits each dead letter once.
        while let Some(message) = self.get_dead_letter(&channel).await? {
            let letter = DeadLetter::from_delivery(&message.delivery);
            if select(&letter) {
                publisher
                    .publish_ingest_body(&letter.body, letter.traceparent.as_deref())
                    .await?;
                let acked = message
                    .delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(operation("basic.ack"))?;
                settled(acked, "basic.ack")?;
                replayed.push(letter);
            }
        }
        close_channel(&channel).await;
        close_channel(&publisher.channel).await;
        Ok(replayed)
    }

    async fn get_dead_letter(
        &self,
        channel: &Channel,
    ) -> Result<Option<lapin::message::BasicGetMessage>, QueueError> {
        channel
            .basic_get(
                self.config.dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(operation("basic.get"))
    }

    /// Messages ready in the ingest and dead-letter queues, and the
    /// workers consuming uploads.
    pub async fn queue_depths(&self) -> Result<QueueDepths, QueueError> {
        let channel = self.channel().await?;
        let declared = async |queue: &str| {
            channel
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(operation("queue.declare"))
        };
        let ingest = declared(&self.config.ingest_queue).await?;
        let depths = QueueDepths {
            ingest: ingest.message_count(),
            bulk: declared(&self.config.bulk_queue()).await?.message_count(),
            dead: declared(&self.config.dead_letter_queue)
                .await?
                .message_count(),
            workers: ingest.consumer_count(),
        };
        close_channel(&channel).await;
        Ok(depths)
    }

    /// Deletes every queue and exchange of this configuration (tests use
    /// unique names and clean up after themselves).
    pub async fn delete_topology(&self) -> Result<(), QueueError> {
        let channel = self.channel().await?;
        let config = &self.config;
        let mut queues = vec![
            config.ingest_queue.clone(),
            config.bulk_queue(),
            config.dead_letter_queue.clone(),
        ];
        queues.extend((1..self.retry.max_attempts).map(|attempt| config.retry_queue(attempt)));
        for queue in queues {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(operation("queue.delete"))?;
        }
        let retry_exchange = config.retry_exchange();
        for exchange in [
            &config.ingest_exchange,
            &config.dead_letter_exchange,
            &config.events_exchange,
            &retry_exchange,
        ] {
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(operation("exchange.delete"))?;
        }
        close_channel(&channel).await;
        Ok(())
    }

    /// Closes the connection cleanly.
    pub async fn close(&self) {
        let _ = self.connection.close(200, "docpipe done".into()).await;
    }
}

async fn close_channel(channel: &Channel) {
    let _ = channel.close(200, "done".into()).await;
}

/// Messages ready (not yet delivered) in docpipe's queues.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct QueueDepths {
    /// Uploads waiting.
    pub ingest: u32,
    /// Bulk work (backfills, re-indexes) waiting.
    pub bulk: u32,
    /// Dead letters waiting for an operator.
    pub dead: u32,
    /// Workers consuming uploads (consumers of the ingest queue).
    pub workers: u32,
}

/// Publishes with publisher confirms: a publish returns once the broker
/// has taken responsibility for the message.
pub struct Publisher {
    channel: Channel,
    config: QueueConfig,
}

impl Publisher {
    /// Closes the publisher's channel. Close publishers before their
    /// broker: a channel still open when the connection closes is closed by
    /// lapin in the background, which then fails and logs a spurious
    /// connection error.
    pub async fn close(&self) {
        close_channel(&self.channel).await;
    }

    /// Publishes an ingest request, optionally carrying a W3C `traceparent`.
    pub async fn publish_ingest(
        &self,
        request: &IngestRequest,
        traceparent: Option<&str>,
    ) -> Result<(), QueueError> {
        self.publish_ingest_body(&request.encode(), traceparent)
            .await
    }

    /// Publishes bulk work (a backfilled document, a removal, a re-index):
    /// it waits behind uploads.
    pub async fn publish_bulk(
        &self,
        request: &Request,
        traceparent: Option<&str>,
    ) -> Result<(), QueueError> {
        let exchange = self.config.ingest_exchange.clone();
        let headers = work_headers(traceparent);
        self.publish(&exchange, BULK_ROUTING_KEY, &request.encode(), headers)
            .await
    }

    /// Publishes raw bytes as an ingest request, valid or not: what a
    /// misbehaving upload service might send, or a dead letter being replayed.
    pub async fn publish_ingest_body(
        &self,
        body: &[u8],
        traceparent: Option<&str>,
    ) -> Result<(), QueueError> {
        let exchange = self.config.ingest_exchange.clone();
        let headers = work_headers(traceparent);
        self.publish(&exchange, INGEST_ROUTING_KEY, body, headers)
            .await
    }

    /// Publishes a document event to the events exchange.
    pub async fn publish_event(
        &self,
        event: &DocumentEvent,
        traceparent: Option<&str>,
    ) -> Result<(), QueueError> {
        let mut headers = FieldTable::default();
        headers::put_optional(&mut headers, TRACEPARENT, traceparent);
        let body = serde_json::to_vec(event).expect("events always serialize");
        let exchange = self.config.events_exchange.clone();
        // Events are routed to whoever listens; nobody listening is fine.
        self.publish_with(
            &exchange,
            event.routing_key(),
            &body,
            persistent(headers),
            false,
        )
        .await
    }

    /// Publishes a worker's status to the events exchange; it is not
    /// persistent: a status is stale a few seconds later anyway.
    pub async fn publish_worker_status(&self, status: &WorkerStatus) -> Result<(), QueueError> {
        let body = serde_json::to_vec(status).expect("statuses always serialize");
        let exchange = self.config.events_exchange.clone();
        let properties = BasicProperties::default().with_content_type("application/json".into());
        self.publish_with(
            &exchange,
            WorkerStatus::ROUTING_KEY,
            &body,
            properties,
            false,
        )
        .await
    }

    /// Publishes a dead letter: the original body, the reason in headers.
    pub async fn publish_dead_letter(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let exchange = self.config.dead_letter_exchange.clone();
        let properties = persistent(letter.headers()).with_message_id(letter.id.as_str().into());
        self.publish_with(&exchange, "", &letter.body, properties, true)
            .await
    }

    /// Parks a copy of a failed delivery in the delay queue for its attempt;
    /// it returns to the ingest queue when the delay expires. `previous_attempt`
    /// is the `traceparent` of the failed attempt's span, which the next
    /// attempt links to.
    pub async fn publish_retry(
        &self,
        body: &[u8],
        history: &FailureHistory,
        traceparent: Option<&str>,
        previous_attempt: Option<&str>,
    ) -> Result<(), QueueError> {
        let mut headers = work_headers(traceparent);
        history.write(&mut headers);
        headers::put_optional(&mut headers, PREVIOUS_ATTEMPT, previous_attempt);
        let exchange = self.config.retry_exchange();
        self.publish(&exchange, &history.attempts.to_string(), body, headers)
            .await
    }

    /// Publishes a persistent message that must reach a queue.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), QueueError> {
        self.publish_with(exchange, routing_key, body, persistent(headers), true)
            .await
    }

    /// Publishes and waits for the broker's confirm; with `mandatory`, a
    /// message no queue receives is an error.
    async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<(), QueueError> {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(operation("basic.publish"))?
            .await
            .map_err(operation("publisher confirm"))?;
        let not_confirmed = |reason| QueueError::NotConfirmed {
            exchange: exchange.to_owned(),
            reason,
        };
        if !confirm.is_ack() {
            return Err(not_confirmed("the broker nacked it"));
        }
        if confirm.take_message().is_some() {
            return Err(not_confirmed("no queue is bound to receive it"));
        }
        Ok(())
    }
}

/// Headers of a message for the worker: the trace context and the publish
/// time, from which the worker measures time spent waiting in the queue.
fn work_headers(traceparent: Option<&str>) -> FieldTable {
    let mut headers = FieldTable::default();
    headers::put_optional(&mut headers, TRACEPARENT, traceparent);
    let now = docpipe_core::event::now_unix_ms().to_string();
    headers::put_optional(&mut headers, PUBLISHED_AT, Some(&now));
    headers
}

fn persistent(headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_headers(headers)
}

/// Ingest deliveries, acknowledged one by one.
pub struct IngestConsumer {
    channel: Channel,
    uploads: lapin::Consumer,
    bulk: lapin::Consumer,
    tags: [String; 2],
}

impl IngestConsumer {
    /// The next delivery, an upload if one is waiting, or `None` once
    /// consuming was cancelled or the channel closed.
    pub async fn next(&mut self) -> Option<Result<IngestDelivery, QueueError>> {
        // A pending `next` loses nothing when dropped, so the bulk branch
        // can lose the race without losing its delivery.
        let delivery = tokio::select! {
            biased;
            delivery = self.uploads.next() => delivery,
            delivery = self.bulk.next() => delivery,
        }?;
        Some(
            delivery
                .map(|delivery| IngestDelivery { delivery })
                .map_err(operation("basic.deliver")),
        )
    }

    /// Asks the broker to stop delivering; deliveries already received
    /// may still be processed and acknowledged.
    pub async fn cancel(&self) -> Result<(), QueueError> {
        for tag in &self.tags {
            self.channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await
                .map_err(operation("basic.cancel"))?;
        }
        Ok(())
    }

    /// Closes the channel; unacknowledged deliveries return to the queue.
    pub async fn close(&self) {
        close_channel(&self.channel).await;
    }
}

/// One ingest delivery.
pub struct IngestDelivery {
    delivery: lapin::message::Delivery,
}

impl IngestDelivery {
    /// The message body.
    pub fn body(&self) -> &[u8] {
        &self.delivery.data
    }

    /// The publisher's W3C `traceparent` header, if any.
    pub fn traceparent(&self) -> Option<String> {
        headers::get_string(self.delivery.properties.headers().as_ref(), TRACEPARENT)
    }

    /// The `traceparent` of the failed attempt before this delivery, if any.
    pub fn previous_attempt(&self) -> Option<String> {
        headers::get_string(
            self.delivery.properties.headers().as_ref(),
            PREVIOUS_ATTEMPT,
        )
    }

    /// When the message was published (or parked for a retry), in
    /// milliseconds since the Unix epoch: docpipe's own header, else the
    /// AMQP `timestamp` property (whole seconds) that other publishers set.
    pub fn published_at_unix_ms(&self) -> Option<u64> {
        let properties = &self.delivery.properties;
        headers::get_string(properties.headers().as_ref(), PUBLISHED_AT)
            .and_then(|text| text.parse().ok())
            .or_else(|| properties.timestamp().map(|seconds| seconds * 1000))
    }

    /// The message's earlier failed deliveries, from its headers.
    pub fn history(&self) -> FailureHistory {
        FailureHistory::from_headers(self.delivery.properties.headers().as_ref())
    }

    /// Acknowledges: the broker forgets the message.
    pub async fn ack(&self) -> Result<(), QueueError> {
        let acked = self
            .delivery
            .ack(BasicAckOptions::default())
            .await
            .map_err(operation("basic.ack"))?;
        settled(acked, "basic.ack")
    }

    /// Returns the message to the queue for another attempt.
    pub async fn requeue(&self) -> Result<(), QueueError> {
        let nacked = self
            .delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map_err(operation("basic.nack"))?;
        settled(nacked, "basic.nack")
    }
}

/// lapin reports `false` when the delivery can no longer be settled.
fn settled(done: bool, what: &'static str) -> Result<(), QueueError> {
    if done {
        Ok(())
    } else {
        Err(QueueError::Operation {
            operation: what,
            message:
                "the delivery was already settled or its channel is gone; the broker redelivers it"
                    .into(),
        })
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
