//! `docpipe bench`: measures every stage and the whole pipeline in one run
//! on a generated corpus, and reports the ratios that matter. Absolute
//! numbers vary between runs on shared machines; the ratios are what we
//! track.

#![warn(missing_docs)]

mod corpus;
mod embed;
mod end_to_end;
mod formats;
mod memory;
mod process;
mod random;
mod serve;
mod stall;
mod table;
mod workers;

pub use corpus::text_pdf;
pub use embed::EmbedRun;
pub use formats::FormatThroughput;
pub use memory::{Memory, memory_run};
pub use serve::{LoadPhase, ServeBenchOptions, ServeReport, serve_latency};
pub use stall::StallReport;
pub use workers::{WorkersReport, WorkersRun, compare_workers};

use docpipe_bm25::Bm25Store;
use docpipe_chunk::Chunker;
use docpipe_core::{
    Chunk, ChunkStore, DocumentId, IndexedChunk, ParsedDocument, PipelineConfig, PipelineVersion,
    TenantId,
};
use docpipe_embed::ModelDir;
use docpipe_milvus::MilvusStore;
use docpipe_parse::DocumentParser;
use docpipe_pipeline::pipeline_version;
use embed::{EmbedShape, count_tokens, embed_only, worker_layout};
use end_to_end::end_to_end;
use memory::memory_in_fresh_process;
use stall::stall;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
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
