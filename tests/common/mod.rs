//! A real pipeline for integration tests: RabbitMQ queues, a Milvus
//! collection and a tantivy index with names unique to the test, the real
//! model, and a worker running in-process. `shutdown` removes them all.

#![allow(dead_code)] // each test binary uses part of the harness

pub mod scenario;
pub mod serve;

use docpipe_core::{ChunkId, ChunkStore, IndexedChunk, StoreError, StoreStats, StoredChunk};
use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, PipelineConfig, TenantId};
use docpipe_index::{GenerationIndex, remove_family};
use docpipe_pipeline::{Components, Generations, Worker, WorkerSummary};
use docpipe_queue::{Broker, DeadLetter};
use futures::{Stream, StreamExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a document's event before failing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(180);

/// The repository's fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A `file://` URI for a path.
pub fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("absolute path")
        .to_string()
}

/// A pipeline definition with names unique to `test`: queues, exchanges,
/// Milvus collection and tantivy directory (under `scratch`). Allowed roots:
/// the fixtures and `scratch`.
pub fn unique_config(test: &str, scratch: &Path) -> PipelineConfig {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/default.toml"),
    )
    .expect("the default pipeline exists");
    let mut config = PipelineConfig::from_toml(&text).expect("the default pipeline is valid");
    let unique = format!("{test}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let home = std::env::var_os("DOCPIPE_HOME").expect("DOCPIPE_HOME is set by .cargo/config.toml");
    config.model.dir = PathBuf::from(home).join("models/all-MiniLM-L6-v2");
    config.model.intra_threads = 1;
    config.worker.metrics_addr = Some(([127, 0, 0, 1], 0).into());
    if let Ok(url) = std::env::var("DOCPIPE_MILVUS_URL") {
        config.milvus.url = url;
    }
    if let Ok(url) = std::env::var("DOCPIPE_AMQP_URL") {
        config.queue.url = url;
    }
    config.milvus.collection = format!("test_{unique}");
    config.bm25.index_dir = scratch.join("index");
    let queue = &mut config.queue;
    queue.ingest_exchange = format!("test.{unique}.ingest");
    queue.ingest_queue = format!("test.{unique}.ingest");
    queue.dead_letter_exchange = format!("test.{unique}.dead");
    queue.dead_letter_queue = format!("test.{unique}.dead");
    queue.events_exchange = format!("test.{unique}.events");
    config.sources.allowed_roots = vec![fixtures(), scratch.to_owned()];
    config
}

type Events = Pin<Box<dyn Stream<Item = DocumentEvent> + Send>>;

/// A running pipeline.
pub struct TestPipeline {
    pub config: PipelineConfig,
    /// Every generation the worker writes.
    pub generations: Arc<Generations>,
    /// The live generation when the pipeline started.
    pub components: Arc<Components>,
    pub broker: Broker,
    pub publisher: docpipe_queue::Publisher,
    /// Files the test writes, inside the allowed roots.
    pub scratch: tempfile::TempDir,
    events: Events,
    /// Events received while waiting for another document's: the worker
    /// handles deliveries concurrently, so events arrive in any order.
    unclaimed: Vec<DocumentEvent>,
    stop: Option<oneshot::Sender<()>>,
    worker: Option<JoinHandle<WorkerSummary>>,
}

impl TestPipeline {
    /// Sets up the stores and queues and starts a worker.
    pub async fn start(test: &str) -> Self {
        Self::start_with(test, |_| {}, |store| store).await
    }

