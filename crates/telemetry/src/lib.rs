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

#![warn(missing_docs)]

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

/// Libraries whose warnings are about the documents they read, not about
/// docpipe: HTML a browser forgives ("foster parenting not implemented"),
/// PDF fonts without glyph names (77,000 lines for 500 man pages). Only
/// their errors are logged, unless `RUST_LOG` names them.
const DOCUMENT_LIBRARIES: [&str; 4] = ["html5ever", "markup5ever", "pdf_extract", "lopdf"];

/// The log filter: `rust_log`'s directives (or `default_level`), with the
/// parsers it does not name (html5ever, markup5ever, pdf-extract, lopdf)
/// held to errors.
pub fn log_filter(default_level: &str, rust_log: Option<&str>) -> EnvFilter {
    let mut filter = rust_log
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    for library in DOCUMENT_LIBRARIES {
        if !rust_log.is_some_and(|directives| directives.contains(library)) {
            filter = filter.add_directive(
                format!("{library}=error")
                    .parse()
                    .expect("a library name makes a directive"),
            );
        }
    }
    filter
}

/// Installs the subscriber; `default_level` applies when `RUST_LOG` is
/// unset. Must run inside a tokio runtime (the gRPC exporter needs one).
pub fn init(
    service: &'static str,
    format: LogFormat,
    default_level: &str,
) -> Result<Telemetry, TelemetryError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let log_filter = log_filter(default_level, rust_log.as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(rust_log: Option<&str>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_filter(log_filter("info", rust_log)),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "html5ever::tree_builder", "foster parenting not implemented");
            tracing::warn!(target: "pdf_extract", "unknown glyph name '.notdef'");
            tracing::error!(target: "lopdf::reader", "xref table is broken");
            tracing::warn!(target: "docpipe_pipeline::worker", "transient failure; retrying");
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn parsers_warnings_about_documents_stay_out_of_the_log() {
        for rust_log in [None, Some("info"), Some("debug")] {
            let log = logged(rust_log);
            assert!(!log.contains("foster parenting"), "{rust_log:?}: {log}");
            assert!(!log.contains(".notdef"), "{rust_log:?}: {log}");
            assert!(log.contains("xref table is broken"), "{rust_log:?}: {log}");
            assert!(log.contains("transient failure"), "{rust_log:?}: {log}");
        }
    }

    #[test]
    fn naming_a_parser_in_rust_log_shows_its_warnings() {
        let log = logged(Some("info,html5ever=warn"));
        assert!(log.contains("foster parenting"), "{log}");
        assert!(!log.contains(".notdef"), "{log}");
    }
}
