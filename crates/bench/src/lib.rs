//! `docpipe bench`: measures every stage and the whole pipeline in one run
//! on a generated corpus, and reports the ratios that matter. Absolute
//! numbers vary between runs on shared machines; the ratios are what we
//! track.

#![warn(missing_docs)]

mod corpus;
mod formats;
mod process;
mod serve;
mod workers;

pub use corpus::text_pdf;
pub use formats::FormatThroughput;
pub use serve::{LoadPhase, ServeBenchOptions, ServeReport, serve_latency};
pub use workers::{WorkersReport, WorkersRun, compare_workers};

use docpipe_bm25::Bm25Store;
use docpipe_chunk::Chunker;
use docpipe_core::event::now_unix_ms;
use docpipe_core::{
    Chunk, ChunkStore, DocumentEvent, DocumentId, IndexedChunk, IngestRequest, ParsedDocument,
    PipelineConfig, PipelineVersion, TenantId,
};
use docpipe_embed::{BatchLimits, BatchingEmbedder, Embedder, ModelDir, OnnxEmbedder};
use docpipe_milvus::MilvusStore;
use docpipe_parse::DocumentParser;
use docpipe_pipeline::{Generations, Worker, WorkerSummary, no_wrapping, pipeline_version};
use docpipe_queue::{Broker, Publisher};
use futures::{Stream, StreamExt as _};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Documents in the generated corpus.
    pub documents: usize,
    /// The int8 model directory to compare with the pipeline's model, if any.
    pub int8_model: Option<PathBuf>,
    /// Also ingest a corpus this many times larger end to end, to compare
    /// peak memory (1 or less: skip).
    pub scale: usize,
    /// The command line (program first) of a fresh process that runs
    /// [`memory_run`] for the document count appended to it and prints the
    /// [`Memory`] as JSON: peak memory is compared between fresh processes.
    pub fresh_process: Vec<OsString>,
    /// Fresh processes per corpus size, run alternately (the corpus, then
    /// the larger one, and again); each size's peak is their median.
    pub memory_runs: usize,
    /// Pages of the long PDF published among small documents to measure
    /// whether it stalls them (0: skip).
    pub long_pdf_pages: usize,
    /// End-to-end runs, each between two embed-only passes (at least 1).
    pub rounds: usize,
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
    /// ONNX Runtime sessions, side by side.
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    /// Chunks embedded per second.
    pub chunks_per_s: f64,
    /// Model tokens (with special tokens, truncated as embedded) per second.
    pub tokens_per_s: f64,
    /// Share of the token positions computed that were padding.
    pub padding: f64,
}

/// One end-to-end run through RabbitMQ, against the embed-only passes of
/// the same model in the worker's layout right before and right after it:
/// load from elsewhere on a shared machine drifts over minutes, and a pass
/// minutes away measures the machine at another time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Round {
    /// Chunks indexed per second, publish of the first to the last event.
    pub chunks_per_s: f64,
    /// Documents indexed per second.
    pub documents_per_s: f64,
    /// Chunks per second from the first tenth of the documents indexed to
    /// the last tenth.
    pub sustained_chunks_per_s: f64,
    /// Share of the token positions the worker's model computed that were padding.
    pub padding: f64,
    /// The mean of the embed-only passes right before and right after.
    pub embed_only_chunks_per_s: f64,
    /// `chunks_per_s` over `embed_only_chunks_per_s`.
    pub vs_embed_only: f64,
    /// `sustained_chunks_per_s` over `embed_only_chunks_per_s`.
    pub sustained_vs_embed_only: f64,
}

impl EmbedRun {
    /// "2 thread(s)", "2 sessions x 1 thread(s)".
    fn layout(&self) -> String {
        match self.sessions {
            1 => format!("{} thread(s)", self.threads),
            sessions => format!("{sessions} sessions x {} thread(s)", self.threads),
        }
    }
}

/// Counts model work between two points: tokens, and positions computed
/// with padding (from the process's metrics).
struct ModelWork {
    tokens: u64,
    padded: u64,
}

impl ModelWork {
    fn now() -> Self {
        let metrics = docpipe_telemetry::metrics::metrics();
        Self {
            tokens: metrics.tokens.get(),
            padded: metrics.padded_tokens.get(),
        }
    }

