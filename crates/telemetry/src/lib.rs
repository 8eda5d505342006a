//! What operators see of docpipe: logs, traces, metrics and health.
//!
//! - [`init`] installs the `tracing` subscriber: logs to stderr in a human
//!   or JSON format (one line per event, with trace and span ids), and, when
//!   the standard `OTEL_EXPORTER_OTLP_*` variables name an endpoint, an
//!   OpenTelemetry layer exporting spans over OTLP (gRPC or HTTP/protobuf)
//!   from a batch processor on its own thread, so exporting never blocks the
//!   pipeline. Head sampling is parent-based with the ratio of
//!   `OTEL_TRACES_SAMPLER_ARG` (default 1).
//! - [`propagation`] carries W3C trace context through AMQP headers.
//! - [`metrics`] holds the Prometheus metrics; [`http`] serves them with
//!   `/healthz` and `/readyz`.
//!
//! Stage spans are named `docpipe.consume`, `docpipe.parse`, `docpipe.chunk`,
//! `docpipe.embed`, `docpipe.store.milvus`, `docpipe.store.bm25`,
//! `docpipe.ack`, `docpipe.retry` and `docpipe.dead_letter`. Chunk text is
//! never recorded unless `DOCPIPE_TRACE_CHUNK_TEXT=1` asks for it (see
//! [`record_chunk_text`]).

pub mod http;
mod json;
pub mod metrics;
pub mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For terminals: time, level, message, fields.
    Human,
    /// One JSON object per line, with `trace_id` and `span_id` when known.
    Json,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` settings.
    #[error("cannot set up OTLP export ({0}); check the OTEL_EXPORTER_OTLP_* variables")]
    Exporter(String),
    /// A subscriber was already installed.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(String),
    /// `OTEL_TRACES_SAMPLER_ARG` is not a ratio.
    #[error("OTEL_TRACES_SAMPLER_ARG is {0:?}; use a number from 0 to 1")]
    SamplerRatio(String),
}

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter. Blocking:
    /// call it after the pipeline has stopped.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.force_flush() {
                eprintln!("warning: cannot flush spans: {error}");
            }
            if let Err(error) = provider.shutdown() {
                eprintln!("warning: cannot stop the span exporter: {error}");
            }
        }
    }
}

/// Whether the standard variables ask for OTLP export: an endpoint is set
/// and the SDK is not disabled.
pub fn otlp_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value == "true");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Whether chunk text may be recorded on spans (`DOCPIPE_TRACE_CHUNK_TEXT=1`):
/// an opt-in for debugging, since chunks hold users' documents.
pub fn record_chunk_text() -> bool {
    std::env::var("DOCPIPE_TRACE_CHUNK_TEXT").is_ok_and(|value| value == "1")
}

/// Installs the subscriber; `default_level` applies when `RUST_LOG` is
/// unset. Must run inside a tokio runtime (the gRPC exporter needs one).
pub fn init(
    service: &'static str,
    format: LogFormat,
    default_level: &str,
) -> Result<Telemetry, TelemetryError> {
    let log_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(json::JsonLines)
            .with_filter(log_filter)
            .boxed(),
    };
    // JSON logs carry trace ids, so they need span contexts even when
    // nothing is exported; without either, no OpenTelemetry layer is
    // installed and spans cost what a disabled `tracing` span costs.
    let export = otlp_configured();
    let provider = match (export, format) {
        (true, _) => Some(exporting_provider(service)?),
        (false, LogFormat::Json) => Some(SdkTracerProvider::builder().build()),
        (false, LogFormat::Human) => None,
    };
    let spans = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            // Stage spans are `info`; their own filter, so a quieter
            // RUST_LOG never hides them from the exporter.
            .with_filter(EnvFilter::new("info"))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|error| TelemetryError::Subscriber(error.to_string()))?;
    Ok(Telemetry {
        provider: provider.filter(|_| export),
    })
}

fn exporting_provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    let ratio = match std::env::var("OTEL_TRACES_SAMPLER_ARG") {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|ratio| (0.0..=1.0).contains(ratio))
            .ok_or(TelemetryError::SamplerRatio(text))?,
        Err(_) => 1.0,
    };
    // The transport (OTEL_EXPORTER_OTLP_PROTOCOL: grpc or http/protobuf),
    // endpoint, headers and timeout all come from the standard variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .build()
        .map_err(|error| TelemetryError::Exporter(error.to_string()))?;
    Ok(SdkTracerProvider::builder()
        // A dedicated thread batches and exports; the pipeline only queues.
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}
