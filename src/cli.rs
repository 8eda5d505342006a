//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Queue-driven document ingestion for retrieval: RabbitMQ → parse → chunk →
/// embed → Milvus + tantivy, and hybrid search over the result.
#[derive(Debug, Parser)]
#[command(name = "docpipe", version, propagate_version = true)]
pub struct Cli {
    /// The pipeline definition: chunking, model, collection and queue names.
    #[arg(
        long,
        global = true,
        default_value = "pipelines/default.toml",
        env = "DOCPIPE_PIPELINE"
    )]
    pub pipeline: PathBuf,

    /// Log lines on stderr: `human` for terminals, `json` (one object per
    /// line, with trace and span ids) for log collectors.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormatArg::Human,
        env = "DOCPIPE_LOG_FORMAT"
    )]
    pub log_format: LogFormatArg,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Time, level, message and fields, for terminals.
    Human,
    /// One JSON object per line, with trace and span ids.
    Json,
}

impl From<LogFormatArg> for docpipe_telemetry::LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Human => Self::Human,
            LogFormatArg::Json => Self::Json,
        }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume ingest requests and index them until SIGINT/SIGTERM, then stop
    /// consuming, finish in-flight documents and exit.
    Worker,
    /// Publish ingest requests for files, as an upload service would (with
    /// publisher confirms).
    Publish(PublishArgs),
    /// Publish every new or changed document (any format docpipe reads) under a directory as bulk
    /// work (behind uploads), and remove documents whose file is gone;
    /// document id = path relative to DIR without its final extension.
    /// Re-running it after an interruption publishes only the remainder.
    Backfill(BackfillArgs),
    /// Build a new generation of the index with this pipeline file (new
    /// chunking or model) from the live one, while searches keep reading the
    /// live one and uploads go to both; verify it, then switch to it.
    /// Re-running it resumes an interrupted build.
    Reindex(ReindexArgs),
    /// List the index's generations (live, building, previous, retired) with counts.
    Generations(GenerationsArgs),
    /// Switch back to the previous generation.
    Rollback,
    /// Drop previous and retired generations (their Milvus collections,
    /// tantivy indexes and unused parsed copies). Rollback is impossible after.
    Gc(GcArgs),
    /// Show what docpipe reads from a file (title, pages, headings, text)
    /// with the pipeline's parser, without indexing it.
    Parse(ParseArgs),
    /// Search indexed documents.
    Search(SearchArgs),
    /// Evaluate retrieval on a gold set: Recall@1, Recall@k, MRR@k and latency per mode.
    Eval(EvalArgs),
    /// Show queue depths and what each store holds.
    Status(StatusArgs),
    /// Measure every stage and the whole pipeline on a generated corpus, in
    /// one run, and print the ratios (`make bench` builds in release mode).
    Bench(BenchArgs),
    /// Inspect dead letters and replay them after a fix.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Serve the retrieval API (search, document status, status) over HTTP
    /// until SIGINT/SIGTERM, then finish the requests in flight and exit.
    Serve(ServeArgs),
    /// Manage the API keys `docpipe serve` accepts.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Arguments of `docpipe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port, logged at start).
    #[arg(long, default_value = "127.0.0.1:8080", env = "DOCPIPE_LISTEN")]
    pub listen: std::net::SocketAddr,
    /// The API keys file (`docpipe keys add` writes it).
    #[arg(long, default_value = "keys.toml", env = "DOCPIPE_API_KEYS_FILE")]
    pub keys: PathBuf,
    /// Searches served at once; more are refused with 429.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Milliseconds a search may take before it is abandoned with 504.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// `docpipe keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new API key, print it once, and store its SHA-256 digest in the keys file.
    Add {
        /// A name for the key, shown in logs instead of the key.
        name: String,
        /// The tenant whose documents the key reads.
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        tenant: Option<String>,
        /// An operators' key: status, and any tenant's documents when named.
        #[arg(long)]
        admin: bool,
        /// The keys file (`--keys`, as `docpipe serve` names it, works too).
        #[arg(
            long,
            visible_alias = "keys",
            default_value = "keys.toml",
            env = "DOCPIPE_API_KEYS_FILE"
        )]
        file: PathBuf,
    },
}

/// `docpipe dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first: id, error code, document, reason.
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full: headers, attempt history and body.
    Show {
        /// The dead letter's id (from `dlq list`).
        id: String,
    },
    /// Publish dead letters again as fresh ingest requests and remove them
    /// from the dead-letter queue.
    Replay {
        /// The dead letter's id (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
    },
}

impl Command {
    /// The worker and the server narrate their work; other commands only warn.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Self::Worker | Self::Serve(_) => "info",
            _ => "warn",
        }
    }
}

/// Arguments of `docpipe publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Files to publish (any format docpipe reads); each must be under one of the worker's allowed roots.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The tenant owning the documents.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Document id (one file only); default: the file name without its final extension.
    #[arg(long)]
    pub id: Option<String>,
    /// Metadata of the documents, searchable with filters: `lang=en`,
    /// `year=2024` (an integer), `draft=false` (a boolean), `label="2024"`
    /// (a string). Repeat for more keys.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = metadata_pair)]
    pub metadata: Vec<(String, serde_json::Value)>,
}

/// `KEY=VALUE`: the value as JSON when it is a number, a boolean or a
/// quoted string, else as the string it is.
fn metadata_pair(pair: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{pair:?} has an empty key"));
    }
    let value = match serde_json::from_str(value) {
        Ok(
            parsed @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::String(_)),
        ) => parsed,
        _ => serde_json::Value::String(value.to_owned()),
    };
    Ok((key.to_owned(), value))
}

