//! `docpipe bench`: measures every stage and the whole pipeline in one run
//! on a generated corpus, and reports the ratios that matter. Absolute
//! numbers vary between runs on shared machines; the ratios are what we
//! track.

mod corpus;

pub use corpus::text_pdf;

use docpipe_bm25::Bm25Store;
use docpipe_chunk::Chunker;
use docpipe_core::{
    Chunk, ChunkStore, DocumentEvent, DocumentId, IndexedChunk, IngestRequest, ParsedDocument,
    PipelineConfig, PipelineVersion, TenantId,
};
use docpipe_embed::{Embedder, ModelDir, OnnxEmbedder};
use docpipe_milvus::MilvusStore;
use docpipe_parse::DocumentParser;
use docpipe_pipeline::{Generations, Worker, no_wrapping, pipeline_version, remove_family};
use docpipe_queue::Broker;
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Documents in the generated corpus.
    pub documents: usize,
    /// The int8 model directory to compare with the pipeline's model, if any.
    pub int8_model: Option<PathBuf>,
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
#[error("bench failed while {stage}: {message}")]
pub struct BenchError {
    stage: &'static str,
    message: String,
}

fn failed<E: std::fmt::Display>(stage: &'static str) -> impl Fn(E) -> BenchError {
    move |error| BenchError {
        stage,
        message: error.to_string(),
    }
}

/// One embed-only measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedRun {
    /// `fp32` or `int8`.
    pub model: &'static str,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Chunks embedded per second.
    pub chunks_per_s: f64,
    /// Model tokens (with special tokens, truncated as embedded) per second.
    pub tokens_per_s: f64,
}

/// Everything one bench run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// The CPU's SIMD path.
    pub isa: &'static str,
    /// Logical CPUs.
    pub cpus: usize,
    /// Documents in the corpus.
    pub documents: usize,
    /// Their total size.
    pub corpus_bytes: u64,
    /// Chunks they produce.
    pub chunks: usize,
    /// Parse throughput, MB of source per second.
    pub parse_mb_per_s: f64,
    /// Chunking throughput, chunks per second.
    pub chunk_per_s: f64,
    /// Embed-only throughput per model and thread count.
    pub embed: Vec<EmbedRun>,
    /// Milvus write throughput, chunks per second.
    pub milvus_chunks_per_s: f64,
    /// tantivy write throughput, chunks per second.
    pub tantivy_chunks_per_s: f64,
    /// End to end through RabbitMQ: documents per second.
    pub end_to_end_documents_per_s: f64,
    /// End to end through RabbitMQ: chunks per second.
    pub end_to_end_chunks_per_s: f64,
    /// End-to-end chunks/s over embed-only chunks/s (pipeline model, all threads).
    pub end_to_end_vs_embed_only: f64,
    /// int8 over fp32 embed-only chunks/s (all threads), when int8 was measured.
    pub int8_vs_fp32: Option<f64>,
    /// Peak resident memory of this process while ingesting end to end, MiB.
    pub peak_rss_mib: Option<f64>,
    /// What one document's stage spans cost with tracing as this process
    /// runs it (export off, spans below the log level), in microseconds.
    pub tracing_us_per_document: f64,
    /// That cost over the end-to-end time per document.
    pub tracing_share_of_end_to_end: f64,
}

