//! The worker's Prometheus metrics, in one process-wide registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::encode`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Labels naming a pipeline stage, e.g. `parse` or `store.milvus`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// The stage.
    pub stage: String,
}

/// Labels naming what became of a delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `indexed`, `unchanged`, `removed`, `retried`, `dead_lettered` or `requeued`.
    pub outcome: String,
}

/// Labels naming a failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `transient` or `permanent`.
    pub error_class: String,
    /// The stable error code, e.g. `corrupt_pdf`.
    pub error_code: String,
}

/// Labels naming a queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `uploads`, `bulk` or `dead`.
    pub queue: String,
}

/// Labels of one search served by `docpipe serve`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SearchLabels {
    /// `hybrid`, `dense` or `bm25`.
    pub mode: String,
    /// `ok`, or the error code the caller got (`overloaded`, `timeout`, …).
    pub outcome: String,
}

/// Every metric the worker and the search server export (names carry the `docpipe_` prefix).
pub struct Metrics {
    registry: Registry,
    /// Seconds each stage took, per document.
    pub stage_seconds: Family<StageLabels, Histogram>,
    /// Seconds between publish and consume.
    pub queue_wait_seconds: Histogram,
    /// Deliveries settled, by outcome.
    pub documents: Family<OutcomeLabels, Counter>,
    /// Chunks written.
    pub chunks: Counter,
    /// Model tokens embedded.
    pub tokens: Counter,
    /// PDF pages left out of their document because they could not be read.
    pub skipped_pages: Counter,
    /// PDF pages without a text layer read by OCR.
    pub ocr_pages: Counter,
    /// Token positions the model computed, padding included: over
    /// `tokens`, the cost of batching texts of unequal length.
    pub padded_tokens: Counter,
    /// Deliveries parked for a retry, by error.
    pub retries: Family<ErrorLabels, Counter>,
    /// Deliveries dead-lettered, by error.
    pub dead_letters: Family<ErrorLabels, Counter>,
    /// Texts per embedding call.
    pub embed_batch_size: Histogram,
    /// Documents being processed now.
    pub in_flight: Gauge,
    /// Messages ready in each queue, sampled by the worker.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// Seconds each search took, by mode and outcome (`docpipe serve`).
    pub search_seconds: Family<SearchLabels, Histogram>,
}

fn seconds_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("docpipe");
        let stage_seconds =
            Family::<StageLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let queue_wait_seconds = seconds_histogram();
        let documents = Family::<OutcomeLabels, Counter>::default();
        let (chunks, tokens) = (Counter::default(), Counter::default());
        let (skipped_pages, ocr_pages) = (Counter::default(), Counter::default());
        let padded_tokens = Counter::default();
        let retries = Family::<ErrorLabels, Counter>::default();
        let dead_letters = Family::<ErrorLabels, Counter>::default();
        let embed_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
        let in_flight = Gauge::default();
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        let search_seconds =
            Family::<SearchLabels, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "stage_duration_seconds",
            "Time each pipeline stage took per document",
            stage_seconds.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time between publish and consume",
            queue_wait_seconds.clone(),
        );
        registry.register(
            "documents",
            "Deliveries settled, by outcome",
            documents.clone(),
        );
        registry.register("chunks", "Chunks written to the stores", chunks.clone());
        registry.register("tokens", "Model tokens embedded", tokens.clone());
        registry.register(
            "skipped_pages",
            "PDF pages left out of their document because they could not be read",
            skipped_pages.clone(),
        );
        registry.register(
            "ocr_pages",
            "PDF pages without a text layer read by OCR",
            ocr_pages.clone(),
        );
        registry.register(
            "padded_tokens",
            "Token positions computed by the model, padding included",
            padded_tokens.clone(),
        );
        registry.register(
            "retries",
            "Deliveries parked for a retry, by error",
            retries.clone(),
        );
        registry.register(
            "dead_letters",
            "Deliveries dead-lettered, by error",
            dead_letters.clone(),
        );
        registry.register(
            "embed_batch_size",
            "Texts per embedding call",
            embed_batch_size.clone(),
        );
        registry.register(
            "in_flight_documents",
            "Documents being processed",
            in_flight.clone(),
        );
        registry.register(
            "queue_depth",
            "Messages ready in each queue",
            queue_depth.clone(),
        );
        registry.register(
            "search_duration_seconds",
            "Time each search took, by mode and outcome",
            search_seconds.clone(),
        );
        Self {
            registry,
            stage_seconds,
            queue_wait_seconds,
            documents,
            chunks,
            tokens,
            skipped_pages,
            ocr_pages,
            padded_tokens,
            retries,
            dead_letters,
            embed_batch_size,
            in_flight,
            queue_depth,
            search_seconds,
        }
    }

    /// Records a search in `mode` that ended with `outcome` after `took`.
    pub fn search(&self, mode: &str, outcome: &str, took: Duration) {
        self.search_seconds
            .get_or_create(&SearchLabels {
                mode: mode.to_owned(),
                outcome: outcome.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records how long `stage` took.
    pub fn stage(&self, stage: &str, took: Duration) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts a settled delivery.
    pub fn outcome(&self, outcome: &str) {
        self.documents
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a retry or dead letter of `error_class`/`error_code`.
    pub fn failure(&self, dead_lettered: bool, error_class: &str, error_code: &str) {
        let labels = ErrorLabels {
            error_class: error_class.to_owned(),
            error_code: error_code.to_owned(),
        };
        let family = if dead_lettered {
            &self.dead_letters
        } else {
            &self.retries
        };
        family.get_or_create(&labels).inc();
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_parses_and_counts_what_was_recorded() {
        let metrics = Metrics::new();
        metrics.outcome("indexed");
        metrics.outcome("indexed");
        metrics.stage("parse", Duration::from_millis(12));
        metrics.failure(true, "permanent", "corrupt_pdf");
        let text = metrics.encode();
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
        let indexed = scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == "docpipe_documents_total"
                    && sample.labels.get("outcome") == Some("indexed")
            })
            .expect("the indexed counter");
        assert!(matches!(indexed.value, prometheus_parse::Value::Counter(count) if count == 2.0));
        assert!(text.contains(
            "docpipe_dead_letters_total{error_class=\"permanent\",error_code=\"corrupt_pdf\"} 1"
        ));
        assert!(text.contains("docpipe_stage_duration_seconds_bucket{stage=\"parse\""));
    }
}
