//! Pipeline definitions: the TOML files under `pipelines/`.
//!
//! A pipeline file says what is done to every document (chunking, model,
//! limits) and where results go (collection and index names, queues).
//! Connection URLs can be overridden from the environment so one file serves
//! every deployment: `DOCPIPE_AMQP_URL`, `DOCPIPE_MILVUS_URL`,
//! `DOCPIPE_MILVUS_COLLECTION`, `DOCPIPE_INDEX_BACKEND`, `DOCPIPE_PARSED_URL`, `DOCPIPE_PARSED_ENDPOINT`, `DOCPIPE_MODEL_DIR`, `DOCPIPE_INDEX_DIR`, `DOCPIPE_ALLOWED_ROOTS`
//! (`:`-separated) and `DOCPIPE_METRICS_ADDR`. Relative paths are relative to the working directory.

use crate::fusion::SearchConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a pipeline file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid pipeline definition.
    #[error("invalid pipeline file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser or a check.
        message: String,
    },
}

/// A whole pipeline definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// A short name, part of the pipeline version.
    pub name: String,
    /// How documents are split.
    pub chunking: ChunkingConfig,
    /// The embedding model.
    pub model: ModelConfig,
    /// The dense-vector store.
    pub milvus: MilvusConfig,
    /// The BM25 store.
    pub bm25: Bm25Config,
    /// RabbitMQ names and consumer settings.
    pub queue: QueueConfig,
    /// Where documents may be read from.
    pub sources: SourcesConfig,
    /// Bounds on what one document may cost.
    pub limits: LimitsConfig,
    /// What happens to transient failures.
    pub retry: RetryConfig,
    /// Worker process behaviour.
    pub worker: WorkerConfig,
    /// Where parsed copies of documents are kept.
    #[serde(default)]
    pub parsed: ParsedConfig,
    /// Which index backend holds the chunks.
    #[serde(default)]
    pub index: IndexConfig,
    /// How hybrid search fuses its rankings.
    #[serde(default)]
    pub search: SearchConfig,
    /// How documents are read.
    #[serde(default)]
    pub parse: ParseConfig,
}

/// How documents are read. Not part of the pipeline version: a re-index
/// re-chunks the parsed copies, and documents are parsed again only when
/// they are ingested again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseConfig {
    /// The PDF text extractor.
    #[serde(default)]
    pub pdf_engine: PdfEngineKind,
    /// Whether PDF pages without a text layer (scans) are read by OCR
    /// (Tesseract); needs the `pdfium` engine, which renders them.
    #[serde(default)]
    pub ocr: bool,
    /// Tesseract's languages, joined by `+` (`eng`, `eng+deu`).
    #[serde(default = "default_ocr_languages")]
    pub ocr_languages: String,
    /// Longest OCR of one page, in seconds; a slower page is skipped.
    #[serde(default = "default_ocr_page_timeout_secs")]
    pub ocr_page_timeout_secs: u64,
}

impl Default for ParseConfig {
    fn default() -> Self {
        Self {
            pdf_engine: PdfEngineKind::default(),
            ocr: false,
            ocr_languages: default_ocr_languages(),
            ocr_page_timeout_secs: default_ocr_page_timeout_secs(),
        }
    }
}

fn default_ocr_languages() -> String {
    "eng".into()
}

fn default_ocr_page_timeout_secs() -> u64 {
    30
}

/// The PDF text extractors docpipe can use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfEngineKind {
    /// PDFium, Chrome's PDF engine (`libpdfium.so`, loaded at run time):
    /// fonts, positions and reading order.
    #[default]
    Pdfium,
    /// pdf-extract, pure Rust: plain text per page, headings guessed from
    /// line shapes. Needs no shared library.
    PdfExtract,
}

impl PdfEngineKind {
    /// The engine's name, as the pipeline file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdfium => "pdfium",
            Self::PdfExtract => "pdf-extract",
        }
    }
}

