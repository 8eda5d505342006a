//! `docpipe bench --serve`: search latency, throughput and CPU per query of
//! a `docpipe serve` process under concurrent clients, measured by `wrk`
//! in another process over loopback.
//!
//! The corpus is prose with the word statistics of real text (Zipf's law
//! over 40,000 words): a query's common words are in nearly every chunk
//! and its rare ones in few, as in a real index. (Until 2026-12-05 it was
//! the stage bench's 48-word corpus, where every chunk holds most of every
//! query's words and BM25 scores the whole index for each query.)
//!
//! The index holds `chunks` chunks. Embedding that many with the real
//! model takes most of an hour on two cores, so the bench embeds
//! `distinct` chunks of the generated corpus and loads each several times,
//! under other document ids and with its vector slightly perturbed (and
//! normalised again): the stores hold and search the full count, while the
//! query side (model, cache, stores, fusion, HTTP) is exactly what serves
//! RAG applications. `--distinct-chunks` equal to `--chunks` embeds them all.

use crate::end_to_end::remove_rig;
use crate::process::BenchProcess;
use crate::random::XorShift;
use crate::{BenchError, chunk_all, corpus, failed, parse_all, unique_config};
use docpipe_core::{
    Chunk, ChunkId, ContentHash, DocumentId, IndexedChunk, PipelineConfig, PipelineVersion,
    TenantId,
};
use docpipe_embed::ModelDir;
use futures::{StreamExt as _, TryStreamExt as _};
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Chunks per loaded document.
const CHUNKS_PER_DOCUMENT: usize = 25;

/// Documents written to the stores at once (tantivy commits them together).
const WRITES_IN_FLIGHT: usize = 16;

/// Queries of the phase of popular ones (and of the warm-up).
const POPULAR_QUERIES: usize = 100;

/// How far a copy's vector moves from the original's (before normalising).
const PERTURBATION: f32 = 0.05;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ServeBenchOptions {
    /// Chunks in the index.
    pub chunks: usize,
    /// Distinct chunks embedded by the model (each loaded
    /// `chunks / distinct` times).
    pub distinct: usize,
    /// Concurrent clients (wrk connections).
    pub clients: usize,
    /// Seconds each load phase lasts.
    pub seconds: u64,
    /// Queries per second offered in the phases at a rate.
    pub rate: f64,
    /// The `docpipe` binary, started as `docpipe --pipeline FILE serve`.
    pub docpipe: OsString,
}

/// One load phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadPhase {
    /// What the queries were.
    pub label: &'static str,
    /// Requests answered.
    pub requests: u64,
    /// Distinct queries the phase cycles through: past that many
    /// requests, queries repeat and find their embeddings cached.
    pub distinct_queries: usize,
    /// Requests per second.
    pub queries_per_s: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Answers other than 200, and socket errors.
    pub failed: u64,
    /// CPU time of the server process per query, milliseconds.
    pub server_cpu_ms_per_query: f64,
    /// CPU time of the local Milvus processes per query, milliseconds
    /// (NaN when Milvus runs elsewhere).
    pub milvus_cpu_ms_per_query: f64,
    /// CPU time of the whole machine per query (server, Milvus, wrk),
    /// milliseconds.
    pub machine_cpu_ms_per_query: f64,
}

/// The report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServeReport {
    /// Chunks in the index.
    pub chunks: usize,
    /// Distinct chunks the model embedded.
    pub distinct: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// The index backend.
    pub backend: &'static str,
    /// Queries per second offered in the phases at a rate.
    pub rate: f64,
    /// Distinct queries (the cache never helps) flat out and at the rate,
    /// then a hundred popular ones at the rate.
    pub phases: Vec<LoadPhase>,
}

