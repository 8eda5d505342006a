//! Hostile and broken input: every case ends in the dead-letter queue with
//! a specific reason while the worker keeps indexing good documents —
//! among them zip bombs, billion laughs and external entities, encrypted
//! and corrupt Office files, sheets of too many cells and RTF nested too
//! deep.
//! (Malformed JSON, schema versions, missing fields and tenant separation
//! are covered in `ingest.rs`.)

mod common;

use common::TestPipeline;
use docpipe_core::{DocumentEvent, TenantId};
use serde_json::json;
use std::path::Path;

fn file_request(document: &str, path: &Path, content_type: Option<&str>) -> String {
    let mut request = json!({"schema_version": 1, "document_id": document, "tenant": "acme",
                             "source": {"type": "file", "uri": common::file_uri(path)}});
    if let Some(content_type) = content_type {
        request["content_type"] = json!(content_type);
    }
    request.to_string()
}

fn uri_request(document: &str, uri: &str) -> String {
    json!({"schema_version": 1, "document_id": document, "tenant": "acme",
           "source": {"type": "file", "uri": uri}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_is_dead_lettered_with_a_specific_reason() {
    let mut pipeline = TestPipeline::start_with(
        "hostile",
        |config| {
            config.limits.max_document_bytes = 1 << 20;
            config.sources.max_inline_bytes = 1024;
            config.limits.max_archive_entries = 1_000;
            config.limits.max_sheet_cells = 100_000;
        },
        |store| store,
    )
    .await;
    let scratch = pipeline.scratch.path().to_owned();
    let fixtures = common::fixtures();
    let bad = fixtures.join("bad");

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.html"), "<p>secret</p>").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.html"),
        scratch.join("escape.html"),
    )
    .unwrap();
    std::fs::write(
        scratch.join("many-pages.pdf"),
        docpipe_bench::text_pdf(&vec![Vec::new(); 3_000]),
    )
    .unwrap();
    std::fs::write(
        scratch.join("deep.html"),
        format!("<html><body>{}", "<div>".repeat(50_000)),
    )
    .unwrap();
    std::fs::write(
        scratch.join("huge.html"),
        format!("<html><body><p>{}</p>", "words ".repeat(400_000)),
    )
    .unwrap();
    let dotdot = format!("file://{}/../Cargo.toml", fixtures.display());

    let cases: Vec<(&str, String)> = vec![
        ("source_outside_roots", uri_request("dotdot", &dotdot)),
        (
            "source_outside_roots",
            file_request("symlink", &scratch.join("escape.html"), None),
        ),
        (
            "invalid_source",
            uri_request("http", "http://127.0.0.1/doc.pdf"),
        ),
        (
            "invalid_source",
            uri_request("ftp", "ftp://127.0.0.1/doc.pdf"),
        ),
        (
            "invalid_source",
            uri_request("remote-host", "file://fileserver/doc.pdf"),
        ),
        (
            "source_not_found",
            file_request("missing", &scratch.join("nope.pdf"), None),
        ),
        (
            "unsupported_content",
            file_request("zero-bytes", &bad.join("empty.html"), None),
        ),
        (
            "unsupported_content",
            file_request("garbage", &bad.join("not-a-pdf.pdf"), None),
        ),
        (
            "corrupt_pdf",
            file_request("truncated", &bad.join("truncated.pdf"), None),
        ),
        (
            "no_text",
            file_request("scanned", &bad.join("no-text.pdf"), None),
        ),
        (
            "no_text",
            file_request("whitespace", &bad.join("whitespace-only.html"), None),
        ),
        (
            "encrypted_pdf",
            file_request("encrypted", &bad.join("encrypted.pdf"), None),
        ),
        (
            "too_many_pages",
            file_request("many-pages", &scratch.join("many-pages.pdf"), None),
        ),
        (
            "html_too_deep",
            file_request("deep", &scratch.join("deep.html"), None),
        ),
        (
            "document_too_large",
            file_request("huge", &scratch.join("huge.html"), None),
        ),
        (
            "content_type_mismatch",
            file_request(
                "mislabelled",
                &fixtures.join("corpus/man-ls.1.html"),
                Some("application/pdf"),
            ),
        ),
        (
            "unsupported_content_type",
            file_request(
                "word",
                &fixtures.join("corpus/man-ls.1.html"),
                Some("application/msword"),
            ),
        ),
        (
            "compression_ratio_too_high",
            file_request("zip-bomb", &bad.join("zip-bomb.docx"), None),
        ),
        (
            "xml_dtd_refused",
            file_request("billion-laughs", &bad.join("billion-laughs.docx"), None),
        ),
        (
            "xml_dtd_refused",
            file_request("external-entity", &bad.join("external-entity.docx"), None),
        ),
        (
            "encrypted_document",
            file_request("encrypted-docx", &bad.join("encrypted.docx"), None),
        ),
        (
            "encrypted_document",
            file_request("encrypted-odt", &bad.join("encrypted.odt"), None),
        ),
        (
            "corrupt_document",
            file_request("corrupt-docx", &bad.join("corrupt.docx"), None),
        ),
        (
            "unsupported_content",
            file_request("legacy-doc", &bad.join("legacy.doc"), None),
        ),
        (
            "unsupported_content",
            file_request("binary-txt", &bad.join("not-utf8.txt"), Some("text/plain")),
        ),
        (
            "too_many_cells",
            file_request("many-cells", &bad.join("many-cells.xlsx"), None),
        ),
        (
            "too_many_entries",
            file_request("many-entries", &bad.join("many-entries.docx"), None),
        ),
        (
            "rtf_too_deep",
            file_request("deep-rtf", &bad.join("deep-nesting.rtf"), None),
        ),
        (
            "document_too_large",
            json!({"schema_version": 1, "document_id": "inline-huge", "tenant": "acme",
            "source": {"type": "inline", "base64": "PHA+".repeat(1000)}})
            .to_string(),
        ),
    ];
    for (_, body) in &cases {
        pipeline
            .publisher
            .publish_ingest_body(body.as_bytes(), None)
            .await
            .unwrap();
    }
    // Good documents keep flowing: a windows-1252 page and an inline one.
    let legacy = fixtures.join("corpus/beekeeping-seasons.html");
    pipeline
        .publisher
        .publish_ingest_body(
            file_request("legacy-charset", &legacy, None).as_bytes(),
            None,
        )
        .await
        .unwrap();
    let inline = json!({"schema_version": 1, "document_id": "inline", "tenant": "acme",
        "source": {"type": "inline", "base64": "PGgxPklubGluZTwvaDE+PHA+U21hbGwgZG9jdW1lbnRzIHRyYXZlbCBpbnNpZGUgdGhlIG1lc3NhZ2UuPC9wPg=="}});
    pipeline
        .publisher
        .publish_ingest_body(inline.to_string().as_bytes(), None)
        .await
        .unwrap();

    let events = pipeline.events(cases.len() + 2).await;
    let indexed: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            DocumentEvent::Indexed { document_id, .. } => Some(document_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(indexed.len(), 2, "{events:#?}");
    assert!(
        indexed.contains(&"legacy-charset".to_owned()) && indexed.contains(&"inline".to_owned())
    );

    pipeline.assert_dead_lettered(&cases).await;

    // The windows-1252 page was decoded, not rejected or mangled.
    let acme = TenantId::new("acme").unwrap();
    let index = &pipeline.components.index;
    let hits = index.keyword(&(&acme).into(), "Warré", 5).await.unwrap();
    let chunks: Vec<_> = hits.iter().map(|hit| hit.chunk_id.clone()).collect();
    let shown = index.chunk_texts(&acme, &chunks).await.unwrap();
    assert!(
        shown.values().any(|shown| shown.text.contains("Warré")),
        "{hits:?}"
    );
    pipeline.shutdown().await;
}