/// Which index backend holds the chunks, BM25 and the generation catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// `embedded` (the default) or `milvus`.
    #[serde(default)]
    pub backend: IndexBackend,
}

/// Where the BM25 index and the generation catalog live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexBackend {
    /// Dense vectors in Milvus, BM25 in a tantivy index and the catalog in
    /// `bm25.index_dir` on the worker's disk: one machine, any Milvus from 2.3.
    #[default]
    Embedded,
    /// Everything in Milvus 2.5+ (full-text search with a BM25 function,
    /// hybrid search on the server, the catalog in a collection): workers
    /// and searchers keep no state and run on any number of machines.
    Milvus,
}

impl IndexBackend {
    /// The backend's name, as the pipeline file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Milvus => "milvus",
        }
    }
}

/// Where parsed copies are kept: re-indexes start from them, so every
/// process that may run one (or index a document) must reach them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParsedConfig {
    /// A directory, or `s3://bucket/prefix` in S3-compatible storage
    /// (credentials from the standard AWS environment variables). Absent:
    /// `<bm25.index_dir>/parsed`, on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The endpoint of an S3-compatible store other than AWS (MinIO,
    /// SeaweedFS), e.g. `http://127.0.0.1:18333`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The store's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Chunking settings. Changing any of them changes the pipeline version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Largest chunk, in model tokens.
    pub max_tokens: usize,
    /// Tokens shared by consecutive chunks.
    pub overlap_tokens: usize,
    /// Prefix the text sent to the embedder with the title and heading path.
    pub embed_context: bool,
}

/// Embedding model settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A directory holding `model.onnx`, `tokenizer.json` and `docpipe-model.toml`.
    pub dir: PathBuf,
    /// Most texts per ONNX Runtime call.
    pub batch_size: usize,
    /// Most padded tokens (texts × longest text) per ONNX Runtime call:
    /// batches are formed by this budget, across documents, from texts of
    /// similar length.
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: usize,
    /// How long the worker's embedding executor waits for more texts to
    /// fill a batch before it runs a partial one, in milliseconds.
    #[serde(default = "default_batch_deadline_ms")]
    pub batch_deadline_ms: u64,
    /// ONNX Runtime threads a worker uses; 0 means one per core.
    #[serde(default)]
    pub intra_threads: usize,
    /// ONNX Runtime sessions a worker runs batches on side by side, sharing
    /// `intra_threads` between them; 0 means one single-threaded session
    /// per thread, which keeps the cores busy when other work preempts one.
    #[serde(default)]
    pub sessions: usize,
    /// ONNX Runtime threads of the one session that embeds search queries
    /// (`serve`, `search`, `eval`); 0 means one per core. One spends the
    /// least CPU per query (a session's threads meet at every operator,
    /// and queries batch together anyway) where one core keeps up with
    /// the queries: the int8 model's on two cores, not the fp32 model's.
    #[serde(default)]
    pub query_threads: usize,
}

impl ModelConfig {
    /// The worker's session layout for `threads` ONNX Runtime threads in
    /// all: (sessions, threads per session).
    pub fn session_layout(&self, threads: usize) -> (usize, usize) {
        let threads = threads.max(1);
        let sessions = match self.sessions {
            0 => threads,
            sessions => sessions.min(threads),
        };
        (sessions, (threads / sessions).max(1))
    }
}

fn default_batch_tokens() -> usize {
    2048
}

fn default_batch_deadline_ms() -> u64 {
    5
}