    /// Like [`start`](Self::start), with the configuration adjusted by
    /// `configure` and every store wrapped by `wrap`.
    pub async fn start_with(
        test: &str,
        configure: impl FnOnce(&mut PipelineConfig),
        wrap: impl Fn(Arc<dyn ChunkStore>) -> Arc<dyn ChunkStore> + Send + Sync + 'static,
    ) -> Self {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let mut config = unique_config(test, scratch.path());
        configure(&mut config);
        let generations = Arc::new(
            Generations::open(&config, Arc::new(wrap))
                .await
                .expect("the pipeline assembles (run `make setup`, start Milvus)"),
        );
        let components = generations.live().await.expect("a live generation");
        let broker = Broker::connect(&config.queue, &config.retry)
            .await
            .expect("RabbitMQ is reachable");
        let events: Events = Box::pin(broker.subscribe_events().await.expect("event subscription"));
        let publisher = broker.publisher().await.expect("a publisher");
        let (stop, stopped) = oneshot::channel::<()>();
        let worker = Worker::new(generations.clone(), &config);
        let worker = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            config,
            generations,
            components,
            broker,
            publisher,
            scratch,
            events,
            unclaimed: Vec::new(),
            stop: Some(stop),
            worker: Some(worker),
        }
    }

    /// Publishes a file-sourced ingest request.
    pub async fn publish_file(&self, tenant: &str, document: &str, path: &Path) {
        self.publish_typed_file(tenant, document, path, None).await;
    }

    /// Publishes a file source declaring its `content_type`, as an upload
    /// service that knows it would.
    pub async fn publish_typed_file(
        &self,
        tenant: &str,
        document: &str,
        path: &Path,
        content_type: Option<&str>,
    ) {
        let mut request = IngestRequest::for_file(
            TenantId::new(tenant).unwrap(),
            DocumentId::new(document).unwrap(),
            file_uri(path),
        );
        request.content_type = content_type.map(str::to_owned);
        assert_fits_request_schema(&request.encode());
        self.publisher
            .publish_ingest(&request, None)
            .await
            .expect("publish confirmed");
    }

    /// Waits for the next event about `document` of `tenant`; events about
    /// other documents are kept for later calls.
    pub async fn event_for(&mut self, tenant: &str, document: &str) -> DocumentEvent {
        let is_about = |event: &DocumentEvent| {
            let (of, about) = event.subject();
            of.map(TenantId::as_str) == Some(tenant)
                && about.map(DocumentId::as_str) == Some(document)
        };
        if let Some(position) = self.unclaimed.iter().position(is_about) {
            return self.unclaimed.remove(position);
        }
        let (events, unclaimed) = (&mut self.events, &mut self.unclaimed);
        tokio::time::timeout(EVENT_TIMEOUT, async {
            loop {
                let event = events.next().await.expect("the event stream stays open");
                assert_fits_event_schema(&event);
                if is_about(&event) {
                    return event;
                }
                unclaimed.push(event);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no event for {tenant}/{document} within {EVENT_TIMEOUT:?}"))
    }

    /// Waits for `count` events, whatever they are about, oldest first.
    pub async fn events(&mut self, count: usize) -> Vec<DocumentEvent> {
        let later = self.unclaimed.split_off(count.min(self.unclaimed.len()));
        let unclaimed = std::mem::replace(&mut self.unclaimed, later);
        let missing = count - unclaimed.len();
        let events = &mut self.events;
        tokio::time::timeout(EVENT_TIMEOUT, async move {
            let mut all = unclaimed;
            all.extend(events.take(missing).collect::<Vec<_>>().await);
            all.iter().for_each(assert_fits_event_schema);
            all
        })
        .await
        .unwrap_or_else(|_| panic!("fewer than {count} events within {EVENT_TIMEOUT:?}"))
    }

    /// The document's chunk ids, sorted; every store must agree on them.
    pub async fn stored_chunk_ids(&self, tenant: &str, document: &str) -> Vec<ChunkId> {
        stored_chunk_ids(self.components.index.as_ref(), tenant, document).await
    }

    /// Waits until the bulk queue is empty and the stores stop growing;
    /// returns how many documents the live generation then holds.
    pub async fn settled_document_count(&self) -> u64 {
        let mut last = None;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let depths = self.broker.queue_depths().await.unwrap();
            let documents = self.indexed_document_count().await;
            if depths.bulk == 0 && last == Some(documents) {
                return documents;
            }
            last = Some(documents);
        }
    }

    /// How many documents the live generation's BM25 index lists.
    pub async fn indexed_document_count(&self) -> u64 {
        self.components
            .index
            .stats()
            .await
            .unwrap()
            .listed()
            .documents
    }

    /// Checks that each `(error code, body)` case was dead-lettered exactly
    /// once, permanently, on its first delivery, with its body kept byte for
    /// byte (which is how a letter is matched to its case); returns the
    /// letters in case order for further checks.
    pub async fn assert_dead_lettered(&self, cases: &[(&str, String)]) -> Vec<DeadLetter> {
        let letters = self.broker.dead_letters(usize::MAX).await.unwrap();
        assert_eq!(letters.len(), cases.len(), "one dead letter per case");
        cases
            .iter()
            .map(|(code, body)| {
                let letter = letters
                    .iter()
                    .find(|letter| letter.body == body.as_bytes())
                    .unwrap_or_else(|| panic!("no dead letter for {body}"));
                assert_eq!(
                    letter.error_code, *code,
                    "{body}\n  reason: {}",
                    letter.reason
                );
                assert_eq!(letter.error_class, "permanent");
                assert!(!letter.reason.is_empty());
                assert_eq!(
                    letter.history.attempts, 1,
                    "permanent failures are not retried"
                );
                letter.clone()
            })
            .collect()
    }

    /// Stops the worker gracefully, as SIGTERM does; the stores and queues
    /// stay for inspection.
    pub async fn stop_worker(&mut self) -> WorkerSummary {
        let _ = self.stop.take().expect("not yet stopped").send(());
        self.worker
            .take()
            .unwrap()
            .await
            .expect("the worker task ends")
    }

    /// Stops the worker gracefully (if still running) and removes the
    /// test's queues, exchanges, collections and indexes.
    pub async fn shutdown(mut self) -> WorkerSummary {
        let summary = match self.worker.is_some() {
            true => self.stop_worker().await,
            false => WorkerSummary::default(),
        };
        self.publisher.close().await;
        self.broker
            .delete_topology()
            .await
            .expect("test topology deleted");
        self.broker.close().await;
        remove_family(&self.config)
            .await
            .expect("test collections dropped");
        summary
    }
}

/// The number of chunks an `Indexed` event reports; panics on any other event.
pub fn indexed_chunks(event: &DocumentEvent) -> u32 {
    match event {
        DocumentEvent::Indexed { chunks, .. } => *chunks,
        other => panic!("expected document.indexed, got {other:?}"),
    }
}

/// Test double (fault injection): a real store whose first `failures`
/// writes fail as if the store were unavailable, or whose writes take
/// `delay` longer. Used where a dependency must fail or stall on cue, which
/// a real outage cannot do precisely.
pub struct FailingWrites {
    inner: Arc<dyn ChunkStore>,
    failures: AtomicU32,
    delay: Duration,
}

impl FailingWrites {
    /// Wraps `inner`, failing its next `failures` writes.
    pub fn wrap(inner: Arc<dyn ChunkStore>, failures: u32) -> Arc<dyn ChunkStore> {
        Arc::new(Self {
            inner,
            failures: AtomicU32::new(failures),
            delay: Duration::ZERO,
        })
    }

    /// Wraps `inner`, making each write take `delay` longer.
    pub fn slow(inner: Arc<dyn ChunkStore>, delay: Duration) -> Arc<dyn ChunkStore> {
        Arc::new(Self {
            inner,
            failures: AtomicU32::new(0),
            delay,
        })
    }
}

#[async_trait::async_trait]
impl ChunkStore for FailingWrites {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn write_document(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
        chunks: &[IndexedChunk],
        replacing: &[StoredChunk],
    ) -> Result<(), StoreError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(StoreError::Unavailable {
                store: self.inner.name(),
                message: "injected outage".into(),
            });
        }
        tokio::time::sleep(self.delay).await;
        self.inner
            .write_document(tenant, document, chunks, replacing)
            .await
    }

    async fn document_chunks(
        &self,
        tenant: &TenantId,
        document: &DocumentId,
    ) -> Result<Vec<StoredChunk>, StoreError> {
        self.inner.document_chunks(tenant, document).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }
}