    /// The share of positions computed since `self` that were padding.
    fn padding_since(&self) -> f64 {
        let now = Self::now();
        let padded = (now.padded - self.padded) as f64;
        1.0 - (now.tokens - self.tokens) as f64 / padded.max(1.0)
    }
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
    /// Parse throughput of one sample document per format.
    pub formats: Vec<FormatThroughput>,
    /// Pages OCR reads per second (none when Tesseract is not installed).
    pub ocr_pages_per_s: Option<f64>,
    /// Chunking throughput, chunks per second.
    pub chunk_per_s: f64,
    /// Embed-only throughput per model and thread count.
    pub embed: Vec<EmbedRun>,
    /// Embed-only passes of the pipeline's model in the worker's layout,
    /// one before the first end-to-end round and one after each.
    pub brackets: Vec<EmbedRun>,
    /// The end-to-end runs, each against the passes right before and after it.
    pub rounds: Vec<Round>,
    /// Milvus write throughput, chunks per second.
    pub milvus_chunks_per_s: f64,
    /// tantivy write throughput, chunks per second.
    pub tantivy_chunks_per_s: f64,
    /// End to end through RabbitMQ: the median round's chunks per second.
    pub end_to_end_chunks_per_s: f64,
    /// The median of the rounds' end-to-end over embed-only chunks/s: the
    /// number the target is checked on.
    pub end_to_end_vs_embed_only: f64,
    /// The same, from the first tenth of the documents indexed to the last
    /// tenth: without the pipeline filling up and draining.
    pub sustained_vs_embed_only: f64,
    /// The median end-to-end rate over the fastest embed-only pass on every
    /// thread, in any layout, at any time of the run: a bound from below.
    pub end_to_end_vs_fastest_embed_only: f64,
    /// int8 over fp32 embed-only chunks/s (all threads), when int8 was measured.
    pub int8_vs_fp32: Option<f64>,
    /// This process's memory while ingesting end to end (the round with
    /// the highest peak).
    pub rss: Memory,
    /// Documents in the larger corpus ingested to compare peak memory.
    pub scaled_documents: Option<usize>,
    /// Fresh processes' memory while ingesting the corpus, in the order run.
    pub fresh_rss: Vec<Memory>,
    /// Fresh processes' memory while ingesting the larger corpus, in the
    /// order run (alternating with `fresh_rss`).
    pub scaled_rss: Vec<Memory>,
    /// The median peak of `scaled_rss` over the median peak of
    /// `fresh_rss`: the number the target is checked on.
    pub scaled_vs_fresh_peak: Option<f64>,
    /// Whether a long PDF stalls the small documents published after it.
    pub stall: Option<StallReport>,
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
    let base = config;
    let config = unique_config(base, scratch.path());

    let (documents, corpus_bytes, parse_seconds) = parse_all(&config, &paths)?;
    let formats = formats::parse_throughput(&config)?;
    let ocr_pages_per_s = formats::ocr_pages_per_s(&config)?;
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
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    // One thread; then every thread in one session, and in one session per
    // thread (the worker's default layout).
    let mut layouts = vec![(1, 1), (1, cpus)];
    if cpus > 1 {
        layouts.push((cpus, 1));
    }
    for (label, dir) in [("fp32", Some(config.model.dir.clone())), ("int8", int8)] {
        let Some(dir) = dir else { continue };
        for &(sessions, threads) in &layouts {
            let shape = EmbedShape {
                label,
                sessions,
                threads,
            };
            let (run, produced) = embed_only(&config, &dir, shape, &texts, tokens)?;
            if label == "fp32" && vectors.is_empty() {
                vectors = produced;
            }
            embed.push(run);
        }
    }
    let indexed = with_vectors(&version, chunks.clone(), vectors);
    let (milvus_chunks_per_s, tantivy_chunks_per_s) =
        store_writes(&config, scratch.path(), &indexed).await?;