/// Milvus settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilvusConfig {
    /// gRPC endpoint, e.g. `http://127.0.0.1:19530`.
    pub url: String,
    /// The index family's name: each generation is the collection
    /// `<collection>_<digest>`, and the alias `<collection>` points at the
    /// live one.
    pub collection: String,
    /// How fresh a search's view must be. `bounded` (the default) reads
    /// without waiting for Milvus' time tick: a search may miss writes of the
    /// last few seconds (Milvus' `common.gracefulTime`, 5 s by default).
    /// `strong` sees every acknowledged write, at up to one time tick (about
    /// 200 ms on Milvus 2.3) per search. The worker's own reads of what a
    /// document has in the stores are always strong.
    #[serde(default)]
    pub search_consistency: ReadConsistency,
    /// A CA certificate (PEM) trusted besides the system's for an
    /// `https://` Milvus with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A secrets file whose one line is a token or `user:password`; without
    /// it, `DOCPIPE_MILVUS_TOKEN`, or `DOCPIPE_MILVUS_USER` and
    /// `DOCPIPE_MILVUS_PASSWORD`, sign in (never the pipeline file).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// How fresh a read must be (Milvus consistency levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Every write acknowledged before the read is visible.
    Strong,
    /// Writes older than Milvus' graceful time (5 s by default) are visible;
    /// newer ones usually are, without waiting for them.
    #[default]
    Bounded,
    /// The reading client's own writes are visible.
    Session,
    /// Whatever the serving node has; no wait at all.
    Eventually,
}

/// tantivy settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25Config {
    /// Directory of the tantivy index.
    pub index_dir: PathBuf,
    /// While documents are being prepared, a worker commits the index at
    /// most this often, each commit covering every document written since
    /// the last; with none being prepared it commits at once. A document is
    /// acknowledged after the commit that covers it. 0 commits each
    /// document at once.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// What a query's BM25 match in a chunk's document title and heading
    /// path weighs, added to its match in the text: a document-level
    /// signal, since every chunk of a document shares its title. 0 ranks
    /// the text alone. Read at query time; indexes written before docpipe
    /// kept the field rank the text alone until re-indexed.
    #[serde(default = "default_context_boost")]
    pub context_boost: f32,
}

fn default_commit_interval_ms() -> u64 {
    1000
}

fn default_context_boost() -> f32 {
    0.6
}

/// RabbitMQ settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// AMQP URL, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: String,
    /// Direct exchange publishers send ingest requests to.
    pub ingest_exchange: String,
    /// Durable queue workers consume.
    pub ingest_queue: String,
    /// Exchange dead letters are published to.
    pub dead_letter_exchange: String,
    /// Durable queue holding dead letters.
    pub dead_letter_queue: String,
    /// Topic exchange for `document.indexed` / `document.failed` events.
    pub events_exchange: String,
    /// Unacknowledged deliveries a worker holds at once; bounds its memory.
    pub prefetch: u16,
    /// RabbitMQ queue type of the ingest and dead-letter queues.
    pub queue_type: QueueType,
    /// A CA certificate (PEM) trusted besides the system's for `amqps://`
    /// brokers with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// RabbitMQ queue types docpipe can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated Raft queues (RabbitMQ 3.8+): survive the loss of a node.
    Quorum,
    /// Classic durable queues: for brokers without quorum queues.
    Classic,
}

impl QueueType {
    /// The `x-queue-type` argument value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }
}

impl QueueConfig {
    /// The direct exchange routing failed deliveries to their retry queue.
    pub fn retry_exchange(&self) -> String {
        format!("{}.retry", self.ingest_exchange)
    }

    /// The queue of bulk work (backfills, re-indexes): workers take uploads
    /// from `ingest_queue` first and bulk work only when no upload waits.
    pub fn bulk_queue(&self) -> String {
        format!("{}.bulk", self.ingest_queue)
    }

    /// The delay queue holding deliveries before attempt `attempt + 1`.
    pub fn retry_queue(&self, attempt: u32) -> String {
        format!("{}.retry.{attempt}", self.ingest_queue)
    }
}

/// Retries of transient failures: a few in-process retries with backoff,
/// then delay queues with growing delays, then the dead-letter queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// In-process retries of a failing store write or source read, with
    /// exponential backoff and jitter, before the delivery counts as failed.
    pub in_process_retries: usize,
    /// Deliveries of a message before a transient failure dead-letters it.
    pub max_attempts: u32,
    /// Wait before the second delivery; doubles for each later one.
    pub first_delay_ms: u64,
}