/// Runs a `docpipe` command to completion off the async runtime; prints
/// its stderr if it fails.
pub async fn run(mut command: Command) -> std::process::Output {
    let output = tokio::task::spawn_blocking(move || command.output().expect("docpipe runs"))
        .await
        .unwrap();
    if !output.status.success() {
        eprintln!("stderr: {}", String::from_utf8_lossy(&output.stderr));
    }
    output
}

/// The `docpipe` binary with `--pipeline pipeline` and info logging.
pub fn docpipe(pipeline: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docpipe"));
    command
        .arg("--pipeline")
        .arg(pipeline)
        .env("RUST_LOG", "info");
    command
}

/// A command's stdout as JSON; panics with the output if it is not.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Writes `config` as a pipeline file in `dir`, for `docpipe` processes.
pub fn write_pipeline(config: &PipelineConfig, dir: &Path) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config.to_toml()).expect("pipeline file written");
    path
}

/// Removes a test's queues, exchanges, Milvus collections and indexes.
pub async fn remove_resources(config: &PipelineConfig) {
    let broker = Broker::connect(&config.queue, &config.retry).await.unwrap();
    broker.delete_topology().await.unwrap();
    broker.close().await;
    remove_family(config).await.unwrap();
}

/// A `docpipe` process (a worker or a server) that is stopped with
/// SIGTERM however the test ends.
pub struct DocpipeProcess(Child);

impl DocpipeProcess {
    /// Starts `command` (from [`docpipe`]), logging stderr to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        command.stdout(Stdio::null()).stderr(log);
        Self(command.spawn().expect("docpipe starts"))
    }

    /// Starts `docpipe worker` with `pipeline`, logging to `log`.
    pub fn start(pipeline: &Path, log: &Path) -> Self {
        Self::start_with(pipeline, log, |_| {})
    }

    /// Like [`start`](Self::start), with the command adjusted by `configure`
    /// (environment variables, say).
    pub fn start_with(pipeline: &Path, log: &Path, configure: impl FnOnce(&mut Command)) -> Self {
        let mut command = docpipe(pipeline);
        command.arg("worker");
        configure(&mut command);
        Self::spawn(command, log)
    }

    /// Sends SIGTERM and returns whether the process exited successfully in time.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        self.0.kill().expect("the process can be killed");
        self.0.wait().expect("the killed process is reaped");
    }
}