    let worker_layout = worker_layout(&config);
    let bracket = || embed_only(&config, &config.model.dir, worker_layout, &texts, tokens);
    let mut brackets = vec![bracket()?.0];
    let mut rounds = Vec::new();
    let mut rss = None::<Memory>;
    for round in 0..options.rounds.max(1) {
        let rig_dir = scratch.path().join(format!("end-to-end-{round}"));
        let measured = end_to_end(base, &rig_dir, scratch.path(), &paths).await?;
        brackets.push(bracket()?.0);
        let embed_only_chunks_per_s =
            (brackets[round].chunks_per_s + brackets[round + 1].chunks_per_s) / 2.0;
        let chunks_per_s = chunk_count as f64 / measured.seconds;
        rounds.push(Round {
            chunks_per_s,
            documents_per_s: paths.len() as f64 / measured.seconds,
            sustained_chunks_per_s: measured.sustained_chunks_per_s,
            padding: measured.padding,
            embed_only_chunks_per_s,
            vs_embed_only: chunks_per_s / embed_only_chunks_per_s,
            sustained_vs_embed_only: measured.sustained_chunks_per_s / embed_only_chunks_per_s,
        });
        let memory = Memory::of(&measured);
        if rss.is_none_or(|highest| highest.peak_mib < memory.peak_mib) {
            rss = Some(memory);
        }
    }
    // Memory is compared between fresh processes: in this one, the
    // allocator keeps some of what each earlier measurement freed, so every
    // run would start higher than the one before.
    // One run of each is a single sample of a peak that moves by a few
    // percent from run to run, so each size is run several times,
    // alternately, so that load drifting on a shared machine reaches both.
    let (mut fresh_rss, mut scaled_rss) = (Vec::new(), Vec::new());
    let scaled_documents = match options.scale {
        0 | 1 => None,
        scale => {
            let documents = options.documents * scale;
            for _ in 0..options.memory_runs.max(1) {
                fresh_rss.push(
                    memory_in_fresh_process(&options.fresh_process, options.documents).await?,
                );
                scaled_rss.push(memory_in_fresh_process(&options.fresh_process, documents).await?);
            }
            Some(documents)
        }
    };
    let median_peak = |runs: &[Memory]| median(runs.iter().filter_map(|run| run.peak_mib));
    let scaled_vs_fresh_peak =
        scaled_documents.map(|_| median_peak(&scaled_rss) / median_peak(&fresh_rss));
    let stall = match options.long_pdf_pages {
        0 => None,
        pages => {
            let small: Vec<PathBuf> = paths
                .iter()
                .filter(|path| path.extension().is_some_and(|ext| ext == "html"))
                .take(12)
                .cloned()
                .collect();
            Some(stall(base, scratch.path(), &small, pages).await?)
        }
    };