impl ServeReport {
    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut table = format!(
            "hybrid search over {} chunks ({} embedded, {} backend), {} clients (wrk), rate {} queries/s\n\
             {:<22} {:>9} {:>8} {:>8} {:>8} {:>7} {:>12} {:>12} {:>13}\n",
            self.chunks,
            self.distinct,
            self.backend,
            self.clients,
            self.rate,
            "queries",
            "queries/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "failed",
            "server CPU",
            "Milvus CPU",
            "machine CPU"
        );
        for phase in &self.phases {
            table.push_str(&format!(
                "{:<22} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>9.2} ms {:>9.2} ms {:>10.2} ms\n",
                phase.label,
                phase.queries_per_s,
                phase.p50_ms,
                phase.p95_ms,
                phase.p99_ms,
                phase.failed,
                phase.server_cpu_ms_per_query,
                phase.milvus_cpu_ms_per_query,
                phase.machine_cpu_ms_per_query
            ));
        }
        for phase in &self.phases {
            if phase.requests as usize > phase.distinct_queries {
                table.push_str(&format!(
                    "{}: {} requests over {} distinct queries, so some were repeats\n",
                    phase.label, phase.requests, phase.distinct_queries
                ));
            }
        }
        table
    }
}

/// Loads an index of `options.chunks` chunks on `config`'s stores (names of
/// its own, removed afterwards), serves it, and measures hybrid searches
/// from `options.clients` wrk connections: first distinct queries, then a
/// hundred popular ones; flat out (each client sends its next query as
/// soon as it has an answer) and at `options.rate` queries per second.
pub async fn serve_latency(
    config: &PipelineConfig,
    options: &ServeBenchOptions,
) -> Result<ServeReport, BenchError> {
    let wrk = which_wrk()?;
    let scratch = tempfile::tempdir().map_err(failed("creating a scratch directory"))?;
    let config = unique_config(config, scratch.path());
    let (queries, indexed) = load_index(&config, scratch.path(), options).await?;
    let result = measure(&config, scratch.path(), options, &wrk, &queries).await;
    let broker = docpipe_queue::Broker::connect(&config.queue, &config.retry)
        .await
        .map_err(failed("connecting to RabbitMQ"))?;
    remove_rig(&broker, &config).await?;
    Ok(ServeReport {
        chunks: indexed,
        distinct: options.distinct.min(indexed),
        clients: options.clients,
        rate: options.rate,
        backend: config.index.backend.as_str(),
        phases: result?,
    })
}

fn which_wrk() -> Result<std::path::PathBuf, BenchError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("wrk"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            failed("finding wrk")(
                "the load generator wrk is not installed: `apt-get install wrk` (Debian), then run again",
            )
        })
}

