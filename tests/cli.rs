//! The `docpipe` binary as operators and upload services use it: a worker
//! process, `backfill --wait`, `search`, `eval`, `status`, and SIGTERM.

mod common;

use common::{DocpipeProcess, docpipe, json, remove_resources};
use docpipe_milvus::MilvusStore;
use std::path::Path;
use std::process::{Command, Output};

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("docpipe runs");
    if !output.status.success() {
        eprintln!("stderr: {}", String::from_utf8_lossy(&output.stderr));
    }
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_wait_search_eval_status_and_a_graceful_worker() {
    let scratch = tempfile::tempdir().unwrap();
    let config = common::unique_config("cli", scratch.path());
    let pipeline = scratch.path().join("pipeline.toml");
    std::fs::write(&pipeline, config.to_toml()).unwrap();
    let log = scratch.path().join("worker.log");
    let mut worker = DocpipeProcess::start(&pipeline, &log);

    let corpus = common::fixtures().join("corpus");
    let backfill = run(docpipe(&pipeline)
        .args(["backfill", "--tenant", "cli", "--wait", "--json"])
        .arg(&corpus));
    assert!(backfill.status.success());
    let summary = json(&backfill);
    assert_eq!(summary["indexed"], 8, "{summary}");
    assert_eq!(summary["failed"], serde_json::json!({}));

    // The backfill settled the index: every chunk sits in a sealed segment
    // a query node serves, none in a growing segment that Milvus searches
    // through its approximate interim index (about 2 points of recall lost
    // until it seals them on its own, ten minutes later).
    let status = json(&run(docpipe(&pipeline).args(["status", "--json"])));
    let alias = &config.milvus.collection;
    let live = MilvusStore::existing(&config.milvus.url, alias)
        .await
        .unwrap()
        .aliased_collection(alias)
        .await
        .unwrap()
        .expect("the alias names the live generation");
    let served = MilvusStore::existing(&config.milvus.url, &live)
        .await
        .unwrap()
        .served_sealed_rows()
        .await
        .unwrap();
    assert!(
        served >= status["milvus"]["chunks"].as_u64().unwrap(),
        "{served} sealed rows served: {status}"
    );

    // More than 12 documents in every mode (it used to exceed Milvus' HNSW
    // breadth), and the same words with punctuation.
    let search = |mode: &str, top_k: &str, query: &str| {
        let output = run(docpipe(&pipeline).args([
            "search", "--tenant", "cli", "--json", "--mode", mode, "--top-k", top_k, query,
        ]));
        assert!(output.status.success(), "{mode}: {query}");
        json(&output)
    };
    for mode in ["dense", "hybrid", "bm25"] {
        let hits = search(mode, "13", "\"which flag: lists (hidden) dot-files");
        assert_eq!(hits[0]["document_id"], "man-ls.1", "{mode}");
    }

    let hits = search("hybrid", "3", "which flag lists hidden dot files");
    assert_eq!(hits[0]["document_id"], "man-ls.1", "{hits}");
    assert!(hits.as_array().unwrap().len() <= 3);

    let eval = run(docpipe(&pipeline)
        .args(["eval", "--tenant", "cli", "--json", "--min-recall", "0.9"])
        .args(["--k", "13"])
        .arg(common::fixtures().join("queries.jsonl")));
    assert!(eval.status.success(), "the gold set passes the recall gate");
    assert_eq!(
        json(&eval).as_array().unwrap().len(),
        3,
        "one report per mode"
    );

    let status = json(&run(docpipe(&pipeline).args(["status", "--json"])));
    assert_eq!(status["milvus"]["documents"], 8, "{status}");
    assert_eq!(status["tantivy"], status["milvus"]);
    assert_eq!(status["queues"]["ingest"], 0);

    // A pipeline file naming another index family has nothing to
    // re-index, and the error says what to change and where the index is.
    let mut elsewhere = config.clone();
    elsewhere.milvus.collection = format!("{}_elsewhere", config.milvus.collection);
    elsewhere.bm25.index_dir = scratch.path().join("elsewhere");
    let elsewhere_file = scratch.path().join("elsewhere.toml");
    std::fs::write(&elsewhere_file, elsewhere.to_toml()).unwrap();
    let reindex = run(docpipe(&elsewhere_file).arg("reindex"));
    assert_eq!(reindex.status.code(), Some(1));
    let message = String::from_utf8_lossy(&reindex.stderr);
    assert!(
        message.contains("[bm25] index_dir of the pipeline that indexed"),
        "{message}"
    );
    assert!(
        message.contains(&config.bm25.index_dir.display().to_string()),
        "{message}"
    );

    assert!(worker.terminate(), "SIGTERM ends the worker with status 0");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("worker exited cleanly"), "{log}");
    remove_resources(&config).await;
}

#[test]
fn every_command_documents_itself() {
    for command in ["worker", "publish", "backfill", "search", "eval", "status"] {
        let output = Command::new(env!("CARGO_BIN_EXE_docpipe"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command} --help");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage: docpipe"),
            "{command}"
        );
    }
}