    // The best embed-only rate on every thread, whatever the layout.
    let all_threads = |label: &str| {
        embed
            .iter()
            .chain(&brackets)
            .filter(|run| run.model == label && run.sessions * run.threads == cpus)
            .map(|run| run.chunks_per_s)
            .max_by(f64::total_cmp)
    };
    let fp32 = all_threads("fp32").unwrap_or(f64::NAN);
    let end_to_end_chunks_per_s = median(rounds.iter().map(|round| round.chunks_per_s));
    let tracing = span_cost_per_document();
    let end_to_end_seconds_per_document =
        chunk_count as f64 / end_to_end_chunks_per_s / paths.len() as f64;
    let tracing_share_of_end_to_end = tracing.as_secs_f64() / end_to_end_seconds_per_document;
    Ok(BenchReport {
        isa: docpipe_embed::cpu_isa(),
        cpus,
        documents: paths.len(),
        corpus_bytes,
        chunks: chunk_count,
        parse_mb_per_s: corpus_bytes as f64 / 1e6 / parse_seconds,
        formats,
        ocr_pages_per_s,
        chunk_per_s: chunk_count as f64 / chunk_seconds,
        int8_vs_fp32: all_threads("int8").map(|int8| int8 / fp32),
        embed,
        brackets,
        milvus_chunks_per_s,
        tantivy_chunks_per_s,
        end_to_end_chunks_per_s,
        end_to_end_vs_embed_only: median(rounds.iter().map(|round| round.vs_embed_only)),
        sustained_vs_embed_only: median(rounds.iter().map(|round| round.sustained_vs_embed_only)),
        end_to_end_vs_fastest_embed_only: end_to_end_chunks_per_s / fp32,
        rounds,
        rss: rss.expect("at least one round"),
        scaled_documents,
        fresh_rss,
        scaled_rss,
        scaled_vs_fresh_peak,
        stall,
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
    let parser = DocumentParser::for_pipeline(config).map_err(failed("loading the PDF engine"))?;
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

/// The model and session layout of an embed-only run.
#[derive(Clone, Copy)]
struct EmbedShape {
    label: &'static str,
    sessions: usize,
    threads: usize,
}

fn embed_only(
    config: &PipelineConfig,
    dir: &Path,
    shape: EmbedShape,
    texts: &[&str],
    tokens: usize,
) -> Result<(EmbedRun, Vec<Vec<f32>>), BenchError> {
    let model = ModelDir::open(dir).map_err(failed("opening a model"))?;
    let limits = BatchLimits::new(config.model.batch_size, config.model.batch_tokens);
    let mut sessions = (0..shape.sessions)
        .map(|_| OnnxEmbedder::load(&model, limits, shape.threads))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("loading a model"))?;
    let (started, work) = (Instant::now(), ModelWork::now());
    let vectors = if sessions.len() == 1 {
        sessions.remove(0).embed_documents(texts)
    } else {
        // One job of every text, no deadline: the lanes take batches side
        // by side, as fast as they can.
        BatchingEmbedder::start(sessions, 1, Duration::ZERO)
            .and_then(|executor| executor.embed(texts))
            .map(|embedded| embedded.vectors)
    }
    .map_err(failed("embedding"))?;
    let seconds = started.elapsed().as_secs_f64();
    let run = EmbedRun {
        model: shape.label,
        sessions: shape.sessions,
        threads: shape.threads,
        chunks_per_s: texts.len() as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        padding: work.padding_since(),
    };
    tracing::info!(?run, "embed-only measured");
    Ok((run, vectors))
}

/// Embeds `texts` as a worker would (its session layout and batching).
fn embed_with_worker_layout(
    config: &PipelineConfig,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, BenchError> {
    let model = ModelDir::open(&config.model.dir).map_err(failed("opening the model"))?;
    let tokens = count_tokens(&model, texts)?;
    Ok(embed_only(
        config,
        &config.model.dir,
        worker_layout(config),
        texts,
        tokens,
    )?
    .1)
}

/// The worker's session layout of the pipeline's (fp32) model.
fn worker_layout(config: &PipelineConfig) -> EmbedShape {
    let (sessions, threads) = config
        .model
        .session_layout(docpipe_embed::resolve_threads(config.model.intra_threads));
    EmbedShape {
        label: "fp32",
        sessions,
        threads,
    }
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
                    document_version: 0,
                    metadata: Default::default(),
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
    let endpoint = docpipe_milvus::MilvusEndpoint::for_pipeline(&config.milvus)
        .map_err(failed("reading the Milvus settings"))?;
    let milvus = MilvusStore::connect(
        endpoint,
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

/// A worker running in this process, fed through RabbitMQ, on queues, a
/// collection and an index of its own.
struct Rig {
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
    async fn start(base: &PipelineConfig, scratch: &Path, root: &Path) -> Result<Self, BenchError> {
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
    async fn publish(&self, document: DocumentId, path: &Path) -> Result<(), BenchError> {
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
    async fn next_indexed(&mut self) -> Result<(DocumentId, u32, u64), BenchError> {
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
    async fn remove(self) -> Result<(), BenchError> {
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
async fn remove_rig(broker: &Broker, config: &PipelineConfig) -> Result<(), BenchError> {
    broker
        .delete_topology()
        .await
        .map_err(failed("removing bench queues"))?;
    broker.close().await;
    docpipe_index::remove_family(config)
        .await
        .map_err(failed("dropping the bench collections"))
}

/// Publishes `paths` (under `root`) through RabbitMQ to an in-process
/// worker whose resources are named after `rig_dir`, and times it until the
/// last document's event.
async fn end_to_end(
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

/// Ingests a generated corpus of `documents` end to end through RabbitMQ
/// and returns this process's memory meanwhile. The bench runs it in fresh
/// processes (see [`BenchOptions::fresh_process`]).
pub async fn memory_run(config: &PipelineConfig, documents: usize) -> Result<Memory, BenchError> {
    let scratch = tempfile::tempdir().map_err(failed("creating a scratch directory"))?;
    let paths = corpus::write(&scratch.path().join("corpus"), documents)
        .map_err(failed("writing the corpus"))?;
    let measured = end_to_end(
        config,
        &scratch.path().join("end-to-end"),
        scratch.path(),
        &paths,
    )
    .await?;
    Ok(Memory::of(&measured))
}

/// Runs [`memory_run`] for `documents` in a new process started with
/// `command`.
async fn memory_in_fresh_process(
    command: &[OsString],
    documents: usize,
) -> Result<Memory, BenchError> {
    const STAGE: &str = "measuring memory in a fresh process";
    let (program, args) = command
        .split_first()
        .ok_or_else(|| failed(STAGE)("no command to start it with"))?;
    let output = tokio::process::Command::new(program)
        .args(args)
        .arg(documents.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(failed(STAGE))?;
    if !output.status.success() {
        return Err(failed(STAGE)(format!(
            "{} exited with {}",
            program.to_string_lossy(),
            output.status
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(failed(STAGE))
}

/// Resident memory of a process over an end-to-end run, MiB.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// With the worker started (models loaded), before the first document.
    pub at_start_mib: Option<f64>,
    /// The peak while ingesting.
    pub peak_mib: Option<f64>,
}

impl Memory {
    fn of(run: &EndToEnd) -> Self {
        Self {
            at_start_mib: run.rss_at_start_mib,
            peak_mib: run.peak_rss_mib,
        }
    }
}

/// The median of `values` (NaN if there are none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        count if count % 2 == 1 => values[count / 2],
        count => (values[count / 2 - 1] + values[count / 2]) / 2.0,
    }
}

/// Chunks per second between the first and the last tenth of the
/// documents to be indexed (by event time, in ms since the epoch), leaving
/// out the pipeline filling up and draining.
fn sustained_rate(indexed: &mut [(u64, u32)]) -> f64 {
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

/// One end-to-end run.
struct EndToEnd {
    seconds: f64,
    /// Chunks per second once the pipeline is full (see [`sustained_rate`]).
    sustained_chunks_per_s: f64,
    peak_rss_mib: Option<f64>,
    /// Resident memory with the worker started, before the first document.
    rss_at_start_mib: Option<f64>,
    /// Share of the token positions computed that were padding.
    padding: f64,
}

/// Small documents' latency (publish to event) while a long PDF is being
/// indexed, against their latency alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StallReport {
    /// Pages of the long PDF.
    pub long_pdf_pages: usize,
    /// Its chunks.
    pub long_pdf_chunks: u32,
    /// Seconds from its publish to its event.
    pub long_pdf_seconds: f64,
    /// Small documents published while it was indexed, and alone.
    pub small_documents: usize,
    /// Their latency alone: median and 95th percentile, seconds.
    pub alone_p50_s: f64,
    /// See `alone_p50_s`.
    pub alone_p95_s: f64,
    /// Their latency beside the long PDF: median and 95th percentile, seconds.
    pub beside_p50_s: f64,
    /// See `beside_p50_s`.
    pub beside_p95_s: f64,
    /// Small documents indexed before the long PDF was.
    pub finished_before_long_pdf: usize,
}

/// Latencies of small documents, in seconds, and how the long PDF fared.
#[derive(Default)]
struct Latencies {
    small: Vec<f64>,
    finished_before_long: usize,
    long: Option<(f64, u32)>,
}

/// Publishes `small` documents one by one, a quarter second apart (after
/// `long_pdf`, if given), and measures each from publish to event.
async fn latencies(
    rig: &mut Rig,
    label: &str,
    small: &[PathBuf],
    long_pdf: Option<&Path>,
) -> Result<Latencies, BenchError> {
    const SPACING: Duration = Duration::from_millis(250);
    let long_id = DocumentId::new(format!("{label}-long")).expect("a valid id");
    // Latencies run from publish to the worker's event time: events are
    // read only after every document is published.
    let started = now_unix_ms();
    if let Some(pdf) = long_pdf {
        rig.publish(long_id.clone(), pdf).await?;
        // Let it reach the embedder before the small documents arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut published = std::collections::HashMap::new();
    for (index, path) in small.iter().enumerate() {
        let id = DocumentId::new(format!("{label}-{index}")).expect("a valid id");
        rig.publish(id.clone(), path).await?;
        published.insert(id, now_unix_ms());
        tokio::time::sleep(SPACING).await;
    }
    let mut measured = Latencies::default();
    let expected = small.len() + usize::from(long_pdf.is_some());
    let seconds_between = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
    let mut events = Vec::new();
    for _ in 0..expected {
        events.push(rig.next_indexed().await?);
    }
    // In the order the worker indexed them.
    events.sort_by_key(|&(_, _, at)| at);
    for (id, chunks, at) in events {
        if id == long_id {
            measured.long = Some((seconds_between(started, at), chunks));
        } else if let Some(&published) = published.get(&id) {
            measured.small.push(seconds_between(published, at));
            measured.finished_before_long += usize::from(measured.long.is_none());
        }
    }
    Ok(measured)
}

/// Whether a long PDF stalls the documents published after it.
async fn stall(
    config: &PipelineConfig,
    scratch: &Path,
    small: &[PathBuf],
    pages: usize,
) -> Result<StallReport, BenchError> {
    let pdf = corpus::write_long_pdf(&scratch.join("long"), pages)
        .map_err(failed("writing the long PDF"))?;
    let mut rig = Rig::start(config, &scratch.join("stall"), scratch).await?;
    let measured = async {
        let alone = latencies(&mut rig, "alone", small, None).await?;
        let beside = latencies(&mut rig, "beside", small, Some(&pdf)).await?;
        Ok::<_, BenchError>((alone, beside))
    }
    .await;
    rig.remove().await?;
    let (mut alone, mut beside) = measured?;
    let (alone_p50_s, alone_p95_s) = percentiles(&mut alone.small);
    let (beside_p50_s, beside_p95_s) = percentiles(&mut beside.small);
    let (long_pdf_seconds, long_pdf_chunks) = beside.long.unwrap_or((f64::NAN, 0));
    Ok(StallReport {
        long_pdf_pages: pages,
        long_pdf_chunks,
        long_pdf_seconds,
        small_documents: small.len(),
        alone_p50_s,
        alone_p95_s,
        beside_p50_s,
        beside_p95_s,
        finished_before_long_pdf: beside.finished_before_long,
    })
}

/// The median and 95th percentile of `values`.
fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        let rank = (quantile * values.len() as f64).ceil() as usize;
        values
            .get(rank.saturating_sub(1).min(values.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.95))
}

/// Resets the kernel's peak-RSS counter (VmHWM) for this process.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> Option<f64> {
    memory_status("VmHWM:")
}

/// This process's resident memory now, in MiB.
fn rss_mib() -> Option<f64> {
    memory_status("VmRSS:")
}

fn memory_status(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

impl BenchReport {
    /// The report as a table for terminals.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            let _ = writeln!(out, "{label:<52} {value}");
        };
        line(
            "docpipe bench:",
            format!(
                "{} documents ({:.1} MB, {} chunks), {} CPUs, {}",
                self.documents,
                self.corpus_bytes as f64 / 1e6,
                self.chunks,
                self.cpus,
                self.isa
            ),
        );
        line("", String::new());
        line("parse", format!("{:>9.2} MB/s", self.parse_mb_per_s));
        for sample in &self.formats {
            let pages = sample
                .pages_per_s
                .map_or_else(String::new, |rate| format!(" {rate:>8.0} pages/s"));
            line(
                &format!(
                    "  parse {} ({}, {} B)",
                    sample.format, sample.file, sample.bytes
                ),
                format!("{:>9.2} MB/s{pages}", sample.mb_per_s),
            );
        }
        let ocr = self.ocr_pages_per_s.map_or_else(
            || "not measured (Tesseract is not installed)".to_owned(),
            |rate| format!("{rate:>9.2} pages/s"),
        );
        line("  OCR of a scanned page (300 dpi)", ocr);
        line("chunk", format!("{:>9.0} chunks/s", self.chunk_per_s));
        let embed_line = |line: &mut dyn FnMut(&str, String), run: &EmbedRun| {
            line(
                &format!("embed only, {}, {}", run.model, run.layout()),
                format!(
                    "{:>9.1} chunks/s {:>8.0} tokens/s {:>5.1} % padding",
                    run.chunks_per_s,
                    run.tokens_per_s,
                    run.padding * 100.0
                ),
            );
        };
        for run in &self.embed {
            embed_line(&mut line, run);
        }
        line(
            "write Milvus",
            format!("{:>9.0} chunks/s", self.milvus_chunks_per_s),
        );
        line(
            "write tantivy",
            format!("{:>9.0} chunks/s", self.tantivy_chunks_per_s),
        );
        for (number, round) in self.rounds.iter().enumerate() {
            embed_line(&mut line, &self.brackets[number]);
            line(
                &format!("end to end through RabbitMQ, round {}", number + 1),
                format!(
                    "{:>9.1} chunks/s {:>8.2} docs/s   {:>5.1} % padding   {:.2} x the passes around it",
                    round.chunks_per_s,
                    round.documents_per_s,
                    round.padding * 100.0,
                    round.vs_embed_only
                ),
            );
        }
        if let Some(last) = self.brackets.last() {
            embed_line(&mut line, last);
        }
        line("", String::new());
        let ratios = self.rounds.iter().map(|round| round.vs_embed_only);
        let lowest = ratios.clone().min_by(f64::total_cmp).unwrap_or(f64::NAN);
        let highest = ratios.max_by(f64::total_cmp).unwrap_or(f64::NAN);
        line(
            &format!(
                "end to end / embed only, median of {} round(s)",
                self.rounds.len()
            ),
            format!(
                "{:.3}  (target >= 0.90; rounds {lowest:.3} to {highest:.3}; {:.2} once the pipeline is full; {:.2} against the fastest embed-only pass)",
                self.end_to_end_vs_embed_only,
                self.sustained_vs_embed_only,
                self.end_to_end_vs_fastest_embed_only
            ),
        );
        if let Some(ratio) = self.int8_vs_fp32 {
            line(
                "int8 / fp32 embed only (all threads)",
                format!("{ratio:.2}  (target >= 1.40)"),
            );
        }
        let start = |memory: &Memory| memory.at_start_mib.unwrap_or(f64::NAN);
        if let Some(peak) = self.rss.peak_mib {
            line(
                "peak RSS while ingesting end to end",
                format!(
                    "{peak:.0} MiB  (target < 1024; {:.0} MiB before the first document)",
                    start(&self.rss)
                ),
            );
            if let (Some(documents), Some(ratio)) =
                (self.scaled_documents, self.scaled_vs_fresh_peak)
            {
                let peaks = |runs: &[Memory]| {
                    let peaks: Vec<String> = runs
                        .iter()
                        .map(|run| format!("{:.0}", run.peak_mib.unwrap_or(f64::NAN)))
                        .collect();
                    peaks.join(", ")
                };
                let median_start =
                    |runs: &[Memory]| median(runs.iter().filter_map(|run| run.at_start_mib));
                line(
                    &format!("peak RSS, {} then {documents} documents", self.documents),
                    format!(
                        "{ratio:.3} x  (target 0.90 to 1.10; the median peaks of {} fresh processes each, run alternately)",
                        self.fresh_rss.len()
                    ),
                );
                line(
                    "",
                    format!(
                        "peaks {} then {} MiB (from {:.0} and {:.0} MiB before the first document)",
                        peaks(&self.fresh_rss),
                        peaks(&self.scaled_rss),
                        median_start(&self.fresh_rss),
                        median_start(&self.scaled_rss)
                    ),
                );
            }
        }
        if let Some(stall) = &self.stall {
            line(
                &format!("small documents beside a {}-page PDF", stall.long_pdf_pages),
                format!(
                    "latency p50 {:.2} s, p95 {:.2} s (alone: p50 {:.2} s, p95 {:.2} s)",
                    stall.beside_p50_s, stall.beside_p95_s, stall.alone_p50_s, stall.alone_p95_s
                ),
            );
            line(
                "",
                format!(
                    "the PDF: {} chunks in {:.1} s; {} of {} small documents finished before it",
                    stall.long_pdf_chunks,
                    stall.long_pdf_seconds,
                    stall.finished_before_long_pdf,
                    stall.small_documents
                ),
            );
        }
        line(
            "tracing off: spans per document cost",
            format!(
                "{:.2} µs = {:.5} % of its end-to-end time",
                self.tracing_us_per_document,
                self.tracing_share_of_end_to_end * 100.0
            ),
        );
        out
    }
}