impl RetryConfig {
    /// The wait before attempt `attempt + 1`, after `attempt` failed deliveries.
    pub fn delay_after(&self, attempt: u32) -> std::time::Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        std::time::Duration::from_millis(self.first_delay_ms.saturating_mul(1 << doublings))
    }
}

/// Worker process behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// On SIGTERM, how long in-flight documents may take to finish before
    /// the worker exits anyway (their deliveries are then redelivered).
    pub shutdown_timeout_secs: u64,
    /// Longest wait between attempts to reconnect to the broker.
    pub reconnect_max_delay_secs: u64,
    /// How long a starting worker waits for Milvus to become available
    /// (it often starts beside it) before it gives up with the error.
    #[serde(default = "default_startup_timeout_secs")]
    pub startup_timeout_secs: u64,
    /// Address of `/metrics`, `/healthz` and `/readyz` (port 0 picks a free
    /// port); absent: not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Of the deliveries in flight (`queue.prefetch`), how many documents
    /// are parsed, chunked and embedded at once; the others wait for a turn
    /// holding only their bytes, or wait on the stores holding their vectors.
    /// Fewer than `prefetch` keeps the embedder fed while some documents
    /// wait on the stores, without more texts queued at the embedder.
    #[serde(default = "default_preparing_documents")]
    pub preparing_documents: usize,
}

fn default_startup_timeout_secs() -> u64 {
    120
}

fn default_preparing_documents() -> usize {
    16
}

/// Where documents may come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// `file://` sources must resolve (after following symlinks) under one of these.
    pub allowed_roots: Vec<PathBuf>,
    /// Largest inline (base64) document, in decoded bytes.
    pub max_inline_bytes: u64,
    /// S3-compatible object storage that `s3://` sources may come from;
    /// without it, `s3` sources are refused.
    #[serde(default)]
    pub s3: Option<S3SourcesConfig>,
    /// Web servers that `https://` sources may come from; without it,
    /// `https` sources are refused.
    #[serde(default)]
    pub https: Option<HttpsSourcesConfig>,
}

/// Where `https://` sources may come from, and how they are fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSourcesConfig {
    /// Host names sources (and every redirect) may name: `docs.example.org`,
    /// or `*.example.org` for its subdomains.
    pub allowed_hosts: Vec<String>,
    /// Most redirects followed, each checked like the first request.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Longest wait for a connection, in seconds.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Longest download, in seconds.
    #[serde(default = "default_download_timeout_secs")]
    pub timeout_secs: u64,
    /// Whether hosts may resolve to loopback, private, link-local or
    /// other non-public addresses (never, unless the servers are on a
    /// private network on purpose: it is how requests reach a cloud's
    /// metadata service).
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// A CA certificate (PEM) trusted besides the system's, for servers
    /// with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_max_redirects() -> usize {
    3
}

fn default_connect_timeout_secs() -> u64 {
    5
}

fn default_download_timeout_secs() -> u64 {
    60
}

impl HttpsSourcesConfig {
    /// Whether `host` is an allowed host name (case aside).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => host == allowed,
            }
        })
    }
}

/// Where `s3://` sources may come from. Credentials come from a
/// credentials file in the AWS format, when one is named, else from the
/// standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, ...); never from the
/// pipeline file itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SourcesConfig {
    /// Buckets, or buckets with a key prefix (`uploads`,
    /// `shared/incoming/`), that sources may name.
    pub allowed: Vec<String>,
    /// The endpoint of a store other than AWS (MinIO, SeaweedFS), e.g.
    /// `http://127.0.0.1:8333`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region (AWS), or any name the store accepts.
    #[serde(default)]
    pub region: Option<String>,
    /// A secrets file in the AWS shared-credentials format (`[profile]`
    /// sections of `aws_access_key_id` and `aws_secret_access_key`), e.g.
    /// a mounted Kubernetes secret.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// The profile of `credentials_file` to use (`default` unless set).
    #[serde(default)]
    pub profile: Option<String>,
}

