//! The `milvus` backend, as deployed across machines: worker processes that
//! share nothing but RabbitMQ, Milvus with full-text search (milvus-lite
//! 3.2.2, `scripts/milvus-lite.sh`) and S3 (SeaweedFS), and searchers and
//! operators in other processes with no access to any worker's disk.

mod common;

use common::scenario::{Scenario, TENANT, expected_chunks};
use common::{docpipe, json, on_milvus_full_text_search, with_local_s3_credentials};
use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, StoreStats, TenantId};
use docpipe_queue::Broker;
use docpipe_search::Mode;
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs a `docpipe` command, with the local S3's credentials, to completion.
async fn run(mut command: Command) -> Output {
    with_local_s3_credentials(&mut command);
    common::run(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_backfill_and_one_killed_midway_loses_and_duplicates_nothing() {
    let scenario = Scenario::new("two_workers", 200, on_milvus_full_text_search).await;
    let mut survivor = scenario.worker(0);
    let mut victim = scenario.worker(1);
    scenario.publish_all().await;
    scenario.wait_until_some_indexed().await;
    victim.kill();
    scenario
        .wait_until_all_indexed(Duration::from_secs(900))
        .await;
    assert!(survivor.terminate(), "the surviving worker exits cleanly");
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

/// A second version of every document of `corpus`, in `dir`: the same
/// page with one more paragraph.
fn revise(corpus: &BTreeMap<String, PathBuf>, dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    corpus
        .iter()
        .map(|(id, path)| {
            let page = std::fs::read_to_string(path).unwrap().replace(
                "</body>",
                &format!("<h2>Revision</h2><p>Edition two of {id} adds this paragraph.</p></body>"),
            );
            let revised = dir.join(path.file_name().unwrap());
            std::fs::write(&revised, page).unwrap();
            (id.clone(), revised)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_in_flight_on_two_workers_end_as_the_newer_in_every_store() {
    // One delivery per worker at a time, so that consecutive messages (the
    // two versions of one document) are processed side by side.
    let scenario = Scenario::new("two_versions", 40, |config| {
        on_milvus_full_text_search(config);
        config.queue.prefetch = 1;
    })
    .await;
    let newer = revise(&scenario.corpus, &scenario.scratch.path().join("v2"));
    let _workers = [scenario.worker(0), scenario.worker(1)];
    let broker = Broker::connect(&scenario.config.queue, &scenario.config.retry)
        .await
        .unwrap();
    let events = broker.subscribe_events().await.unwrap();
    let publisher = broker.publisher().await.unwrap();
    let request = |path: &Path, id: &str, version: u64| {
        IngestRequest::for_file(
            TenantId::new(TENANT).unwrap(),
            DocumentId::new(id).unwrap(),
            common::file_uri(path),
        )
        .with_document_version(version)
    };
    for (index, (id, older)) in scenario.corpus.iter().enumerate() {
        let (first, second) = (request(older, id, 1), request(&newer[id], id, 2));
        // Half the documents publish the older version first, half last.
        let pair = if index % 2 == 0 {
            [first, second]
        } else {
            [second, first]
        };
        for request in pair {
            publisher.publish_ingest(&request, None).await.unwrap();
        }
    }
    let outcomes: Vec<DocumentEvent> = tokio::time::timeout(
        Duration::from_secs(600),
        events.take(2 * scenario.corpus.len()).collect(),
    )
    .await
    .expect("an event for every request");
    broker.close().await;
    let failures: Vec<&DocumentEvent> = outcomes
        .iter()
        .filter(|event| matches!(event, DocumentEvent::Failed { .. }))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");

    let expected = expected_chunks(&scenario.config, &newer);
    for (id, chunks) in &expected {
        let stored = common::stored_chunk_ids(scenario.index.as_ref(), TENANT, id).await;
        assert_eq!(&stored, chunks, "{id} holds exactly its newer version");
    }
    let stats = scenario.index.stats().await.unwrap();
    let wanted = StoreStats {
        documents: expected.len() as u64,
        chunks: expected.values().map(Vec::len).sum::<usize>() as u64,
    };
    assert_eq!(stats.milvus, wanted, "nothing of an older version is left");
    scenario.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_searcher_with_no_access_to_any_workers_disk_answers_through_a_reindex_and_a_rollback() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = common::unique_config("stateless", scratch.path());
    on_milvus_full_text_search(&mut config);
    config.chunking.max_tokens = 256;
    let workers_dir = scratch.path().join("worker-machine");
    std::fs::create_dir_all(&workers_dir).unwrap();
    let pipeline = common::write_pipeline(&config, &workers_dir);
    let _worker = common::DocpipeProcess::start_with(
        &pipeline,
        &scratch.path().join("worker.log"),
        |command| {
            with_local_s3_credentials(command);
        },
    );
    let corpus = common::fixtures().join("corpus");
    let mut backfill = docpipe(&pipeline);
    backfill
        .args(["backfill", "--tenant", "ops", "--wait", "--json"])
        .arg(&corpus);
    let indexed = json(&run(backfill).await);
    let documents = indexed["indexed"].as_u64().unwrap();
    assert!(documents >= 3, "{indexed}");
    assert!(
        !config.bm25.index_dir.exists(),
        "the milvus backend keeps nothing in bm25.index_dir"
    );

    // Another machine: its own pipeline file, an index directory that
    // does not exist, and a working directory of its own.
    let searchers_dir = scratch.path().join("searcher-machine");
    std::fs::create_dir_all(&searchers_dir).unwrap();
    let mut elsewhere = config.clone();
    elsewhere.bm25.index_dir = searchers_dir.join("never-created");
    let searcher_pipeline = common::write_pipeline(&elsewhere, &searchers_dir);
    let search = |mode: &'static str| {
        let mut command = docpipe(&searcher_pipeline);
        command
            .current_dir(&searchers_dir)
            .args(["search", "--tenant", "ops", "--mode", mode, "--json"])
            .arg("what bees do in winter");
        command
    };
    for mode in ["hybrid", "bm25", "dense"] {
        let output = run(search(mode)).await;
        assert!(output.status.success(), "{mode} search");
        let hits = json(&output);
        assert_eq!(
            hits[0]["document_id"], "beekeeping-seasons",
            "{mode}: {hits}"
        );
    }
    let mut status = docpipe(&searcher_pipeline);
    status.args(["status", "--json"]);
    let status = json(&run(status).await);
    assert_eq!(status["backend"], "milvus", "{status}");
    assert_eq!(status["milvus"]["documents"], documents, "{status}");

    // A re-index to smaller chunks, run from the searcher's machine, while
    // a searcher keeps asking.
    let searcher = docpipe_search::Searcher::open(&elsewhere).await.unwrap();
    let reindexing = Arc::new(AtomicBool::new(true));
    let searching = tokio::spawn({
        let reindexing = reindexing.clone();
        async move {
            let tenant = TenantId::new("ops").unwrap();
            let (mut answered, mut unanswered) = (0, Vec::new());
            while reindexing.load(Ordering::SeqCst) {
                let hits = searcher
                    .search(&tenant, "what bees do in winter", Mode::Hybrid, 5)
                    .await;
                match hits {
                    Ok(hits) if !hits.is_empty() => answered += 1,
                    other => unanswered.push(format!("{other:?}")),
                }
            }
            (answered, unanswered)
        }
    });
    let mut smaller = elsewhere.clone();
    smaller.chunking.max_tokens = 128;
    let smaller_pipeline = searchers_dir.join("smaller.toml");
    std::fs::write(&smaller_pipeline, smaller.to_toml()).unwrap();
    let mut reindex = docpipe(&smaller_pipeline);
    reindex.args(["reindex", "--json"]);
    let reindex = run(reindex).await;
    reindexing.store(false, Ordering::SeqCst);
    let (answered, unanswered) = searching.await.unwrap();
    assert!(reindex.status.success());
    assert!(answered > 0 && unanswered.is_empty(), "{unanswered:?}");
    let report = json(&reindex);
    assert_eq!(report["switched"], true, "{report}");
    assert_eq!(report["documents"], documents, "{report}");
    assert!(
        report["chunks_after"].as_u64() > report["chunks_before"].as_u64(),
        "{report}"
    );
    let output = run(search("hybrid")).await;
    assert_eq!(json(&output)[0]["document_id"], "beekeeping-seasons");

    let mut generations = docpipe(&searcher_pipeline);
    generations.args(["generations", "--json"]);
    let rows = json(&run(generations).await);
    let states: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["previous", "live"], "{rows}");

    let mut rollback = docpipe(&searcher_pipeline);
    rollback.arg("rollback");
    assert!(run(rollback).await.status.success());
    let output = run(search("hybrid")).await;
    assert_eq!(json(&output)[0]["document_id"], "beekeeping-seasons");
    common::remove_resources(&config).await;
}

#[tokio::test]
async fn the_milvus_backend_refuses_a_milvus_without_full_text_search_before_creating_anything() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = common::unique_config("old_milvus", scratch.path());
    config.index.backend = docpipe_core::config::IndexBackend::Milvus;
    let pipeline = common::write_pipeline(&config, scratch.path());
    let mut worker = docpipe(&pipeline);
    worker.arg("worker");
    let output = run(worker).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no full-text search") && stderr.contains("2.5"),
        "{stderr}"
    );
    let url = &config.milvus.url;
    for collection in [
        format!("{}_catalog", config.milvus.collection),
        format!("{}_", config.milvus.collection),
    ] {
        let milvus = docpipe_milvus::MilvusStore::existing(url, &collection)
            .await
            .unwrap();
        assert!(!milvus.exists().await.unwrap(), "{collection} was created");
    }
}
