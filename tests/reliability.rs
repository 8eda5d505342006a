//! Nothing lost, nothing duplicated: unchanged documents, the retry path
//! through delay queues, dead letters with their history, and replay.

mod common;

use common::{FailingWrites, TestPipeline, indexed_chunks};
use docpipe_core::{DocumentEvent, PipelineConfig};
use std::time::Duration;

/// Fast retries for tests: no in-process retries, 200 ms then 400 ms delays.
fn quick_retries(config: &mut PipelineConfig) {
    config.retry.in_process_retries = 0;
    config.retry.max_attempts = 3;
    config.retry.first_delay_ms = 200;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_an_unchanged_document_is_acknowledged_without_reindexing() {
    let mut pipeline = TestPipeline::start("unchanged").await;
    let page = common::fixtures().join("corpus/articles/bm25-ranking-explained.html");
    pipeline.publish_file("acme", "bm25", &page).await;
    let chunks = indexed_chunks(&pipeline.event_for("acme", "bm25").await);

    pipeline.publish_file("acme", "bm25", &page).await;
    match pipeline.event_for("acme", "bm25").await {
        DocumentEvent::Unchanged { chunks: again, .. } => assert_eq!(again, chunks),
        other => panic!("expected document.unchanged, got {other:?}"),
    }
    let stats = pipeline.components.index.stats().await.unwrap().listed();
    assert_eq!((stats.documents, stats.chunks), (1, u64::from(chunks)));
    let summary = pipeline.shutdown().await;
    assert_eq!((summary.indexed, summary.unchanged), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_document_finish_and_acks_it() {
    // Store writes take three seconds: the shutdown arrives mid-document.
    let mut pipeline = TestPipeline::start_with(
        "drain",
        |_| {},
        |store| FailingWrites::slow(store, Duration::from_secs(3)),
    )
    .await;
    let page = common::fixtures().join("corpus/man-ls.1.html");
    pipeline.publish_file("acme", "man-ls.1", &page).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let summary = pipeline.stop_worker().await;
    assert_eq!(summary.indexed, 1, "the in-flight document finished");
    indexed_chunks(&pipeline.event_for("acme", "man-ls.1").await);
    let stored = pipeline.stored_chunk_ids("acme", "man-ls.1").await;
    assert!(!stored.is_empty());
    let depths = pipeline.broker.queue_depths().await.unwrap();
    assert_eq!(depths.ingest, 0, "acknowledged, so not back in the queue");
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_on_two_attempts_succeeds_on_the_third() {
    // Each store fails its first two writes: attempts 1 and 2 fail, 3 succeeds.
    let mut pipeline = TestPipeline::start_with("retry", quick_retries, |store| {
        FailingWrites::wrap(store, 2)
    })
    .await;
    let page = common::fixtures().join("corpus/man-ls.1.html");
    pipeline.publish_file("acme", "man-ls.1", &page).await;
    let chunks = indexed_chunks(&pipeline.event_for("acme", "man-ls.1").await);
    let stats = pipeline.components.index.stats().await.unwrap().milvus;
    assert_eq!(
        stats.chunks,
        u64::from(chunks),
        "indexed once, no duplicates"
    );
    assert!(pipeline.broker.dead_letters(10).await.unwrap().is_empty());
    let summary = pipeline.shutdown().await;
    assert_eq!(
        (summary.retried, summary.indexed, summary.dead_lettered),
        (2, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_always_fails_transiently_is_dead_lettered_with_its_history() {
    let mut pipeline = TestPipeline::start_with("exhausted", quick_retries, |store| {
        FailingWrites::wrap(store, u32::MAX)
    })
    .await;
    let page = common::fixtures().join("corpus/man-ls.1.html");
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let request = docpipe_core::IngestRequest::for_file(
        docpipe_core::TenantId::new("acme").unwrap(),
        docpipe_core::DocumentId::new("man-ls.1").unwrap(),
        common::file_uri(&page),
    );
    pipeline
        .publisher
        .publish_ingest(&request, Some(traceparent))
        .await
        .unwrap();
    match pipeline.event_for("acme", "man-ls.1").await {
        DocumentEvent::Failed {
            error_class,
            error_code,
            ..
        } => {
            assert_eq!(error_class, docpipe_core::ErrorClass::Transient);
            assert_eq!(error_code, "store_unavailable");
        }
        other => panic!("expected document.failed, got {other:?}"),
    }
    let letters = pipeline.broker.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.body, request.encode(), "the original body is kept");
    assert_eq!(letter.history.attempts, 3);
    assert_eq!(
        letter.history.errors.len(),
        3,
        "one line per attempt: {:?}",
        letter.history.errors
    );
    assert!(
        letter
            .history
            .errors
            .iter()
            .all(|error| error.contains("injected outage"))
    );
    let first = letter.history.first_failed_at_unix_ms.unwrap();
    assert!(
        first < letter.failed_at_unix_ms,
        "the delays separate first and last failure"
    );
    assert_eq!(
        letter.traceparent.as_deref(),
        Some(traceparent),
        "trace context survives retries"
    );
    let summary = pipeline.shutdown().await;
    assert_eq!(
        (summary.retried, summary.dead_lettered, summary.indexed),
        (2, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_can_be_replayed_after_the_cause_is_fixed() {
    let mut pipeline = TestPipeline::start("replay").await;
    let late = pipeline.scratch.path().join("late.html");
    pipeline.publish_file("acme", "late", &late).await;
    match pipeline.event_for("acme", "late").await {
        DocumentEvent::Failed { error_code, .. } => assert_eq!(error_code, "source_not_found"),
        other => panic!("expected document.failed, got {other:?}"),
    }
    // The fix: the file arrives. Replay everything in the dead-letter queue.
    std::fs::write(
        &late,
        "<html><body><h1>Late</h1><p>It arrived after all.</p></body></html>",
    )
    .unwrap();
    let replayed = pipeline.broker.replay_dead_letters(|_| true).await.unwrap();
    assert_eq!(replayed.len(), 1);
    indexed_chunks(&pipeline.event_for("acme", "late").await);
    assert!(
        pipeline.broker.dead_letters(10).await.unwrap().is_empty(),
        "replayed letters leave the queue"
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_published_back_to_back_leave_the_stores_agreeing() {
    let mut pipeline = TestPipeline::start("versions").await;
    let (first, second) = (
        pipeline.scratch.path().join("v1.html"),
        pipeline.scratch.path().join("v2.html"),
    );
    let version = |topic: &str, sections: usize| {
        let body: String = (0..sections)
            .map(|index| {
                format!(
                    "<h2>{topic} {index}</h2><p>{}</p>",
                    format!("All about {topic}, part {index}. ").repeat(20)
                )
            })
            .collect();
        format!("<html><body>{body}</body></html>")
    };
    std::fs::write(&first, version("kites", 5)).unwrap();
    std::fs::write(&second, version("gliders", 2)).unwrap();
    // Both deliveries are in flight at once (prefetch 4).
    pipeline.publish_file("acme", "craft", &first).await;
    pipeline.publish_file("acme", "craft", &second).await;
    pipeline.events(2).await;

    // Asserts that both stores hold the same, single version.
    let chunks = pipeline.stored_chunk_ids("acme", "craft").await;
    assert!(!chunks.is_empty());
    pipeline.shutdown().await;
}