impl S3SourcesConfig {
    /// Whether an object `key` of `bucket` is under an allowed bucket or
    /// prefix.
    pub fn allows(&self, bucket: &str, key: &str) -> bool {
        self.allowed.iter().any(|allowed| {
            let (allowed_bucket, prefix) = allowed.split_once('/').unwrap_or((allowed, ""));
            allowed_bucket == bucket && key.starts_with(prefix)
        })
    }
}

/// Bounds on what one document may cost; exceeding one is a permanent failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest document, in bytes.
    pub max_document_bytes: u64,
    /// Most PDF pages.
    pub max_pdf_pages: u32,
    /// Deepest HTML element nesting.
    pub max_html_depth: usize,
    /// Longest parse, in seconds.
    pub parse_timeout_secs: u64,
    /// Most chunks per document.
    pub max_chunks_per_document: usize,
    /// Most extracted text per document, in bytes.
    pub max_text_bytes: usize,
    /// Most bytes unpacked from a zip container (Office, OpenDocument,
    /// EPUB), all entries together.
    #[serde(default = "default_max_unpacked_bytes")]
    pub max_unpacked_bytes: u64,
    /// Most entries in a zip container.
    #[serde(default = "default_max_archive_entries")]
    pub max_archive_entries: usize,
    /// Highest ratio of an entry's unpacked to packed size, checked past
    /// the first MiB of the entry (a zip bomb packs gigabytes 1000 to 1).
    #[serde(default = "default_max_compression_ratio")]
    pub max_compression_ratio: u64,
    /// Most cells read from one spreadsheet, all sheets together.
    #[serde(default = "default_max_sheet_cells")]
    pub max_sheet_cells: usize,
}

fn default_max_unpacked_bytes() -> u64 {
    256 << 20
}

fn default_max_archive_entries() -> usize {
    10_000
}

fn default_max_compression_ratio() -> u64 {
    100
}

fn default_max_sheet_cells() -> usize {
    1_000_000
}

/// `value`, the value of the environment variable `name`, as one of the
/// `choices` it names.
fn one_of<T: Copy>(name: &str, value: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(label, _)| *label == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let labels: Vec<String> = choices
                .iter()
                .map(|(label, _)| format!("{label:?}"))
                .collect();
            format!("{name} is {value:?}; use {}", labels.join(" or "))
        })
}