/// Runs the bench with `config`'s model, stores and broker, on unique
/// collection, index and queue names that are removed afterwards.
pub async fn run(
    config: &PipelineConfig,
    options: &BenchOptions,
) -> Result<BenchReport, BenchError> {
    let scratch = tempfile::tempdir().map_err(failed("creating a scratch directory"))?;
    let paths = corpus::write(&scratch.path().join("corpus"), options.documents)
        .map_err(failed("writing the corpus"))?;
    let config = unique_config(config, scratch.path());

    let (documents, corpus_bytes, parse_seconds) = parse_all(&config, &paths)?;
    let model = ModelDir::open(&config.model.dir).map_err(failed("opening the model"))?;
    let version = pipeline_version(&config, &model).map_err(failed("fingerprinting the model"))?;
    let (chunks, chunk_seconds) = chunk_all(&config, &model, &version, &documents)?;
    let texts: Vec<&str> = chunks
        .iter()
        .flatten()
        .map(|chunk| chunk.embed_text.as_str())
        .collect();
    let tokens = count_tokens(&model, &texts)?;
    let chunk_count = texts.len();
    tracing::info!(
        documents = paths.len(),
        chunks = chunk_count,
        tokens,
        "corpus ready"
    );

    let mut embed = Vec::new();
    let mut vectors = Vec::new();
    let int8 = options
        .int8_model
        .clone()
        .filter(|dir| dir.join("model.onnx").is_file());
    for (label, dir) in [("fp32", Some(config.model.dir.clone())), ("int8", int8)] {
        let Some(dir) = dir else { continue };
        for threads in [1, 0] {
            let (run, produced) = embed_only(&config, &dir, label, threads, &texts, tokens)?;
            if label == "fp32" && threads == 0 {
                vectors = produced;
            }
            embed.push(run);
        }
    }
    let indexed = with_vectors(&version, chunks, vectors);
    let (milvus_chunks_per_s, tantivy_chunks_per_s) =
        store_writes(&config, scratch.path(), &indexed).await?;
    let (end_to_end_seconds, peak_rss_mib) = end_to_end(&config, &paths).await?;

    let all_threads = |label: &str| {
        embed
            .iter()
            .filter(|run| run.model == label)
            .max_by_key(|run| run.threads)
            .map(|run| run.chunks_per_s)
    };
    let fp32 = all_threads("fp32").unwrap_or(f64::NAN);
    let end_to_end_chunks_per_s = chunk_count as f64 / end_to_end_seconds;
    let tracing = span_cost_per_document();
    let tracing_share_of_end_to_end =
        tracing.as_secs_f64() / (end_to_end_seconds / paths.len() as f64);
    Ok(BenchReport {
        isa: docpipe_embed::cpu_isa(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        documents: paths.len(),
        corpus_bytes,
        chunks: chunk_count,
        parse_mb_per_s: corpus_bytes as f64 / 1e6 / parse_seconds,
        chunk_per_s: chunk_count as f64 / chunk_seconds,
        int8_vs_fp32: all_threads("int8").map(|int8| int8 / fp32),
        embed,
        milvus_chunks_per_s,
        tantivy_chunks_per_s,
        end_to_end_documents_per_s: paths.len() as f64 / end_to_end_seconds,
        end_to_end_chunks_per_s,
        end_to_end_vs_embed_only: end_to_end_chunks_per_s / fp32,
        peak_rss_mib,
        tracing_us_per_document: tracing.as_secs_f64() * 1e6,
        tracing_share_of_end_to_end,
    })
}

/// The cost of one document's spans (consume, parse, chunk, embed, two
/// stores, ack) with the subscriber this process installed, averaged over
/// many documents.
fn span_cost_per_document() -> Duration {
    use tracing::field::Empty;
    const DOCUMENTS: u32 = 20_000;
    let started = Instant::now();
    for ordinal in 0..DOCUMENTS {
        let consume =
            tracing::info_span!("docpipe.consume", document.id = ordinal, outcome = Empty);
        let _in_consume = consume.enter();
        for stage in [
            tracing::info_span!("docpipe.parse", bytes = ordinal, pages = Empty),
            tracing::info_span!("docpipe.chunk", chunks = Empty),
            tracing::info_span!("docpipe.embed", chunks = ordinal, tokens = Empty),
            tracing::info_span!("docpipe.store.milvus", chunks = ordinal),
            tracing::info_span!("docpipe.store.bm25", chunks = ordinal),
            tracing::info_span!("docpipe.ack"),
        ] {
            stage.in_scope(|| stage.record("pages", ordinal));
        }
        consume.record("outcome", "indexed");
    }
    started.elapsed() / DOCUMENTS
}

fn unique_config(config: &PipelineConfig, scratch: &Path) -> PipelineConfig {
    let mut config = config.clone();
    let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    config.milvus.collection = format!("bench_{unique}");
    config.bm25.index_dir = scratch.join("index");
    let queue = &mut config.queue;
    for name in [
        &mut queue.ingest_exchange,
        &mut queue.ingest_queue,
        &mut queue.dead_letter_exchange,
        &mut queue.dead_letter_queue,
        &mut queue.events_exchange,
    ] {
        *name = format!("bench.{unique}.{name}");
    }
    config.sources.allowed_roots = vec![scratch.to_owned()];
    config
}

fn parse_all(
    config: &PipelineConfig,
    paths: &[PathBuf],
) -> Result<(Vec<ParsedDocument>, u64, f64), BenchError> {
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .map_err(failed("reading the corpus"))?;
    let parser = DocumentParser::new(config.limits.max_pdf_pages, config.limits.max_html_depth);
    let started = Instant::now();
    let documents = files
        .iter()
        .map(|bytes| parser.parse(bytes, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("parsing"))?;
    let bytes = files.iter().map(|file| file.len() as u64).sum();
    Ok((documents, bytes, started.elapsed().as_secs_f64()))
}

fn document_id(index: usize) -> DocumentId {
    DocumentId::new(format!("bench-{index:05}")).expect("bench ids are valid")
}

fn tenant() -> TenantId {
    TenantId::new("bench").expect("a valid tenant")
}

fn chunk_all(
    config: &PipelineConfig,
    model: &ModelDir,
    version: &PipelineVersion,
    documents: &[ParsedDocument],
) -> Result<(Vec<Vec<Chunk>>, f64), BenchError> {
    let tokenizer = model.tokenizer().map_err(failed("loading the tokenizer"))?;
    let chunker = Chunker::new(
        tokenizer,
        &config.chunking,
        config.limits.max_chunks_per_document,
    )
    .map_err(failed("building the chunker"))?;
    let started = Instant::now();
    let chunks = documents
        .iter()
        .enumerate()
        .map(|(index, document)| chunker.chunk(document, &tenant(), &document_id(index), version))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("chunking"))?;
    Ok((chunks, started.elapsed().as_secs_f64()))
}

fn count_tokens(model: &ModelDir, texts: &[&str]) -> Result<usize, BenchError> {
    let mut tokenizer = model.tokenizer().map_err(failed("loading the tokenizer"))?;
    tokenizer.with_padding(None);
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(failed("counting tokens"))?;
    Ok(encodings.iter().map(|encoding| encoding.len()).sum())
}

fn embed_only(
    config: &PipelineConfig,
    dir: &Path,
    label: &'static str,
    threads: usize,
    texts: &[&str],
    tokens: usize,
) -> Result<(EmbedRun, Vec<Vec<f32>>), BenchError> {
    let model = ModelDir::open(dir).map_err(failed("opening a model"))?;
    let embedder = OnnxEmbedder::load(&model, config.model.batch_size, threads)
        .map_err(failed("loading a model"))?;
    let started = Instant::now();
    let vectors = embedder
        .embed_documents(texts)
        .map_err(failed("embedding"))?;
    let seconds = started.elapsed().as_secs_f64();
    let run = EmbedRun {
        model: label,
        threads: if threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            threads
        },
        chunks_per_s: texts.len() as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
    };
    tracing::info!(?run, "embed-only measured");
    Ok((run, vectors))
}