/// Writes the index; returns queries drawn from the corpus and the chunks
/// indexed.
async fn load_index(
    config: &PipelineConfig,
    scratch: &Path,
    options: &ServeBenchOptions,
) -> Result<(Vec<String>, usize), BenchError> {
    let distinct = options.distinct.clamp(1, options.chunks.max(1));
    let model = ModelDir::open(&config.model.dir).map_err(failed("opening the model"))?;
    let version = docpipe_pipeline::pipeline_version(config, &model)
        .map_err(failed("fingerprinting the model"))?;
    let mut chunks = Vec::new();
    let mut documents = 0;
    while chunks.len() < distinct {
        // The generated corpus averages about five chunks a document.
        let more = ((distinct - chunks.len()) / 4).max(10);
        let dir = scratch.join(format!("corpus-{documents}"));
        let paths = corpus::write_prose(&dir, more, documents as u64)
            .map_err(failed("writing the corpus"))?;
        let (parsed, _, _) = parse_all(config, &paths)?;
        let (chunked, _) = chunk_all(config, &model, &version, &parsed)?;
        chunks.extend(chunked.into_iter().flatten());
        documents += more;
    }
    chunks.truncate(distinct);
    let texts: Vec<&str> = chunks
        .iter()
        .map(|chunk| chunk.embed_text.as_str())
        .collect();
    tracing::info!(distinct, "embedding the distinct chunks");
    let vectors = crate::embed::embed_with_worker_layout(config, &texts)?;
    let queries = queries_from(&chunks);

    let generations = docpipe_pipeline::Generations::open(config, docpipe_pipeline::no_wrapping())
        .await
        .map_err(failed("opening the index"))?;
    let live = generations
        .live()
        .await
        .map_err(failed("opening the index"))?;
    let copies = options.chunks.div_ceil(distinct);
    let originals: Vec<(Chunk, Vec<f32>)> = chunks.into_iter().zip(vectors).collect();
    let documents: Vec<Vec<IndexedChunk>> = (0..copies)
        .flat_map(|copy| {
            originals
                .chunks(CHUNKS_PER_DOCUMENT)
                .enumerate()
                .map(move |(number, group)| (copy, number, group))
        })
        .take(options.chunks.div_ceil(CHUNKS_PER_DOCUMENT))
        .map(|(copy, number, group)| loaded_document(&version, copy, number, group))
        .collect();
    let indexed: usize = documents.iter().map(Vec::len).sum();
    tracing::info!(indexed, documents = documents.len(), "loading the index");
    for store in live.index.stores() {
        futures::stream::iter(&documents)
            .map(|document| {
                let chunk = &document[0].chunk;
                store.write_document(&chunk.tenant, &chunk.document_id, document, &[])
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await
            .map_err(failed("loading the index"))?;
    }
    // Searched as a live index is: every segment sealed and indexed.
    live.index
        .settle(Duration::from_secs(600))
        .await
        .map_err(failed("settling the index"))?;
    // Milvus compacts the loaded segments for a while after they are
    // indexed; measured during that, searches pay for it.
    wait_until_quiet(Duration::from_secs(300)).await;
    Ok((queries, indexed))
}

/// Copy `copy` of a group of chunks, as document `bench-{copy}-{number}`.
fn loaded_document(
    version: &PipelineVersion,
    copy: usize,
    number: usize,
    group: &[(Chunk, Vec<f32>)],
) -> Vec<IndexedChunk> {
    let document = DocumentId::new(format!("bench-{copy:03}-{number:05}")).expect("a valid id");
    let mut noise = Noise(XorShift::new(((copy as u64) << 32) ^ number as u64));
    group
        .iter()
        .enumerate()
        .map(|(ordinal, (chunk, vector))| {
            let mut chunk = chunk.clone();
            chunk.id = ChunkId::from_stored(format!("{document}-{ordinal}"));
            chunk.document_id = document.clone();
            chunk.ordinal = ordinal as u32;
            chunk.tenant = TenantId::new("bench").expect("a valid tenant");
            let vector = match copy {
                0 => vector.clone(),
                _ => noise.perturb(vector),
            };
            IndexedChunk {
                content_hash: ContentHash::of(chunk.text.as_bytes()),
                chunk,
                vector,
                pipeline_version: version.clone(),
                source: "inline".into(),
                document_version: 0,
                metadata: Default::default(),
            }
        })
        .collect()
}

/// Deterministic vector perturbations.
struct Noise(XorShift);

impl Noise {
    /// A uniform draw in [-0.5, 0.5).
    fn next(&mut self) -> f32 {
        self.0.unit() as f32 - 0.5
    }

    fn perturb(&mut self, vector: &[f32]) -> Vec<f32> {
        let moved: Vec<f32> = vector
            .iter()
            .map(|value| value + PERTURBATION * self.next())
            .collect();
        let norm = moved.iter().map(|value| value * value).sum::<f32>().sqrt();
        moved.iter().map(|value| value / norm).collect()
    }
}

/// Queries as people type them: six words of a chunk, letters only, each
/// once.
fn queries_from(chunks: &[Chunk]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    chunks
        .iter()
        .flat_map(|chunk| {
            let words: Vec<String> = chunk
                .text
                .split_whitespace()
                .map(|word| word.chars().filter(char::is_ascii_alphabetic).collect())
                .filter(|word: &String| word.len() > 2)
                .collect();
            words
                .chunks(6)
                .filter(|words| words.len() == 6)
                .map(|words| words.join(" "))
                .collect::<Vec<_>>()
        })
        .filter(|query| seen.insert(query.clone()))
        .collect()
}

/// Serves the index and runs the load phases.
async fn measure(
    config: &PipelineConfig,
    scratch: &Path,
    options: &ServeBenchOptions,
    wrk: &Path,
    queries: &[String],
) -> Result<Vec<LoadPhase>, BenchError> {
    let pipeline = scratch.join("pipeline.toml");
    std::fs::write(&pipeline, config.to_toml()).map_err(failed("writing the pipeline file"))?;
    let keys = scratch.join("keys.toml");
    let role = docpipe_serve::Role::Tenant(TenantId::new("bench").expect("a valid tenant"));
    let key =
        docpipe_serve::keys::add_key(&keys, "bench", &role).map_err(failed("making a key"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(failed("finding a free port"))?
        .port();
    let mut command = Command::new(&options.docpipe);
    command
        .arg("--pipeline")
        .arg(&pipeline)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--keys")
        .arg(&keys);
    let mut server = BenchProcess::start(command, &scratch.join("serve.log"))?;
    server.wait_until_logged("serving the retrieval API", Duration::from_secs(300))?;
    let key = key.to_string();
    let target = Target {
        wrk,
        scratch,
        url: format!("http://127.0.0.1:{port}/v1/search"),
        key,
        server: server.id(),
    };
    // Each phase of distinct queries has queries of its own: one seen in an
    // earlier phase would find its embedding in the server's cache.
    let (popular, distinct) = queries.split_at(POPULAR_QUERIES.min(queries.len()));
    let (flat_out, at_the_rate) = distinct.split_at(distinct.len() / 2);
    if flat_out.is_empty() {
        return Err(failed("drawing queries from the corpus")(format!(
            "only {} distinct queries: embed more distinct chunks (--distinct-chunks)",
            queries.len()
        )));
    }
    let load = |label, queries, rate| Load {
        label,
        queries,
        clients: options.clients,
        seconds: options.seconds,
        rate,
    };
    // A short warm-up: connections, the model's first calls, page cache.
    target.run(&Load {
        seconds: 5,
        ..load("warm-up", popular, None)
    })?;
    let phases = [
        load("distinct, flat out", flat_out, None),
        load("distinct, at the rate", at_the_rate, Some(options.rate)),
        load("popular, at the rate", popular, Some(options.rate)),
    ]
    .iter()
    .map(|load| target.run(load))
    .collect::<Result<Vec<_>, _>>()?;
    server.stop();
    Ok(phases)
}

/// Where wrk sends its requests.
struct Target<'a> {
    wrk: &'a Path,
    scratch: &'a Path,
    url: String,
    key: String,
    server: u32,
}

/// One load phase to run.
struct Load<'a> {
    label: &'static str,
    /// Cycled through, each wrk thread its own share, so no two requests
    /// repeat one before the list is used up.
    queries: &'a [String],
    clients: usize,
    seconds: u64,
    /// Queries per second offered by all clients together: each wrk
    /// thread sends on a schedule of its own, gaps drawn at random with a
    /// mean of `threads / rate`, on whichever of its clients is free (at
    /// once, while the schedule is behind); `None`: each client sends its
    /// next query as soon as the last is answered.
    rate: Option<f64>,
}

impl Target<'_> {
    fn run(&self, load: &Load) -> Result<LoadPhase, BenchError> {
        const THREADS: usize = 2;
        let script = self.scratch.join("search.lua");
        let list: Vec<String> = load
            .queries
            .iter()
            .map(|query| format!("{query:?}"))
            .collect();
        // A schedule rather than a pause after each answer: pauses would
        // offer less than the rate by the latency's share.
        let mean_gap_ms = load.rate.map_or(0.0, |rate| 1000.0 * THREADS as f64 / rate);
        std::fs::write(
            &script,
            format!(
                r#"local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} docpipe_timespec;
int clock_gettime(int clock, docpipe_timespec *now);
]]
local function now_ms()
  local now = ffi.new("docpipe_timespec")
  ffi.C.clock_gettime(1, now)
  return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
end
local queries = {{ {list} }}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local sent = 0
function request()
  local index = (sent * {THREADS} + id) % #queries + 1
  sent = sent + 1
  local body = '{{"query":"' .. queries[index] .. '","mode":"hybrid","top_k":10}}'
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {key}"}}, body)
end
local next_at = nil
function delay()
  if {mean_gap_ms} == 0 then return 0 end
  local now = now_ms()
  next_at = (next_at or now) + math.random() * 2 * {mean_gap_ms}
  return math.max(0, next_at - now)
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %d %f %f %f\n", summary.requests, summary.duration,
    summary.errors.status + errors, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"#,
                list = list.join(", "),
                key = self.key,
            ),
        )
        .map_err(failed("writing the wrk script"))?;
        let before = (
            process_cpu_ticks(self.server),
            milvus_cpu_ticks(),
            machine_cpu_ticks(),
        );
        let output = Command::new(self.wrk)
            .arg(format!("-t{THREADS}"))
            .arg(format!("-c{}", load.clients))
            .arg(format!("-d{}s", load.seconds))
            .arg("--timeout")
            .arg("10s")
            .arg("-s")
            .arg(&script)
            .arg(&self.url)
            .output()
            .map_err(failed("running wrk"))?;
        let after = (
            process_cpu_ticks(self.server),
            milvus_cpu_ticks(),
            machine_cpu_ticks(),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result = stdout
            .lines()
            .find_map(|line| line.strip_prefix("RESULT "))
            .ok_or_else(|| {
                failed("running wrk")(format!(
                    "no result ({}): {stdout}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ))
            })?;
        let fields: Vec<f64> = result
            .split_whitespace()
            .map(|field| field.parse().unwrap_or(f64::NAN))
            .collect();
        let (requests, duration_us, failed_requests) = (fields[0], fields[1], fields[2]);
        let per_query = |ticks: Option<u64>| {
            // Linux counts CPU time in clock ticks of 10 ms (USER_HZ = 100).
            ticks.map_or(f64::NAN, |ticks| ticks as f64 * 10.0 / requests.max(1.0))
        };
        Ok(LoadPhase {
            label: load.label,
            requests: requests as u64,
            distinct_queries: load.queries.len(),
            queries_per_s: requests / (duration_us / 1e6),
            p50_ms: fields[3] / 1000.0,
            p95_ms: fields[4] / 1000.0,
            p99_ms: fields[5] / 1000.0,
            failed: failed_requests as u64,
            server_cpu_ms_per_query: per_query(after.0.zip(before.0).map(|(a, b)| a - b)),
            milvus_cpu_ms_per_query: per_query(after.1.zip(before.1).map(|(a, b)| a - b)),
            machine_cpu_ms_per_query: per_query(after.2.zip(before.2).map(|(a, b)| a - b)),
        })
    }
}

/// Waits until the machine's CPUs are mostly idle (under a quarter busy
/// over five seconds), for at most `limit`.
async fn wait_until_quiet(limit: Duration) {
    const WINDOW: Duration = Duration::from_secs(5);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let before = machine_cpu_ticks();
        tokio::time::sleep(WINDOW).await;
        let busy = machine_cpu_ticks()
            .zip(before)
            .map(|(after, before)| after - before);
        // Ticks are 10 ms: the share of the window the CPUs were busy.
        let share = busy.map_or(0.0, |ticks| {
            ticks as f64 / 100.0 / WINDOW.as_secs_f64() / cpus
        });
        tracing::info!(busy = share, "waiting for background work to finish");
        if share < 0.25 {
            return;
        }
    }
}

/// User and system CPU ticks of a process (`/proc/PID/stat` fields 14, 15).
fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// User and system CPU ticks of every local process named `milvus` (the
/// standalone server of `scripts/milvus.sh`); `None` if there is none.
fn milvus_cpu_ticks() -> Option<u64> {
    let processes = std::fs::read_dir("/proc").ok()?;
    let ticks: Vec<u64> = processes
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| name.trim() == "milvus")
        })
        .filter_map(process_cpu_ticks)
        .collect();
    (!ticks.is_empty()).then(|| ticks.iter().sum())
}

/// Busy CPU ticks of the whole machine (`/proc/stat`, all but idle and iowait).
fn machine_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    Some(total - ticks.get(3)? - ticks.get(4)?)
}
