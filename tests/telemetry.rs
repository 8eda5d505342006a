//! What an operator sees of a document: its trace in an OpenTelemetry
//! backend and the worker's Prometheus metrics. The OTLP endpoint here is a
//! real gRPC trace service built from the OpenTelemetry protobuf types; the
//! worker is the `docpipe` binary, configured by the standard variables.

mod common;

use common::{DocpipeProcess, file_uri, write_pipeline};
use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, TenantId};
use docpipe_queue::Broker;
use futures::StreamExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An OTLP/gRPC trace endpoint that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    async fn start() -> (Self, SocketAddr) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (collector, address)
    }

    /// The spans of one trace.
    fn trace(&self, trace_id: &[u8]) -> Vec<Span> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::IntValue(number) => number.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        Value::BoolValue(flag) => flag.to_string(),
        other => format!("{other:?}"),
    })
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
            panic!("no {name} span among {names:?}")
        })
}

/// A plain HTTP/1.0 GET: status code and body.
async fn get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// The value of a counter sample (with `label`, if given) in a Prometheus
/// exposition, which must parse.
fn counter(exposition: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    let lines = exposition.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus exposition");
    scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && label.is_none_or(|(key, value)| sample.labels.get(key) == Some(value))
        })
        .map_or(0.0, |sample| match sample.value {
            prometheus_parse::Value::Counter(value) => value,
            _ => panic!("{name} is not a counter"),
        })
}

