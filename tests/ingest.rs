//! The ingestion spine end to end, on real RabbitMQ, Milvus, tantivy and
//! the real model: what a document goes through from publish to search.

mod common;

use common::{TestPipeline, indexed_chunks};
use docpipe_core::{DocumentEvent, DocumentId, TenantId};
use docpipe_search::{Mode, Searcher};

/// A searcher that sees every acknowledged write (Strong reads): these
/// tests search what they indexed a moment before.
async fn searcher(pipeline: &TestPipeline) -> Searcher {
    let mut config = pipeline.config.clone();
    config.milvus.search_consistency = docpipe_core::config::ReadConsistency::Strong;
    Searcher::open(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_pdf_is_indexed_in_both_stores_and_found_in_every_mode() {
    let mut pipeline = TestPipeline::start("publish").await;
    let pdf = common::fixtures().join("corpus/guides/rabbitmq-operations.pdf");
    pipeline
        .publish_file("acme", "guides/rabbitmq-operations", &pdf)
        .await;

    let event = pipeline
        .event_for("acme", "guides/rabbitmq-operations")
        .await;
    let chunks = indexed_chunks(&event);
    assert!(
        chunks >= 3,
        "a four-page PDF yields several chunks, got {chunks}"
    );
    let stored = pipeline
        .stored_chunk_ids("acme", "guides/rabbitmq-operations")
        .await;
    assert_eq!(stored.len(), chunks as usize);

    let searcher = searcher(&pipeline).await;
    let tenant = TenantId::new("acme").unwrap();
    for mode in Mode::ALL {
        let hits = searcher
            .search(
                &tenant,
                "dead-lettered messages and the x-death header",
                mode,
                5,
            )
            .await
            .unwrap();
        assert_eq!(
            hits[0].document_id.as_str(),
            "guides/rabbitmq-operations",
            "{mode:?}"
        );
        assert!(hits[0].chunk.page.is_some(), "PDF chunks carry their page");
    }
    let summary = pipeline.shutdown().await;
    assert_eq!((summary.indexed, summary.dead_lettered), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_pdf_and_a_photo_of_text_are_indexed_through_ocr_and_found() {
    let mut pipeline =
        TestPipeline::start_with("ocr", |config| config.parse.ocr = true, |store| store).await;
    let scan = common::fixtures().join("pdf/scanned.pdf");
    pipeline.publish_file("acme", "scans/logbook", &scan).await;

    let event = pipeline.event_for("acme", "scans/logbook").await;
    assert!(indexed_chunks(&event) >= 1, "{event:?}");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("pdf/scanned.json")).unwrap(),
    )
    .unwrap();
    let query = expected["must_contain"][0].as_str().unwrap();
    let searcher = searcher(&pipeline).await;
    let tenant = TenantId::new("acme").unwrap();
    for mode in [Mode::Bm25, Mode::Hybrid] {
        let hits = searcher.search(&tenant, query, mode, 5).await.unwrap();
        assert_eq!(hits[0].document_id.as_str(), "scans/logbook", "{mode:?}");
        // The chunk says OCR read it, and how sure Tesseract was.
        let confidence = hits[0].chunk.ocr_confidence;
        assert!(
            confidence.is_some_and(|confidence| (50.0..=100.0).contains(&confidence)),
            "{mode:?}: {confidence:?}"
        );
    }
    // A phone photo of a printed notice: tilted, blurred, unevenly lit.
    let photo = common::fixtures().join("ocr/notice-photo.jpg");
    pipeline
        .publish_file("acme", "notices/orchard", &photo)
        .await;
    let event = pipeline.event_for("acme", "notices/orchard").await;
    assert!(indexed_chunks(&event) >= 1, "{event:?}");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixtures().join("ocr/notice-photo.json")).unwrap(),
    )
    .unwrap();
    let query = expected["query"].as_str().unwrap();
    for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid] {
        let hits = searcher.search(&tenant, query, mode, 5).await.unwrap();
        assert_eq!(hits[0].document_id.as_str(), "notices/orchard", "{mode:?}");
        assert!(hits[0].chunk.ocr_confidence.is_some(), "{mode:?}");
    }
    let summary = pipeline.shutdown().await;
    assert_eq!((summary.indexed, summary.dead_lettered), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reingesting_a_changed_document_leaves_exactly_the_new_chunks() {
    let mut pipeline = TestPipeline::start("reingest").await;
    let page = pipeline.scratch.path().join("notes.html");
    let paragraphs = |topic: &str, count: usize| -> String {
        (0..count)
            .map(|index| {
                format!(
                    "<h2>{topic} part {index}</h2><p>{}</p>",
                    format!("The {topic} detail number {index} is explained here at some length. ")
                        .repeat(12)
                )
            })
            .collect()
    };
    std::fs::write(
        &page,
        format!(
            "<html><title>Notes</title><body>{}</body></html>",
            paragraphs("zeppelin", 6)
        ),
    )
    .unwrap();
    pipeline.publish_file("acme", "notes", &page).await;
    let first = indexed_chunks(&pipeline.event_for("acme", "notes").await);
    let before = pipeline.stored_chunk_ids("acme", "notes").await;
    assert_eq!(before.len(), first as usize);

    std::fs::write(
        &page,
        format!(
            "<html><title>Notes</title><body>{}</body></html>",
            paragraphs("submarine", 2)
        ),
    )
    .unwrap();
    pipeline.publish_file("acme", "notes", &page).await;
    let second = indexed_chunks(&pipeline.event_for("acme", "notes").await);
    let after = pipeline.stored_chunk_ids("acme", "notes").await;
    assert_eq!(
        after.len(),
        second as usize,
        "exactly the new chunks remain"
    );
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "no old chunk survives"
    );

    let tenant = TenantId::new("acme").unwrap();
    let old_words = pipeline
        .components
        .index
        .keyword(&(&tenant).into(), "zeppelin", 10)
        .await
        .unwrap();
    assert!(old_words.is_empty(), "the old text is gone from BM25");
    let stats = pipeline.components.index.stats().await.unwrap().milvus;
    assert_eq!((stats.documents, stats.chunks), (1, u64::from(second)));
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dead_lettered_with_their_reason_while_good_ones_are_indexed() {
    let mut pipeline = TestPipeline::start("bad").await;
    let bad = common::fixtures().join("bad");
    let request = |document: &str, uri: String| {
        serde_json::json!({"schema_version": 1, "document_id": document, "tenant": "acme",
                           "source": {"type": "file", "uri": uri}})
        .to_string()
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "malformed_message",
            "{\"schema_version\": 1, \"document_id\": ".into(),
        ),
        (
            "unsupported_schema",
            r#"{"schema_version": 7, "document_id": "v7", "tenant": "acme"}"#.into(),
        ),
        (
            "invalid_message",
            r#"{"schema_version": 1, "document_id": "no-source", "tenant": "acme"}"#.into(),
        ),
        (
            "invalid_source",
            request("relative", "fixtures/bad/empty.html".into()),
        ),
        (
            "source_outside_roots",
            request("passwd", "file:///etc/passwd".into()),
        ),
        (
            "corrupt_pdf",
            request("truncated", common::file_uri(&bad.join("truncated.pdf"))),
        ),
        (
            "unsupported_content",
            request("empty", common::file_uri(&bad.join("empty.html"))),
        ),
        (
            "no_text",
            request(
                "whitespace",
                common::file_uri(&bad.join("whitespace-only.html")),
            ),
        ),
        (
            "no_text",
            request("scanned", common::file_uri(&bad.join("no-text.pdf"))),
        ),
    ];
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (_, body) in &cases {
        pipeline
            .publisher
            .publish_ingest_body(body.as_bytes(), Some(traceparent))
            .await
            .unwrap();
    }
    let good = common::fixtures().join("corpus/man-ls.1.html");
    pipeline.publish_file("acme", "man-ls.1", &good).await;

    // Deliveries are processed concurrently, so order is not guaranteed:
    // every bad message yields a failure event, the good one is indexed.
    let events = pipeline.events(cases.len() + 1).await;
    let failures = events
        .iter()
        .filter(|event| matches!(event, DocumentEvent::Failed { .. }))
        .count();
    assert_eq!(failures, cases.len());
    assert!(events.iter().any(|event| matches!(event, DocumentEvent::Indexed { document_id, .. } if document_id.as_str() == "man-ls.1")));

    let letters = pipeline.assert_dead_lettered(&cases).await;
    for (letter, (code, _)) in letters.iter().zip(&cases) {
        assert_eq!(letter.traceparent.as_deref(), Some(traceparent));
        if *code == "source_outside_roots" {
            assert!(
                letter.reason.contains("outside the allowed roots"),
                "{}",
                letter.reason
            );
        }
        if *code == "corrupt_pdf" {
            assert_eq!(
                letter.document_id.as_ref().map(DocumentId::as_str),
                Some("truncated")
            );
        }
    }

    let summary = pipeline.shutdown().await;
    assert_eq!(
        (summary.indexed, summary.dead_lettered, summary.retried),
        (1, cases.len() as u64, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_others_chunks() {
    let mut pipeline = TestPipeline::start("tenants").await;
    let bees = common::fixtures().join("corpus/beekeeping-seasons.html");
    let bread = common::fixtures().join("corpus/sourdough-bread.pdf");
    // The same document id in two tenants stays two documents.
    pipeline.publish_file("alpha", "shared", &bees).await;
    pipeline.publish_file("beta", "shared", &bread).await;
    indexed_chunks(&pipeline.event_for("alpha", "shared").await);
    indexed_chunks(&pipeline.event_for("beta", "shared").await);

    let alpha = pipeline.stored_chunk_ids("alpha", "shared").await;
    let beta = pipeline.stored_chunk_ids("beta", "shared").await;
    assert!(alpha.iter().all(|id| !beta.contains(id)));

    let searcher = searcher(&pipeline).await;
    let alpha_tenant = TenantId::new("alpha").unwrap();
    for mode in Mode::ALL {
        let hits = searcher
            .search(
                &alpha_tenant,
                "sourdough starter bread and bees in winter",
                mode,
                10,
            )
            .await
            .unwrap();
        assert!(!hits.is_empty(), "{mode:?} finds alpha's own document");
        for hit in hits {
            assert!(
                alpha.contains(&hit.chunk.chunk_id),
                "{mode:?} returned beta's chunk: {}",
                hit.chunk.text
            );
        }
    }
    pipeline.shutdown().await;
}