/// Arguments of `docpipe backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The directory, or `s3://bucket/prefix/` (read with the pipeline's
    /// `[sources.s3]`), to publish.
    #[arg(value_name = "DIR|S3_URL")]
    pub from: String,
    /// The tenant owning the documents.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Wait until every document is indexed or failed, then print a summary
    /// (exit status 1 if any failed).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting once this many seconds pass without a document
    /// finishing (however long the whole backfill takes).
    #[arg(long, default_value_t = 600, requires = "wait")]
    pub timeout_secs: u64,
    /// Publish at most this many documents per second, so a large backfill
    /// does not fill the queues (uploads are served first either way).
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Give up waiting for workers once this many seconds pass without a
    /// document finishing (re-run to resume).
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Publish at most this many documents per second.
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Build and verify, but do not switch (switch later by re-running).
    #[arg(long)]
    pub no_switch: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe generations`.
#[derive(Debug, Args)]
pub struct GenerationsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Also drop an unfinished build.
    #[arg(long)]
    pub building: bool,
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Dense and BM25 fused, by their scores or ranks (the pipeline's `[search]` settings).
    Hybrid,
    /// Milvus vector search.
    Dense,
    /// tantivy BM25.
    Bm25,
}

/// Arguments of `docpipe parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// A document (PDF, HTML, Office, OpenDocument, EPUB, Markdown, RTF, text, or an image with OCR).
    pub file: PathBuf,
    /// Print the document (or the failure's code and reason) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query.
    pub query: String,
    /// How to search.
    #[arg(long, value_enum, default_value_t = ModeArg::Hybrid)]
    pub mode: ModeArg,
    /// How many documents to return (1 to 1000).
    #[arg(long, default_value_t = 10, value_parser = top_k)]
    pub top_k: usize,
    /// Search this tenant's documents only.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// JSONL gold set: {"qid": ..., "query": ..., "doc_id": ...} per line.
    pub queries: PathBuf,
    /// The cut-off for Recall@k and MRR@k (1 to 1000).
    #[arg(long, default_value_t = 10, value_parser = top_k)]
    pub k: usize,
    /// Evaluate only this mode (default: all three).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// The tenant whose documents the gold set refers to.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Exit with status 1 if any mode's Recall@k is below this (0–1): a
    /// regression gate for pipeline changes.
    #[arg(long)]
    pub min_recall: Option<f64>,
    /// Print the report as JSON, with each query's rank and the document
    /// ranked first.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `docpipe bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Documents in the generated corpus (two HTML pages per PDF, mixed sizes).
    #[arg(long, default_value_t = 200)]
    pub documents: usize,
    /// The int8 model to compare with the pipeline's model (default: the
    /// pipeline's model directory with `-int8` appended, if present).
    #[arg(long)]
    pub int8_model: Option<PathBuf>,
    /// Also ingest a corpus this many times larger end to end and compare
    /// peak memory (0 or 1 skips it).
    #[arg(long, default_value_t = 5)]
    pub scale: usize,
    /// Fresh processes per corpus size for the memory comparison (run
    /// alternately; the target is checked on their median peaks).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub memory_runs: u16,
    /// Pages of the long PDF published before a dozen small documents, to
    /// show it does not stall them (0 skips it).
    #[arg(long, default_value_t = 300)]
    pub long_pdf_pages: usize,
    /// End-to-end runs, each between two embed-only passes; the target is
    /// checked on the median of their ratios.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub rounds: u16,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Instead of the stage bench: index the corpus with one worker
    /// process, then with this many side by side, and report their total
    /// throughput against one (needs index.backend = "milvus").
    #[arg(long, value_parser = clap::value_parser!(u16).range(2..))]
    pub workers: Option<u16>,
    /// Instead of the stage bench: load an index, serve it with `docpipe
    /// serve` and measure hybrid search latency, queries/s and CPU per
    /// query under concurrent clients (wrk, which must be installed).
    #[arg(long)]
    pub serve: bool,
    /// `--serve`: chunks in the index.
    #[arg(long, default_value_t = 100_000, requires = "serve")]
    pub chunks: usize,
    /// `--serve`: chunks embedded by the model; the index loads each
    /// several times under other ids, with perturbed vectors, to reach
    /// `--chunks` (equal to `--chunks`: embed every one).
    #[arg(long, default_value_t = 5_000, requires = "serve")]
    pub distinct_chunks: usize,
    /// `--serve`: concurrent clients.
    #[arg(long, default_value_t = 50, requires = "serve")]
    pub clients: usize,
    /// `--serve`: seconds of each load phase.
    #[arg(long, default_value_t = 30, requires = "serve")]
    pub seconds: u64,
    /// `--serve`: queries per second the clients offer together in the
    /// phases at a rate.
    #[arg(long, default_value_t = 200.0, requires = "serve")]
    pub rate: f64,
    /// Only ingest a corpus of this many documents end to end and print
    /// this process's memory as JSON (the bench starts itself this way to
    /// measure memory in fresh processes).
    #[arg(long, hide = true, value_name = "DOCUMENTS")]
    pub memory_run: Option<usize>,
}

/// Arguments of `docpipe status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A number of documents a search can return.
fn top_k(text: &str) -> Result<usize, String> {
    let maximum = docpipe_search::MAX_TOP_K;
    match text.parse::<usize>() {
        Ok(value) if (1..=maximum).contains(&value) => Ok(value),
        _ => Err(format!(
            "expected a number of documents from 1 to {maximum}"
        )),
    }
}