/// Scrapes `/metrics` until the counter reaches `at_least` (for ten seconds
/// at most) and returns the last exposition.
async fn scrape_until(
    address: SocketAddr,
    name: &str,
    label: Option<(&str, &str)>,
    at_least: f64,
) -> String {
    let mut exposition = String::new();
    for _ in 0..50 {
        exposition = get(address, "/metrics").await.unwrap().1;
        if counter(&exposition, name, label) >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    exposition
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingested_pdf_is_one_trace_under_the_publishers_span_and_the_metrics_count_it() {
    let (collector, otlp) = Collector::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let mut config = common::unique_config("telemetry", scratch.path());
    let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    config.worker.metrics_addr = Some(metrics);
    let pipeline = write_pipeline(&config, scratch.path());
    let log = scratch.path().join("worker.log");
    let mut worker = DocpipeProcess::start_with(&pipeline, &log, |command| {
        command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("DOCPIPE_LOG_FORMAT", "json");
    });
    let mut ready = None;
    for _ in 0..240 {
        ready = get(metrics, "/readyz").await;
        if ready.as_ref().is_some_and(|(status, _)| *status == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(ready.map(|(status, _)| status), Some(200), "/readyz");
    assert_eq!(get(metrics, "/healthz").await.unwrap().0, 200);
    let before = get(metrics, "/metrics").await.unwrap().1;

    // The upload service's span, as its traceparent header carries it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let publisher_span = "00f067aa0ba902b7";
    let failing_trace = "0af7651916cd43dd8448eb211c80319c";
    let broker = Broker::connect(&config.queue, &config.retry).await.unwrap();
    let events = broker.subscribe_events().await.unwrap();
    let publisher = broker.publisher().await.unwrap();
    let tenant = TenantId::new("traced").unwrap();
    for (document, file, trace) in [
        ("guide", "corpus/guides/rabbitmq-operations.pdf", trace_id),
        ("broken", "bad/truncated.pdf", failing_trace),
    ] {
        let request = IngestRequest::for_file(
            tenant.clone(),
            DocumentId::new(document).unwrap(),
            file_uri(&common::fixtures().join(file)),
        );
        let traceparent = format!("00-{trace}-{publisher_span}-01");
        publisher
            .publish_ingest(&request, Some(&traceparent))
            .await
            .unwrap();
    }
    let outcomes: Vec<DocumentEvent> =
        tokio::time::timeout(Duration::from_secs(180), events.take(2).collect())
            .await
            .expect("both documents settled");
    assert!(
        outcomes
            .iter()
            .any(|event| matches!(event, DocumentEvent::Indexed { .. }))
    );

    // A delivery is counted once it is acknowledged, just after its event.
    let indexed = Some(("outcome", "indexed"));
    let counted = counter(&before, "docpipe_documents_total", indexed) + 1.0;
    let after = scrape_until(metrics, "docpipe_documents_total", indexed, counted).await;
    assert_eq!(counter(&after, "docpipe_documents_total", indexed), counted);
    let dead = Some(("error_code", "corrupt_pdf"));
    assert_eq!(counter(&after, "docpipe_dead_letters_total", dead), 1.0);
    assert!(after.contains("docpipe_stage_duration_seconds_bucket{stage=\"embed\""));
    assert!(counter(&after, "docpipe_tokens_total", None) > 0.0);

    // SIGTERM flushes the spans still buffered.
    assert!(worker.terminate(), "the worker exits cleanly");
    let log = std::fs::read_to_string(&log).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("document indexed"))
        .expect("the indexed document is logged");
    let line: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert_eq!(
        line["trace_id"], trace_id,
        "logs carry the trace id: {line}"
    );

    let spans = collector.trace(&hex(trace_id));
    let consume = named(&spans, "docpipe.consume");
    assert_eq!(
        consume.parent_span_id,
        hex(publisher_span),
        "the publisher's span is the root"
    );
    for (key, value) in [
        ("document.id", "guide"),
        ("tenant", "traced"),
        ("attempt", "1"),
        ("outcome", "indexed"),
        ("action", "index"),
    ] {
        assert_eq!(attribute(consume, key).as_deref(), Some(value), "{key}");
    }
    assert!(attribute(consume, "queue.wait_ms").is_some());
    for stage in [
        "docpipe.parse",
        "docpipe.chunk",
        "docpipe.embed",
        "docpipe.store.milvus",
        "docpipe.store.bm25",
        "docpipe.ack",
    ] {
        assert_eq!(
            named(&spans, stage).parent_span_id,
            consume.span_id,
            "{stage} is a stage of the delivery"
        );
    }
    let parse = named(&spans, "docpipe.parse");
    assert!(attribute(parse, "bytes").unwrap().parse::<u64>().unwrap() > 1000);
    assert!(attribute(parse, "pages").unwrap().parse::<u64>().unwrap() >= 2);
    let chunks = attribute(named(&spans, "docpipe.chunk"), "chunks").unwrap();
    let embed = named(&spans, "docpipe.embed");
    assert_eq!(attribute(embed, "chunks"), Some(chunks.clone()));
    assert!(attribute(embed, "tokens").unwrap().parse::<u64>().unwrap() > 0);
    assert!(attribute(embed, "batch_size").is_some());
    assert_eq!(
        attribute(embed, "model").as_deref(),
        Some("sentence-transformers/all-MiniLM-L6-v2")
    );
    assert!(attribute(embed, "pipeline.version").is_some());
    assert_eq!(
        attribute(named(&spans, "docpipe.store.milvus"), "chunks"),
        Some(chunks)
    );
    assert!(
        spans.iter().all(|span| attribute(span, "text").is_none()),
        "chunk text stays out of spans by default"
    );

    let failed = collector.trace(&hex(failing_trace));
    let consume = named(&failed, "docpipe.consume");
    assert_eq!(
        consume.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32),
        "a failing document's span is an error"
    );
    assert_eq!(
        attribute(consume, "error.class").as_deref(),
        Some("permanent")
    );
    assert_eq!(
        attribute(consume, "error.code").as_deref(),
        Some("corrupt_pdf")
    );
    let dead_letter = named(&failed, "docpipe.dead_letter");
    assert_eq!(
        attribute(dead_letter, "error.class").as_deref(),
        Some("permanent")
    );

    // A search is a trace of its own: embed, dense, bm25 and fuse under
    // docpipe.search, with the documents found but no chunk text.
    let mut search = common::docpipe(&pipeline);
    search
        .args(["search", "dead letter exchange", "--tenant", "traced"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    assert!(common::run(search).await.status.success());
    let spans = collector.spans.lock().unwrap().clone();
    let root = named(&spans, "docpipe.search");
    assert_eq!(attribute(root, "mode").as_deref(), Some("hybrid"));
    assert_eq!(attribute(root, "results").as_deref(), Some("guide"));
    assert!(attribute(root, "scores").is_some());
    for stage in [
        "docpipe.embed",
        "docpipe.dense",
        "docpipe.bm25",
        "docpipe.fuse",
    ] {
        let found = spans
            .iter()
            .any(|span| span.name == stage && span.trace_id == root.trace_id);
        assert!(found, "{stage} is a stage of the search");
    }
    assert!(
        spans
            .iter()
            .filter(|span| span.trace_id == root.trace_id)
            .all(|span| attribute(span, "text").is_none())
    );

    broker.close().await;
    common::remove_resources(&config).await;
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
        .collect()
}