impl Drop for DocpipeProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// The local SeaweedFS of `scripts/seaweedfs.sh` (`make test` starts it):
/// its endpoint, region and credentials, as this process reaches it.
pub fn local_s3() -> docpipe_parsed::S3Options {
    docpipe_parsed::S3Options {
        endpoint: Some("http://127.0.0.1:18333".into()),
        region: Some("us-east-1".into()),
        credentials: Some(("docpipe".into(), "docpipe-local-secret".into())),
    }
}

/// Keeps `config`'s parsed copies in the local SeaweedFS, under a prefix of
/// their own; returns their `s3://` location. Processes that use the file
/// need [`with_local_s3_credentials`].
pub fn parsed_copies_in_local_s3(config: &mut PipelineConfig) -> String {
    let url = format!("s3://docpipe/tests/{}", uuid::Uuid::new_v4().simple());
    let s3 = local_s3();
    config.parsed.url = Some(url.clone());
    config.parsed.endpoint = s3.endpoint;
    config.parsed.region = s3.region;
    url
}

/// Puts `config` on the `milvus` backend: the local Milvus with full-text
/// search (`scripts/milvus-lite.sh`, or DOCPIPE_MILVUS_FULLTEXT_URL), and
/// parsed copies in the local S3, so no worker keeps anything on its disk.
pub fn on_milvus_full_text_search(config: &mut PipelineConfig) {
    config.index.backend = docpipe_core::config::IndexBackend::Milvus;
    config.milvus.url = std::env::var("DOCPIPE_MILVUS_FULLTEXT_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:19541".into());
    parsed_copies_in_local_s3(config);
}

/// The local SeaweedFS's credentials, as the standard AWS variables, for a
/// `docpipe` process.
pub fn with_local_s3_credentials(command: &mut Command) -> &mut Command {
    let (key, secret) = local_s3()
        .credentials
        .expect("the local server has credentials");
    command
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
}

/// A compiled JSON Schema from `schemas/`.
pub fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("the schema exists");
    let value: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&value).expect("the schema compiles")
}

/// Panics unless a request body fits `schemas/request.schema.json`.
pub fn assert_fits_request_schema(body: &[u8]) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let wire = serde_json::from_slice(body).expect("requests are JSON");
    assert_fits(&SCHEMA, "request.schema.json", &wire);
}

/// Panics unless `event`'s wire form fits `schemas/event.schema.json`.
pub fn assert_fits_event_schema(event: &DocumentEvent) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let wire = serde_json::to_value(event).expect("events serialize");
    assert_fits(&SCHEMA, "event.schema.json", &wire);
}

/// Panics unless `wire` fits the schema `name`, compiled once into `cache`.
fn assert_fits(
    cache: &std::sync::OnceLock<jsonschema::Validator>,
    name: &str,
    wire: &serde_json::Value,
) {
    let errors: Vec<String> = cache
        .get_or_init(|| schema(name))
        .iter_errors(wire)
        .map(|error| error.to_string())
        .collect();
    assert!(errors.is_empty(), "{wire} does not fit {name}: {errors:?}");
}

/// A document's chunk ids in a generation, sorted; every store of the
/// generation must agree on them.
pub async fn stored_chunk_ids(
    index: &dyn GenerationIndex,
    tenant: &str,
    document: &str,
) -> Vec<ChunkId> {
    let tenant = TenantId::new(tenant).unwrap();
    let document = DocumentId::new(document).unwrap();
    let mut agreed: Option<(&str, Vec<ChunkId>)> = None;
    for store in index.stores() {
        let mut ids = store.chunk_ids(&tenant, &document).await.unwrap();
        ids.sort();
        match &agreed {
            Some((first, agreed)) => assert_eq!(
                agreed,
                &ids,
                "{first} and {} disagree on {document}'s chunks",
                store.name()
            ),
            None => agreed = Some((store.name(), ids)),
        }
    }
    agreed.map(|(_, ids)| ids).unwrap_or_default()
}

/// Makes a CA and a certificate it signs for `localhost` and 127.0.0.1
/// (with the `openssl` command); returns (CA, server certificate, key).
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=docpipe test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A helper server of the tests (`tests/support/*.py`), started with
/// python3 and its arguments; it prints the port it listens on as its first
/// line. Killed on drop.
pub struct SupportServer {
    process: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl SupportServer {
    /// Runs `tests/support/<script>` with `args`; returns once it listens.
    pub fn start(script: &str, args: &[&std::ffi::OsStr]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(script);
        let mut process = Command::new("python3")
            .arg(&script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(process.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{} prints its port, not {line:?}", script.display()));
        Self { process, port }
    }
}

impl Drop for SupportServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
