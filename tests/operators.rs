//! What operators do, on real RabbitMQ, Milvus, tantivy and the real model:
//! re-index to new chunk sizes while searchers and uploaders carry on, roll
//! back, and run backfills that resume after a kill and remove what was
//! deleted from the directory, and nothing else.

mod common;

use common::{DocpipeProcess, TestPipeline, docpipe, json, remove_resources, run, write_pipeline};
use docpipe_catalog::{Generation, GenerationState, INDEX_FORMAT};
use docpipe_core::ContentHash;
use docpipe_core::{DocumentId, IngestRequest, TenantId};
use docpipe_embed::ModelDir;
use docpipe_milvus::MilvusStore;
use docpipe_parsed::ParsedCopies;
use docpipe_pipeline::{Generations, no_wrapping, pipeline_version, pipeline_version_in_format};
use docpipe_queue::Broker;
use docpipe_search::{Mode, Searcher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Queries with answers in the fixtures corpus.
const QUERIES: [&str; 4] = [
    "which flag lists hidden dot files",
    "feeding a sourdough starter",
    "what bees do in winter",
    "quorum queues and publisher confirms",
];

/// `docpipe backfill DIR --tenant T --wait --json`, which must succeed.
async fn backfill(pipeline: &Path, dir: &Path, tenant: &str) -> serde_json::Value {
    let mut command = docpipe(pipeline);
    command
        .args(["backfill", "--tenant", tenant, "--wait", "--json"])
        .arg(dir);
    let output = run(command).await;
    assert!(output.status.success(), "backfill of {}", dir.display());
    json(&output)
}

/// A small HTML page with a word found nowhere else: `marker`.
fn page(dir: &Path, name: &str, marker: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            "<html><head><title>Hive note {marker}</title></head><body><h1>Hive note</h1>\
             <p>Inspection note {marker}: the colony was calm, the queen was seen, and \
             three frames of capped brood were found.</p></body></html>"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reindex_to_smaller_chunks_keeps_searches_answered_loses_no_upload_and_rolls_back() {
    let mut pipeline = TestPipeline::start_with(
        "reindex",
        |config| config.chunking.max_tokens = 256,
        |store| store,
    )
    .await;
    let old_pipeline = write_pipeline(&pipeline.config, pipeline.scratch.path());
    let corpus = common::fixtures().join("corpus");
    let indexed = backfill(&old_pipeline, &corpus, "ops").await;
    assert_eq!(indexed["indexed"], 8, "{indexed}");

    // Searchers and an upload service carry on through the whole re-index.
    let searcher = Arc::new(Searcher::open(&pipeline.config).await.unwrap());
    let tenant = TenantId::new("ops").unwrap();
    let old_version = searcher.live_version().await.unwrap();
    for query in QUERIES {
        let hits = searcher.search(&tenant, query, Mode::Hybrid, 5).await;
        assert!(!hits.unwrap().is_empty(), "{query} has answers before");
    }
    let reindexing = Arc::new(AtomicBool::new(true));
    let searching = tokio::spawn({
        let (searcher, tenant, reindexing) = (searcher.clone(), tenant.clone(), reindexing.clone());
        async move {
            let (mut searches, mut unanswered) = (0, Vec::new());
            while reindexing.load(Ordering::SeqCst) {
                for query in QUERIES {
                    let hits = searcher.search(&tenant, query, Mode::Hybrid, 5).await;
                    match hits {
                        Ok(hits) if !hits.is_empty() => searches += 1,
                        other => unanswered.push(format!("{query}: {other:?}")),
                    }
                }
            }
            (searches, unanswered)
        }
    });
    let uploads_dir = pipeline.scratch.path().join("uploads");
    let uploading = tokio::spawn({
        let (config, reindexing) = (pipeline.config.clone(), reindexing.clone());
        async move {
            let broker = Broker::connect(&config.queue, &config.retry).await.unwrap();
            let publisher = broker.publisher().await.unwrap();
            let mut uploaded = Vec::new();
            while reindexing.load(Ordering::SeqCst) {
                let marker = format!("zyxupload{}", uploaded.len());
                let path = page(&uploads_dir, &format!("{marker}.html"), &marker);
                let request = IngestRequest::for_file(
                    TenantId::new("ops").unwrap(),
                    DocumentId::new(marker.clone()).unwrap(),
                    common::file_uri(&path),
                );
                publisher.publish_ingest(&request, None).await.unwrap();
                uploaded.push(marker);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            broker.close().await;
            uploaded
        }
    });

    let mut smaller = pipeline.config.clone();
    smaller.chunking.max_tokens = 128;
    let new_pipeline = pipeline.scratch.path().join("smaller.toml");
    std::fs::write(&new_pipeline, smaller.to_toml()).unwrap();
    let mut command = docpipe(&new_pipeline);
    command.args(["reindex", "--json"]);
    let reindex = run(command).await;
    reindexing.store(false, Ordering::SeqCst);
    assert!(reindex.status.success());
    let report = json(&reindex);
    let (searches, unanswered) = searching.await.unwrap();
    let uploaded = uploading.await.unwrap();

    assert_eq!(report["switched"], true, "{report}");
    assert!(
        report["chunks_after"].as_u64() > report["chunks_before"].as_u64(),
        "128-token chunks are more numerous: {report}"
    );
    assert!(searches > 0 && !uploaded.is_empty());
    assert!(
        unanswered.is_empty(),
        "{} of {} searches went unanswered during the re-index: {unanswered:?}",
        unanswered.len(),
        searches + unanswered.len()
    );

    // The same searcher follows the switch, without a restart.
    let new_version = searcher.live_version().await.unwrap();
    assert_ne!(new_version, old_version);
    assert_eq!(report["generation"], new_version.as_str());
    let alias = &pipeline.config.milvus.collection.clone();
    let milvus = MilvusStore::existing(&pipeline.config.milvus.url, alias)
        .await
        .unwrap();
    assert_eq!(
        milvus.aliased_collection(alias).await.unwrap(),
        Some(format!("{alias}_{}", new_version.digest())),
        "the alias points to the new generation"
    );
    // Every upload made during the re-index is found in the new generation.
    for marker in &uploaded {
        pipeline.event_for("ops", marker).await;
        let hits = searcher
            .search(&tenant, marker, Mode::Bm25, 1)
            .await
            .unwrap();
        assert_eq!(
            hits.first().map(|hit| hit.document_id.as_str()),
            Some(marker.as_str()),
            "upload {marker} is searchable after the switch"
        );
    }

    let generations = json(
        &run({
            let mut command = docpipe(&new_pipeline);
            command.args(["generations", "--json"]);
            command
        })
        .await,
    );
    let states: Vec<&str> = generations
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["previous", "live"], "{generations}");

    // Rolling back returns to the old generation, which was kept up to date.
    let mut command = docpipe(&new_pipeline);
    command.arg("rollback");
    assert!(run(command).await.status.success());
    assert_eq!(searcher.live_version().await.unwrap(), old_version);
    let last = uploaded.last().unwrap();
    let hits = searcher.search(&tenant, last, Mode::Bm25, 1).await.unwrap();
    assert_eq!(
        hits.first().map(|hit| hit.document_id.as_str()),
        Some(last.as_str())
    );
    assert_eq!(
        milvus.aliased_collection(alias).await.unwrap(),
        Some(format!("{alias}_{}", old_version.digest()))
    );
    pipeline.shutdown().await;
}

/// A family indexed by a docpipe older than the current index format:
/// its live generation, whose version was derived without a format, still
/// assembles (workers and searchers carry on as before the upgrade), and
/// `docpipe reindex` rebuilds it as a new generation in the current format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_in_an_older_index_format_is_still_served_until_reindex_rebuilds_it() {
    let scratch = tempfile::tempdir().unwrap();
    let config = common::unique_config("format", scratch.path());
    let model = ModelDir::open(&config.model.dir).unwrap();
    let first_format = pipeline_version_in_format(&config, &model, 1).unwrap();
    let older = Generation {
        index_format: 1,
        ..Generation::of(&config, first_format.clone(), GenerationState::Live)
    };
    docpipe_index::catalog(&config)
        .await
        .unwrap()
        .update(|generations| Ok(generations.bootstrap(older)))
        .await
        .unwrap();

    let generations = Generations::open(&config, no_wrapping())
        .await
        .expect("a generation of the first format assembles");
    let live = generations.live().await.unwrap();
    assert_eq!(live.generation.version, first_format);
    assert_ne!(pipeline_version(&config, &model).unwrap(), first_format);

    let pipeline = write_pipeline(&config, scratch.path());
    let mut command = docpipe(&pipeline);
    command.args(["reindex", "--json"]);
    let reindex = run(command).await;
    assert!(reindex.status.success());
    let report = json(&reindex);
    assert_eq!(report["switched"], true, "{report}");
    assert_eq!(report["previous"], first_format.as_str());

    let mut command = docpipe(&pipeline);
    command.args(["generations", "--json"]);
    let listed = json(&run(command).await);
    let formats: Vec<(&str, u64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["state"].as_str().unwrap(),
                row["index_format"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        formats,
        [("previous", 1), ("live", u64::from(INDEX_FORMAT))],
        "{listed}"
    );
    remove_resources(&config).await;
}

/// Workers and operators on different machines share nothing but the
/// services: parsed copies kept in S3 (SeaweedFS) by a worker process are
/// what a re-index, run as another process, rebuilds the new generation
/// from, and nothing lands in the local index directory's `parsed/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_rebuilds_from_parsed_copies_in_object_storage() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = common::unique_config("s3copies", scratch.path());
    config.chunking.max_tokens = 256;
    let location = common::parsed_copies_in_local_s3(&mut config);
    let pipeline = write_pipeline(&config, scratch.path());
    let log = scratch.path().join("worker.log");
    let _worker = DocpipeProcess::start_with(&pipeline, &log, |command| {
        common::with_local_s3_credentials(command);
    });
    // Sources that are gone by the time of the re-index: it can only
    // rebuild from the copies.
    let corpus = scratch.path().join("corpus");
    for entry in std::fs::read_dir(common::fixtures().join("corpus")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::create_dir_all(&corpus).unwrap();
            std::fs::copy(&path, corpus.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut command = docpipe(&pipeline);
    common::with_local_s3_credentials(&mut command)
        .args(["backfill", "--tenant", "ops", "--wait", "--json"])
        .arg(&corpus);
    let indexed = json(&run(command).await);
    let documents = indexed["indexed"].as_u64().unwrap();
    assert!(documents >= 3, "{indexed}");

    let copies = ParsedCopies::s3(&location, &common::local_s3()).unwrap();
    let bees = std::fs::read(corpus.join("beekeeping-seasons.html")).unwrap();
    let copy = copies.load(&ContentHash::of(&bees)).await.unwrap();
    assert!(copy.is_some_and(|parsed| parsed.text.contains("cluster")));
    assert!(!config.bm25.index_dir.join("parsed").exists());
    std::fs::remove_dir_all(&corpus).unwrap();

    let mut smaller = config.clone();
    smaller.chunking.max_tokens = 128;
    let new_pipeline = scratch.path().join("smaller.toml");
    std::fs::write(&new_pipeline, smaller.to_toml()).unwrap();
    let mut command = docpipe(&new_pipeline);
    common::with_local_s3_credentials(&mut command).args(["reindex", "--json"]);
    let reindex = run(command).await;
    assert!(reindex.status.success());
    let report = json(&reindex);
    assert_eq!(report["switched"], true, "{report}");
    assert_eq!(report["documents"], documents, "{report}");
    remove_resources(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_halfway_publishes_only_the_remainder_when_run_again() {
    let pipeline = TestPipeline::start("resume").await;
    let config_file = write_pipeline(&pipeline.config, pipeline.scratch.path());
    let docs = pipeline.scratch.path().join("docs");
    for index in 0..12 {
        page(
            &docs,
            &format!("note-{index:02}.html"),
            &format!("zyxnote{index}"),
        );
    }

    // Published slowly, then killed as a crash or a cancelled cron job would be.
    let mut first = docpipe(&config_file)
        .args(["backfill", "--tenant", "ops", "--max-rate", "4"])
        .arg(&docs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let done = pipeline.settled_document_count().await;
    assert!(
        0 < done && done < 12,
        "killed halfway: {done} of 12 indexed"
    );

    let summary = backfill(&config_file, &docs, "ops").await;
    assert_eq!(summary["skipped"], done, "{summary}");
    assert_eq!(summary["published"], 12 - done, "{summary}");
    assert_eq!(summary["indexed"], 12 - done, "{summary}");
    assert_eq!(summary["failed"], serde_json::json!({}));

    let (milvus, tantivy) = (
        pipeline.components.index.stats().await.unwrap().milvus,
        pipeline.components.index.stats().await.unwrap().listed(),
    );
    assert_eq!((milvus.documents, tantivy.documents), (12, 12));
    let mut chunks = 0;
    for index in 0..12 {
        let ids = pipeline
            .stored_chunk_ids("ops", &format!("note-{index:02}"))
            .await;
        assert!(!ids.is_empty());
        chunks += ids.len() as u64;
    }
    assert_eq!(
        (milvus.chunks, tantivy.chunks),
        (chunks, chunks),
        "no duplicate or orphan chunks"
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_from_the_directory_is_removed_by_the_next_backfill_and_nothing_else() {
    let mut pipeline = TestPipeline::start("removal").await;
    let config_file = write_pipeline(&pipeline.config, pipeline.scratch.path());
    let docs = pipeline.scratch.path().join("docs");
    page(&docs, "kept.html", "zyxkept");
    page(&docs, "sub/gone.html", "zyxgone");
    assert_eq!(backfill(&config_file, &docs, "ops").await["indexed"], 2);
    // The same directory in another tenant, and an upload from elsewhere.
    assert_eq!(backfill(&config_file, &docs, "other").await["indexed"], 2);
    let elsewhere = common::fixtures().join("corpus/man-ls.1.html");
    pipeline
        .publish_file("ops", "sub/elsewhere", &elsewhere)
        .await;
    pipeline.event_for("ops", "sub/elsewhere").await;
    let untouched = [
        ("ops", "kept"),
        ("ops", "sub/elsewhere"),
        ("other", "kept"),
        ("other", "sub/gone"),
    ];
    let mut before = Vec::new();
    for (tenant, document) in untouched {
        before.push(pipeline.stored_chunk_ids(tenant, document).await);
    }

    std::fs::remove_file(docs.join("sub/gone.html")).unwrap();
    let summary = backfill(&config_file, &docs, "ops").await;
    assert_eq!(
        (
            &summary["published"],
            &summary["skipped"],
            &summary["removed"]
        ),
        (&0.into(), &1.into(), &1.into()),
        "nothing to index, one document already current, one removed: {summary}"
    );
    assert!(
        pipeline
            .stored_chunk_ids("ops", "sub/gone")
            .await
            .is_empty()
    );
    for ((tenant, document), chunks) in untouched.into_iter().zip(before) {
        assert_eq!(
            pipeline.stored_chunk_ids(tenant, document).await,
            chunks,
            "{tenant}/{document} is untouched"
        );
    }
    pipeline.shutdown().await;
}
