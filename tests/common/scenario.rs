//! A fault or scale-out scenario: a corpus of small distinct documents,
//! worker processes running a unique pipeline file, and checks that every
//! document ends up indexed exactly once.

use super::DocpipeProcess;
use super::write_pipeline;
use docpipe_chunk::Chunker;
use docpipe_core::{ChunkId, DocumentId, IngestRequest, PipelineConfig, StoreStats, TenantId};
use docpipe_embed::ModelDir;
use docpipe_index::GenerationIndex;
use docpipe_parse::DocumentParser;
use docpipe_pipeline::{Generations, no_wrapping};
use docpipe_queue::Broker;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The tenant of every scenario document.
pub const TENANT: &str = "faults";

/// `count` small, distinct HTML documents in `dir`, by document id.
pub fn write_corpus(dir: &Path, count: usize) -> BTreeMap<String, PathBuf> {
    const WORDS: [&str; 16] = [
        "harbour", "lantern", "granite", "meadow", "copper", "falcon", "orchard", "glacier",
        "timber", "saffron", "quarry", "beacon", "willow", "cobalt", "thistle", "ember",
    ];
    std::fs::create_dir_all(dir).unwrap();
    (0..count)
        .map(|index| {
            let word = |offset: usize| WORDS[(index * 7 + offset * 3) % WORDS.len()];
            let paragraphs: String = (0..3 + index % 4)
                .map(|paragraph| {
                    format!(
                        "<h2>{} {paragraph}</h2><p>Record {index} describes the {} near the {} and the {} in detail. {}</p>",
                        word(paragraph),
                        word(paragraph + 1),
                        word(paragraph + 2),
                        word(paragraph + 3),
                        "It keeps going with more sentences so that chunks have substance. ".repeat(6)
                    )
                })
                .collect();
            let id = format!("doc-{index:04}");
            let path = dir.join(format!("{id}.html"));
            std::fs::write(&path, format!("<html><title>Record {index}</title><body>{paragraphs}</body></html>")).unwrap();
            (id, path)
        })
        .collect()
}

/// The chunk ids each document must end up with, computed independently
/// of any worker: parse and chunk with the same pipeline definition.
pub fn expected_chunks(
    config: &PipelineConfig,
    corpus: &BTreeMap<String, PathBuf>,
) -> BTreeMap<String, Vec<ChunkId>> {
    let model = ModelDir::open(&config.model.dir).unwrap();
    let version = docpipe_pipeline::pipeline_version(config, &model).unwrap();
    let chunker = Chunker::new(model.tokenizer().unwrap(), &config.chunking, 10_000).unwrap();
    let parser = DocumentParser::for_pipeline(config).unwrap();
    let tenant = TenantId::new(TENANT).unwrap();
    corpus
        .iter()
        .map(|(id, path)| {
            let parsed = parser.parse(&std::fs::read(path).unwrap(), None).unwrap();
            let document = DocumentId::new(id.clone()).unwrap();
            let mut ids: Vec<ChunkId> = chunker
                .chunk(&parsed, &tenant, &document, &version)
                .unwrap()
                .into_iter()
                .map(|chunk| chunk.id)
                .collect();
            ids.sort();
            (id.clone(), ids)
        })
        .collect()
}

/// Everything a fault test needs: a unique pipeline file, the corpus, and
/// read access to every store of the live generation.
pub struct Scenario {
    /// The pipeline definition.
    pub config: PipelineConfig,
    /// It, as a file for `docpipe` processes.
    pub pipeline: PathBuf,
    /// Where the corpus, the pipeline file and the logs are.
    pub scratch: tempfile::TempDir,
    /// The documents by id.
    pub corpus: BTreeMap<String, PathBuf>,
    /// The live generation, as workers write it.
    pub index: Arc<dyn GenerationIndex>,
}

impl Scenario {
    /// A scenario of `documents` documents on a pipeline made unique to
    /// `name` and adjusted by `configure`; its generation is made live.
    pub async fn new(
        name: &str,
        documents: usize,
        configure: impl FnOnce(&mut PipelineConfig),
    ) -> Self {
        let scratch = tempfile::tempdir().unwrap();
        let mut config = super::unique_config(name, scratch.path());
        configure(&mut config);
        let pipeline = write_pipeline(&config, scratch.path());
        let corpus = write_corpus(&scratch.path().join("docs"), documents);
        // Makes the pipeline's generation live, as the first worker would,
        // and reads its stores as the workers write them.
        let generations = Generations::open(&config, no_wrapping()).await.unwrap();
        let index = generations.live().await.unwrap().index.clone();
        Self {
            config,
            pipeline,
            scratch,
            corpus,
            index,
        }
    }