fn with_vectors(
    version: &PipelineVersion,
    chunks: Vec<Vec<Chunk>>,
    vectors: Vec<Vec<f32>>,
) -> Vec<Vec<IndexedChunk>> {
    let mut vectors = vectors.into_iter();
    chunks
        .into_iter()
        .map(|document| {
            document
                .into_iter()
                .map(|chunk| IndexedChunk {
                    content_hash: docpipe_core::ContentHash::of(chunk.text.as_bytes()),
                    chunk,
                    vector: vectors.next().unwrap_or_default(),
                    pipeline_version: version.clone(),
                    source: "inline".into(),
                })
                .collect()
        })
        .collect()
}

async fn store_writes(
    config: &PipelineConfig,
    scratch: &Path,
    documents: &[Vec<IndexedChunk>],
) -> Result<(f64, f64), BenchError> {
    let chunks: usize = documents.iter().map(Vec::len).sum();
    let milvus = MilvusStore::connect(
        &config.milvus.url,
        &format!("{}_stores", config.milvus.collection),
        384,
    )
    .await
    .map_err(failed("connecting to Milvus"))?;
    let bm25 = Bm25Store::open(&scratch.join("stores-index")).map_err(failed("opening tantivy"))?;
    let mut rates = Vec::new();
    for store in [&milvus as &dyn ChunkStore, &bm25] {
        let started = Instant::now();
        for (index, document) in documents.iter().enumerate() {
            store
                .replace_document(&tenant(), &document_id(index), document)
                .await
                .map_err(failed("writing a store"))?;
        }
        rates.push(chunks as f64 / started.elapsed().as_secs_f64());
    }
    milvus
        .drop_collection()
        .await
        .map_err(failed("dropping the bench collection"))?;
    Ok((rates[0], rates[1]))
}