#[test]
fn bad_invocations_fail_with_a_clear_message() {
    let missing = run(Command::new(env!("CARGO_BIN_EXE_docpipe")).args([
        "--pipeline",
        "no/such.toml",
        "status",
    ]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read pipeline file no/such.toml")
    );

    let bad_tenant =
        run(docpipe(Path::new("pipelines/default.toml")).args(["search", "--tenant", "a b", "x"]));
    assert_eq!(bad_tenant.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_tenant.stderr).contains("invalid --tenant"));

    let usage = Command::new(env!("CARGO_BIN_EXE_docpipe"))
        .args(["search", "--mode", "fuzzy", "x"])
        .output()
        .unwrap();
    assert_eq!(
        usage.status.code(),
        Some(2),
        "usage errors exit 2, as clap does"
    );
}

#[test]
fn the_bench_runs_end_to_end_and_reports_its_ratios() {
    let scratch = tempfile::tempdir().unwrap();
    let config = common::unique_config("bench", scratch.path());
    let pipeline = common::write_pipeline(&config, scratch.path());
    let output = run(docpipe(&pipeline).args([
        "bench",
        "--documents",
        "6",
        "--scale",
        "2",
        "--memory-runs",
        "2",
        "--long-pdf-pages",
        "20",
        "--rounds",
        "2",
        "--json",
    ]));
    assert!(output.status.success());
    let report = json(&output);
    assert_eq!(report["documents"], 6, "{report}");
    for rate in [
        "parse_mb_per_s",
        "chunk_per_s",
        "milvus_chunks_per_s",
        "tantivy_chunks_per_s",
        "end_to_end_chunks_per_s",
        "end_to_end_vs_embed_only",
        "sustained_vs_embed_only",
        "end_to_end_vs_fastest_embed_only",
    ] {
        assert!(
            report[rate].as_f64().is_some_and(|value| value > 0.0),
            "{rate}: {report}"
        );
    }
    assert_eq!(
        report["embed"].as_array().unwrap().len(),
        6,
        "fp32 and int8: one thread, all threads in one session, one session per thread: {report}"
    );
    assert_eq!(
        report["rounds"].as_array().unwrap().len(),
        2,
        "one end-to-end run per round: {report}"
    );
    assert_eq!(
        report["brackets"].as_array().unwrap().len(),
        3,
        "an embed-only pass before the first round and after each: {report}"
    );
    assert!(report["rss"]["peak_mib"].as_f64().is_some(), "{report}");
    assert_eq!(report["scaled_documents"], 12, "{report}");
    for (runs, corpus) in [
        ("fresh_rss", "the corpus"),
        ("scaled_rss", "the larger corpus"),
    ] {
        let runs = report[runs].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{corpus}, in two fresh processes: {report}");
        assert!(
            runs.iter().all(|run| run["peak_mib"].as_f64().is_some()),
            "{corpus}: {report}"
        );
    }
    assert!(
        report["scaled_vs_fresh_peak"]
            .as_f64()
            .is_some_and(|ratio| ratio > 0.0),
        "{report}"
    );
    let stall = &report["stall"];
    assert_eq!(stall["long_pdf_pages"], 20, "{report}");
    assert!(stall["beside_p95_s"].as_f64().is_some(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_lists_shows_and_replays_dead_letters() {
    let scratch = tempfile::tempdir().unwrap();
    let config = common::unique_config("dlq", scratch.path());
    let pipeline = common::write_pipeline(&config, scratch.path());
    // A dead letter as a worker would leave it.
    let broker = docpipe_queue::Broker::connect(&config.queue, &config.retry)
        .await
        .unwrap();
    let body = br#"{"schema_version": 1, "document_id": "late", "tenant": "acme", "source": {"type": "file", "uri": "file:///nowhere/late.html"}}"#;
    #[derive(Debug, thiserror::Error)]
    #[error("/nowhere/late.html does not exist")]
    struct Missing;
    impl docpipe_core::Classify for Missing {
        fn class(&self) -> docpipe_core::ErrorClass {
            docpipe_core::ErrorClass::Permanent
        }
        fn code(&self) -> &'static str {
            "source_not_found"
        }
    }
    let letter = docpipe_queue::DeadLetter::new(
        body,
        &Missing,
        docpipe_queue::FailureHistory::default().after(&Missing),
    );
    broker
        .publisher()
        .await
        .unwrap()
        .publish_dead_letter(&letter)
        .await
        .unwrap();

    let listed = json(&run(docpipe(&pipeline).args(["dlq", "list", "--json"])));
    assert_eq!(listed[0]["id"], letter.id.as_str(), "{listed}");
    assert_eq!(listed[0]["error_code"], "source_not_found");
    assert_eq!(listed[0]["attempts"], 1);

    let shown = json(&run(docpipe(&pipeline).args(["dlq", "show", &letter.id])));
    assert_eq!(shown["body"], String::from_utf8_lossy(body).as_ref());
    assert_eq!(
        shown["history"][0],
        "source_not_found: /nowhere/late.html does not exist"
    );

    let unknown = run(docpipe(&pipeline).args(["dlq", "replay", "no-such-id"]));
    assert_eq!(
        unknown.status.code(),
        Some(1),
        "replaying an unknown id is an error"
    );
    let replayed = run(docpipe(&pipeline).args(["dlq", "replay", &letter.id]));
    assert!(replayed.status.success());
    let depths = broker.queue_depths().await.unwrap();
    assert_eq!(
        (depths.ingest, depths.dead),
        (1, 0),
        "the letter went back to work"
    );
    broker.close().await;
    remove_resources(&config).await;
}