impl PipelineConfig {
    /// Reads a pipeline file and applies environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        config
            .apply_env_overrides()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                message,
            })?;
        Ok(config)
    }

    /// Parses and checks a pipeline definition (no environment overrides).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|error| error.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let parse = &self.parse;
        if parse.ocr && parse.pdf_engine != PdfEngineKind::Pdfium {
            return Err(
                "parse.ocr needs parse.pdf_engine = \"pdfium\", which renders the pages".into(),
            );
        }
        let language = |code: &str| {
            !code.is_empty() && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !parse.ocr_languages.split('+').all(language) {
            return Err(format!(
                "parse.ocr_languages is {:?}; use Tesseract's codes joined by +, e.g. \"eng+deu\"",
                parse.ocr_languages
            ));
        }
        if parse.ocr_page_timeout_secs == 0 {
            return Err("parse.ocr_page_timeout_secs must be at least 1".into());
        }
        let chunking = &self.chunking;
        if chunking.max_tokens < 16 {
            return Err(format!(
                "chunking.max_tokens is {}; use at least 16",
                chunking.max_tokens
            ));
        }
        if chunking.overlap_tokens >= chunking.max_tokens {
            return Err(format!(
                "chunking.overlap_tokens ({}) must be smaller than chunking.max_tokens ({})",
                chunking.overlap_tokens, chunking.max_tokens
            ));
        }
        if self.model.batch_size == 0 {
            return Err("model.batch_size must be at least 1".into());
        }
        if self.model.batch_tokens == 0 {
            return Err("model.batch_tokens must be at least 1".into());
        }
        if self.queue.prefetch == 0 {
            return Err("queue.prefetch must be at least 1 (0 would mean unbounded)".into());
        }
        if self.worker.preparing_documents == 0 {
            return Err("worker.preparing_documents must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        if self.sources.allowed_roots.is_empty() {
            return Err("sources.allowed_roots must name at least one directory".into());
        }
        crate::fusion::non_negative(
            "bm25.context_boost",
            self.bm25.context_boost,
            "0 ranks the text alone",
        )?;
        self.search.check()
    }

    fn apply_env_overrides(&mut self) -> Result<(), String> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        if let Some(url) = var("DOCPIPE_AMQP_URL") {
            self.queue.url = url;
        }
        if let Some(url) = var("DOCPIPE_MILVUS_URL") {
            self.milvus.url = url;
        }
        if let Some(collection) = var("DOCPIPE_MILVUS_COLLECTION") {
            self.milvus.collection = collection;
        }
        if let Some(dir) = var("DOCPIPE_MODEL_DIR") {
            self.model.dir = dir.into();
        }
        if let Some(dir) = var("DOCPIPE_INDEX_DIR") {
            self.bm25.index_dir = dir.into();
        }
        if let Some(backend) = var("DOCPIPE_INDEX_BACKEND") {
            self.index.backend = one_of(
                "DOCPIPE_INDEX_BACKEND",
                &backend,
                &[
                    ("embedded", IndexBackend::Embedded),
                    ("milvus", IndexBackend::Milvus),
                ],
            )?;
        }
        if let Some(engine) = var("DOCPIPE_PDF_ENGINE") {
            self.parse.pdf_engine = one_of(
                "DOCPIPE_PDF_ENGINE",
                &engine,
                &[
                    ("pdfium", PdfEngineKind::Pdfium),
                    ("pdf-extract", PdfEngineKind::PdfExtract),
                ],
            )?;
        }
        if let Some(url) = var("DOCPIPE_PARSED_URL") {
            self.parsed.url = Some(url);
        }
        if let Some(endpoint) = var("DOCPIPE_PARSED_ENDPOINT") {
            self.parsed.endpoint = Some(endpoint);
        }
        if let Some(roots) = var("DOCPIPE_ALLOWED_ROOTS") {
            self.sources.allowed_roots = std::env::split_paths(&roots).collect();
        }
        if let Some(address) = var("DOCPIPE_METRICS_ADDR") {
            let address = address.parse().map_err(|error| {
                format!("DOCPIPE_METRICS_ADDR is {address:?} ({error}); use host:port, e.g. 0.0.0.0:9464")
            })?;
            self.worker.metrics_addr = Some(address);
        }
        Ok(())
    }

    /// The definition as TOML (environment overrides included).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a pipeline definition always serializes")
    }

    /// The bytes of every setting that changes chunk boundaries, for the
    /// pipeline version (the model's identity is added by the embedder).
    pub fn chunking_fingerprint(&self) -> Vec<u8> {
        let chunking = &self.chunking;
        format!(
            "max_tokens={};overlap_tokens={};embed_context={}",
            chunking.max_tokens, chunking.overlap_tokens, chunking.embed_context
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_sources_are_allowed_by_bucket_or_by_prefix() {
        let s3 = S3SourcesConfig {
            allowed: vec!["uploads".into(), "shared/incoming/".into()],
            ..S3SourcesConfig::default()
        };
        assert!(s3.allows("uploads", "2024/report.pdf"));
        assert!(s3.allows("shared", "incoming/a.docx"));
        assert!(!s3.allows("shared", "private/a.docx"));
        assert!(!s3.allows("uploads-archive", "a.pdf"));
    }

    const DEFAULT: &str = include_str!("../../../pipelines/default.toml");

    #[test]
    fn the_shipped_default_pipeline_is_valid() {
        let config = PipelineConfig::from_toml(DEFAULT).unwrap();
        assert_eq!(config.name, "default");
        assert!(config.chunking.overlap_tokens < config.chunking.max_tokens);
    }

    /// `docpipe --pipeline pipelines/int8.toml reindex` builds the int8
    /// generation in the default pipeline's index family, so both files
    /// must name the same family.
    #[test]
    fn the_shipped_int8_pipeline_is_another_generation_of_the_default_family() {
        let int8 = PipelineConfig::from_toml(include_str!("../../../pipelines/int8.toml")).unwrap();
        let default = PipelineConfig::from_toml(DEFAULT).unwrap();
        assert_ne!(int8.model.dir, default.model.dir);
        assert_eq!(int8.milvus.collection, default.milvus.collection);
        assert_eq!(int8.bm25.index_dir, default.bm25.index_dir);
    }

    #[test]
    fn searches_read_with_bounded_consistency_unless_told_otherwise() {
        let config = PipelineConfig::from_toml(DEFAULT).unwrap();
        assert_eq!(config.milvus.search_consistency, ReadConsistency::Bounded);
        let unset = DEFAULT.replace("search_consistency = \"bounded\"", "");
        let config = PipelineConfig::from_toml(&unset).unwrap();
        assert_eq!(config.milvus.search_consistency, ReadConsistency::Bounded);
        let strong = DEFAULT.replace(
            "search_consistency = \"bounded\"",
            "search_consistency = \"strong\"",
        );
        assert_ne!(strong, DEFAULT);
        let config = PipelineConfig::from_toml(&strong).unwrap();
        assert_eq!(config.milvus.search_consistency, ReadConsistency::Strong);
    }

    /// Queries of the int8 model are embedded on one thread (one core keeps
    /// up with them at the least CPU); the fp32 model's, and those of a
    /// pipeline file that does not say, on every core.
    #[test]
    fn the_int8_pipeline_embeds_queries_on_one_thread_and_others_on_every_core() {
        let int8 = PipelineConfig::from_toml(include_str!("../../../pipelines/int8.toml")).unwrap();
        assert_eq!(int8.model.query_threads, 1);
        let default = PipelineConfig::from_toml(DEFAULT).unwrap();
        assert_eq!(default.model.query_threads, 0);
        let unset = DEFAULT.replace("query_threads = 0", "");
        assert_ne!(unset, DEFAULT);
        let config = PipelineConfig::from_toml(&unset).unwrap();
        assert_eq!(config.model.query_threads, 0);
    }

    #[test]
    fn overlap_must_be_smaller_than_chunks() {
        let text = DEFAULT.replace("overlap_tokens = 32", "overlap_tokens = 4000");
        let error = PipelineConfig::from_toml(&text).unwrap_err();
        assert!(error.contains("overlap_tokens"), "{error}");
    }

    #[test]
    fn ocr_needs_the_engine_that_renders_pages_and_tesseract_language_codes() {
        let ocr = DEFAULT.replace("ocr = false", "ocr = true");
        assert!(PipelineConfig::from_toml(&ocr).unwrap().parse.ocr);
        let extract = ocr.replace("pdf_engine = \"pdfium\"", "pdf_engine = \"pdf-extract\"");
        let error = PipelineConfig::from_toml(&extract).unwrap_err();
        assert!(error.contains("parse.ocr needs"), "{error}");
        let languages = ocr.replace("ocr_languages = \"eng\"", "ocr_languages = \"eng; rm\"");
        let error = PipelineConfig::from_toml(&languages).unwrap_err();
        assert!(error.contains("parse.ocr_languages"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = DEFAULT.replace("[chunking]", "[chunking]\nmax_tokenz = 3");
        let error = PipelineConfig::from_toml(&text).unwrap_err();
        assert!(error.contains("max_tokenz"), "{error}");
    }
}