/// Publishes the corpus through RabbitMQ to an in-process worker and times
/// it until the last document's event.
async fn end_to_end(
    config: &PipelineConfig,
    paths: &[PathBuf],
) -> Result<(f64, Option<f64>), BenchError> {
    let generations = Arc::new(
        Generations::open(config, no_wrapping())
            .await
            .map_err(failed("assembling the pipeline"))?,
    );
    let broker = Broker::connect(&config.queue, &config.retry)
        .await
        .map_err(failed("connecting to RabbitMQ"))?;
    let events = broker
        .subscribe_events()
        .await
        .map_err(failed("subscribing to events"))?;
    let publisher = broker
        .publisher()
        .await
        .map_err(failed("opening a publisher"))?;
    reset_peak_rss();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(generations, config);
    let running = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
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
    futures::pin_mut!(events);
    let mut remaining = paths.len();
    let waited = tokio::time::timeout(Duration::from_secs(3600), async {
        while remaining > 0 {
            match events.next().await {
                Some(DocumentEvent::Failed { reason, .. }) => return Err(reason),
                Some(_) => remaining -= 1,
                None => return Err("the event stream closed".to_owned()),
            }
        }
        Ok(())
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    let _ = stop.send(());
    let _ = running.await;
    broker
        .delete_topology()
        .await
        .map_err(failed("removing bench queues"))?;
    broker.close().await;
    remove_family(config)
        .await
        .map_err(failed("dropping the bench collection"))?;
    waited
        .map_err(|_| failed("ingesting end to end")("timed out after an hour"))?
        .map_err(failed("ingesting end to end"))?;
    Ok((seconds, peak))
}

/// Resets the kernel's peak-RSS counter (VmHWM) for this process.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl BenchReport {
    /// The report as a table for terminals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "docpipe bench: {} documents ({:.1} MB, {} chunks), {} CPUs, {}\n\n",
            self.documents,
            self.corpus_bytes as f64 / 1e6,
            self.chunks,
            self.cpus,
            self.isa
        );
        out.push_str(&format!("{:<34} {:>12}\n", "stage", "rate"));
        out.push_str(&format!(
            "{:<34} {:>9.2} MB/s\n",
            "parse", self.parse_mb_per_s
        ));
        out.push_str(&format!(
            "{:<34} {:>9.0} chunks/s\n",
            "chunk", self.chunk_per_s
        ));
        for run in &self.embed {
            out.push_str(&format!(
                "{:<34} {:>9.1} chunks/s  {:>8.0} tokens/s\n",
                format!("embed only, {}, {} thread(s)", run.model, run.threads),
                run.chunks_per_s,
                run.tokens_per_s
            ));
        }
        out.push_str(&format!(
            "{:<34} {:>9.0} chunks/s\n",
            "write Milvus", self.milvus_chunks_per_s
        ));
        out.push_str(&format!(
            "{:<34} {:>9.0} chunks/s\n",
            "write tantivy", self.tantivy_chunks_per_s
        ));
        out.push_str(&format!(
            "{:<34} {:>9.1} chunks/s  {:>8.2} documents/s\n",
            "end to end through RabbitMQ",
            self.end_to_end_chunks_per_s,
            self.end_to_end_documents_per_s
        ));
        out.push_str(&format!(
            "\nratio end-to-end / embed-only (fp32, all threads): {:.2}  (target >= 0.90)\n",
            self.end_to_end_vs_embed_only
        ));
        if let Some(ratio) = self.int8_vs_fp32 {
            out.push_str(&format!(
                "ratio int8 / fp32 embed-only (all threads):        {ratio:.2}  (target >= 1.40)\n"
            ));
        }
        if let Some(peak) = self.peak_rss_mib {
            out.push_str(&format!("peak RSS while ingesting end to end:               {peak:.0} MiB  (target < 1024)\n"));
        }
        out.push_str(&format!(
            "tracing off: spans cost {:.2} µs per document =    {:.5} % of its end-to-end time\n",
            self.tracing_us_per_document,
            self.tracing_share_of_end_to_end * 100.0
        ));
        out
    }
}