    /// Starts worker process number `run` (it logs to `worker-<run>.log`),
    /// with the local S3's credentials in case parsed copies go there.
    pub fn worker(&self, run: usize) -> DocpipeProcess {
        DocpipeProcess::start_with(
            &self.pipeline,
            &self.scratch.path().join(format!("worker-{run}.log")),
            |command| {
                super::with_local_s3_credentials(command);
            },
        )
    }

    pub async fn publish_all(&self) {
        let broker = Broker::connect(&self.config.queue, &self.config.retry)
            .await
            .unwrap();
        let publisher = broker.publisher().await.unwrap();
        for (id, path) in &self.corpus {
            let request = IngestRequest::for_file(
                TenantId::new(TENANT).unwrap(),
                DocumentId::new(id.clone()).unwrap(),
                super::file_uri(path),
            );
            publisher.publish_ingest(&request, None).await.unwrap();
        }
        broker.close().await;
    }

    /// Documents in Milvus and in the store that lists documents (tantivy,
    /// or Milvus again), if the query answers (Milvus may be down).
    pub async fn documents(&self) -> Option<(u64, u64)> {
        let stats = self.index.stats().await.ok()?;
        Some((stats.milvus.documents, stats.listed().documents))
    }

    /// Waits until the worker has indexed a first document: it is connected
    /// and working (starting it takes seconds on a slow machine).
    pub async fn wait_until_some_indexed(&self) {
        self.wait_until(
            "a first document indexed",
            Duration::from_secs(300),
            |(_, bm25)| bm25 > 0,
        )
        .await;
    }

    pub async fn wait_until_all_indexed(&self, limit: Duration) {
        let wanted = self.corpus.len() as u64;
        self.wait_until(
            &format!("all {wanted} documents indexed"),
            limit,
            |documents| documents == (wanted, wanted),
        )
        .await;
    }

    /// Polls the stores' document counts (Milvus, tantivy) until `done`
    /// holds for them; fails the test after `limit`.
    pub async fn wait_until(&self, what: &str, limit: Duration, done: impl Fn((u64, u64)) -> bool) {
        let started = Instant::now();
        while !self.documents().await.is_some_and(&done) {
            assert!(
                started.elapsed() < limit,
                "not {what} within {limit:?}: {:?}",
                self.documents().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every document indexed exactly once: both stores hold exactly the
    /// expected chunks, no more, no fewer, and nothing is left in the queues.
    pub async fn assert_exactly_once(&self) {
        let expected = expected_chunks(&self.config, &self.corpus);
        let tenant = TenantId::new(TENANT).unwrap();
        let total: usize = expected.values().map(Vec::len).sum();
        for (id, chunks) in &expected {
            let document = DocumentId::new(id.clone()).unwrap();
            for store in self.index.stores() {
                let mut stored = store.chunk_ids(&tenant, &document).await.unwrap();
                stored.sort();
                let unique: HashSet<&ChunkId> = stored.iter().collect();
                assert_eq!(
                    unique.len(),
                    stored.len(),
                    "{} holds duplicate chunks of {id}",
                    store.name()
                );
                assert_eq!(
                    &stored,
                    chunks,
                    "{} holds the wrong chunks for {id}",
                    store.name()
                );
            }
        }
        let wanted = StoreStats {
            documents: expected.len() as u64,
            chunks: total as u64,
        };
        let stats = self.index.stats().await.unwrap();
        assert_eq!(stats.milvus, wanted, "Milvus: no orphans, no duplicates");
        if let Some(tantivy) = stats.tantivy {
            assert_eq!(tantivy, wanted, "tantivy: no orphans, no duplicates");
        }
        let broker = Broker::connect(&self.config.queue, &self.config.retry)
            .await
            .unwrap();
        let depths = broker.queue_depths().await.unwrap();
        assert_eq!(
            (depths.ingest, depths.dead),
            (0, 0),
            "nothing left behind or dead-lettered"
        );
        broker.close().await;
    }

    pub async fn remove(self) {
        super::remove_resources(&self.config).await;
    }
}
