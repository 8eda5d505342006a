//! The `milvus` backend's store against a real Milvus with full-text search
//! (`scripts/milvus-lite.sh start`; the URL comes from
//! DOCPIPE_MILVUS_FULLTEXT_URL, default http://127.0.0.1:19541), and its
//! refusal of a server without it (the Milvus 2.3.5 of
//! `scripts/milvus.sh start`, DOCPIPE_MILVUS_URL). Each test uses its own
//! collection and drops it.

use docpipe_core::testing::{assert_document_text, indexed_chunks, sorted_ids, write_guides};
use docpipe_core::{
    ChunkStore, Classify, DocumentId, ErrorClass, IndexedChunk, MetadataFilter, SearchScope,
    TenantId,
};
use docpipe_milvus::{FullTextStore, MilvusStore};
use serde_json::json;

const DIMENSION: usize = 8;

fn url() -> String {
    std::env::var("DOCPIPE_MILVUS_FULLTEXT_URL").unwrap_or_else(|_| "http://127.0.0.1:19541".into())
}

async fn store(name: &str) -> FullTextStore {
    let collection = format!("test_{name}_{}", std::process::id());
    FullTextStore::connect(&url(), &collection, DIMENSION)
        .await
        .expect("milvus-lite is running (scripts/milvus-lite.sh start)")
}

fn ids(tenant: &str, document: &str) -> (TenantId, DocumentId) {
    (
        TenantId::new(tenant).unwrap(),
        DocumentId::new(document).unwrap(),
    )
}

/// `texts` as chunks of version `document_version` of a document.
fn version(document: &str, texts: &[&str], document_version: u64) -> Vec<IndexedChunk> {
    indexed_chunks("acme", document, texts, DIMENSION)
        .into_iter()
        .map(|chunk| IndexedChunk {
            document_version,
            ..chunk
        })
        .collect()
}

#[tokio::test]
async fn replacing_a_document_leaves_exactly_the_new_chunks() {
    let store = store("replace").await;
    let (tenant, document) = ids("acme", "doc \u{e9}/1");
    let first = version("doc \u{e9}/1", &["one", "two", "three"], 1);
    store
        .replace_document(&tenant, &document, &first)
        .await
        .unwrap();
    let second = version("doc \u{e9}/1", &["one", "2", "3", "4"], 2);
    store
        .replace_document(&tenant, &document, &second)
        .await
        .unwrap();
    let mut stored = store.chunk_ids(&tenant, &document).await.unwrap();
    stored.sort();
    assert_eq!(stored, sorted_ids(&second));
    let documents = store.documents(None).await.unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].document_version, 2);
    store.collection().drop_collection().await.unwrap();
}

#[tokio::test]
async fn an_older_version_written_last_never_replaces_a_newer_one() {
    // Two workers: one read the document before either wrote, then wrote
    // version 1 after the other had written version 2 and cleaned up.
    let store = store("race").await;
    let (tenant, document) = ids("acme", "raced");
    let older = version("raced", &["old one", "old two", "shared"], 1);
    let newer = version("raced", &["new one", "shared"], 2);
    store
        .write_document(&tenant, &document, &newer, &[])
        .await
        .unwrap();
    store
        .write_document(&tenant, &document, &older, &[])
        .await
        .unwrap();
    let mut stored = store.chunk_ids(&tenant, &document).await.unwrap();
    stored.sort();
    assert_eq!(stored, sorted_ids(&newer), "only the newer version remains");
    let versions: Vec<Option<u64>> = store
        .document_chunks(&tenant, &document)
        .await
        .unwrap()
        .into_iter()
        .map(|chunk| chunk.document_version)
        .collect();
    assert!(
        versions.iter().all(|&version| version == Some(2)),
        "{versions:?}"
    );
    store.collection().drop_collection().await.unwrap();
}

#[tokio::test]
async fn keyword_and_dense_searches_stay_within_the_tenant_and_its_documents() {
    let store = store("search").await;
    for tenant in ["a", "b"] {
        let chunks: Vec<IndexedChunk> = indexed_chunks(
            tenant,
            "guide",
            &[
                "rabbitmq quorum queues replicate messages",
                "milvus stores dense vectors",
                "tantivy ranks words with bm25",
            ],
            DIMENSION,
        );
        let (tenant, document) = ids(tenant, "guide");
        store
            .write_document(&tenant, &document, &chunks, &[])
            .await
            .unwrap();
    }
    let tenant_a = TenantId::new("a").unwrap();
    let tenant = SearchScope::tenant(tenant_a.clone());
    let keyword = store.keyword(&tenant, "quorum queues", 10).await.unwrap();
    assert_eq!(keyword[0].ordinal, 0);
    assert_eq!(keyword.len(), 1, "only chunks with a query word match");

    let mut vector = vec![0.0; DIMENSION];
    vector[1] = 1.0;
    let dense = store.dense(&tenant, vector.clone(), 2).await.unwrap();
    assert_eq!(dense[0].ordinal, 1);

    // What a result shows is read apart, for the chunks shown only, and
    // only from the tenant's own chunks.
    let found = [keyword[0].chunk_id.clone(), dense[0].chunk_id.clone()];
    let shown = store.chunk_texts(&tenant_a, &found).await.unwrap();
    let quorum = &shown[&keyword[0].chunk_id];
    assert_eq!(quorum.text, "rabbitmq quorum queues replicate messages");
    assert_eq!(quorum.heading_path, ["Guide", "Part 0"]);
    assert_eq!(
        shown[&dense[0].chunk_id].text,
        "milvus stores dense vectors"
    );
    let tenant_b = TenantId::new("b").unwrap();
    assert!(
        store
            .chunk_texts(&tenant_b, &found)
            .await
            .unwrap()
            .is_empty()
    );

    for hit in dense.iter().chain(&keyword) {
        assert_eq!(hit.document_id.as_str(), "guide");
    }
    // Metadata filters apply inside the search (JSON filters on the server).
    let with_metadata = |filter: serde_json::Value| {
        let filter = MetadataFilter::from_json(filter.as_object().unwrap()).unwrap();
        tenant.clone().with_metadata(filter)
    };
    let english = with_metadata(json!({"lang": "en", "year": [2023, 2024]}));
    assert_eq!(
        store
            .keyword(&english, "quorum queues", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let french = with_metadata(json!({"lang": "fr"}));
    assert!(
        store
            .keyword(&french, "quorum queues", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .dense(&french, vector.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store
        .documents(Some(&TenantId::new("a").unwrap()))
        .await
        .unwrap();
    assert_eq!(listed[0].metadata["lang"], "en");

    // A scope naming documents applies to both kinds of search.
    let elsewhere = tenant.with_documents(vec![DocumentId::new("other").unwrap()]);
    assert!(
        store
            .dense(&elsewhere, vector, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .keyword(&elsewhere, "bm25 words", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.documents, stats.chunks), (2, 6));
    store.collection().drop_collection().await.unwrap();
}

#[tokio::test]
async fn a_server_without_full_text_search_is_refused_before_anything_is_created() {
    let url =
        std::env::var("DOCPIPE_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".into());
    let collection = format!("test_refused_{}", std::process::id());
    let error = FullTextStore::connect(&url, &collection, DIMENSION)
        .await
        .err()
        .expect("Milvus 2.3 has no full-text search");
    assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("2.3.5") && message.contains("2.5"),
        "{message}"
    );
    let untouched = MilvusStore::existing(&url, &collection).await.unwrap();
    assert_eq!(
        untouched.aliased_collection(&collection).await.unwrap(),
        None
    );
    assert!(
        untouched.stats().await.is_err(),
        "no collection {collection} was created"
    );
}

#[tokio::test]
async fn shown_chunks_say_which_ocr_read_and_with_what_confidence() {
    let store = store("ocr").await;
    let (tenant, document) = ids("acme", "scan");
    // The test chunks' second one reads as if OCR had read its page.
    let chunks = indexed_chunks(
        "acme",
        "scan",
        &["typed ledger", "scanned logbook"],
        DIMENSION,
    );
    store
        .replace_document(&tenant, &document, &chunks)
        .await
        .unwrap();
    let scope = SearchScope::tenant(tenant.clone());
    let dense = store
        .dense(&scope, chunks[1].vector.clone(), 1)
        .await
        .unwrap();
    let keyword = store.keyword(&scope, "ledger", 1).await.unwrap();
    let (scanned, typed) = (&dense[0].chunk_id, &keyword[0].chunk_id);
    let shown = store
        .chunk_texts(&tenant, &[scanned.clone(), typed.clone()])
        .await
        .unwrap();
    assert_eq!(shown[scanned].ocr_confidence, Some(91.5));
    assert_eq!(
        (shown[typed].text.as_str(), shown[typed].ocr_confidence),
        ("typed ledger", None)
    );
    store.collection().drop_collection().await.unwrap();
}

#[tokio::test]
async fn a_documents_text_comes_back_in_reading_order_and_from_its_tenant_only() {
    let store = store("text").await;
    let (tenant, document) = ids("acme", "manual");
    let mut written = version(
        "manual",
        &["install the pump", "prime the pump", "run the pump"],
        3,
    );
    written[1].chunk.page = Some(2);
    written[2].chunk.page = None;
    // Written last chunk first, so no insertion order hides a missing sort.
    let reversed: Vec<IndexedChunk> = written.iter().rev().cloned().collect();
    store
        .replace_document(&tenant, &document, &reversed)
        .await
        .unwrap();
    // The same document id in another tenant, with other text.
    let (other_tenant, _) = ids("b", "manual");
    store
        .replace_document(
            &other_tenant,
            &document,
            &indexed_chunks("b", "manual", &["tenant b's secret"], DIMENSION),
        )
        .await
        .unwrap();

    let text = store
        .document_text(&tenant, &document, 10_000)
        .await
        .unwrap();
    assert_document_text(&text, &written);

    // The bound keeps the first chunks.
    let first = store.document_text(&tenant, &document, 2).await.unwrap();
    assert_eq!(first, text[..2]);
    // Another tenant's document, and a document nobody wrote, are not shown.
    let other = store
        .document_text(&other_tenant, &document, 10_000)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].text, "tenant b's secret");
    let (nobody, _) = ids("c", "manual");
    assert!(
        store
            .document_text(&nobody, &document, 10_000)
            .await
            .unwrap()
            .is_empty()
    );
    store.collection().drop_collection().await.unwrap();
}

#[tokio::test]
async fn searches_made_at_once_share_requests_and_each_gets_its_own_hits() {
    let store = store("concurrent").await;
    let texts: Vec<String> = (0..DIMENSION)
        .map(|axis| format!("topic{axis} is covered here"))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    write_guides(&store, &["a", "b"], &texts, DIMENSION)
        .await
        .unwrap();
    // Polled together, the searches queue behind the first request of
    // their shape (tenant and kind), so later requests carry several.
    let searches = (0..48).map(|search| {
        let tenant = ["a", "b"][search % 2];
        let axis = search / 2 % DIMENSION;
        let scope = SearchScope::tenant(TenantId::new(tenant).unwrap());
        let store = &store;
        async move {
            let hits = if search % 4 < 2 {
                store.keyword(&scope, &format!("topic{axis}"), 3).await
            } else {
                let mut vector = vec![0.0; DIMENSION];
                vector[axis] = 1.0;
                store.dense(&scope, vector, 3).await
            };
            (tenant, axis, hits)
        }
    });
    for (tenant, axis, hits) in futures::future::join_all(searches).await {
        let hits = hits.unwrap();
        assert_eq!(hits[0].ordinal as usize, axis, "the nearest or best first");
        for hit in &hits {
            assert_eq!(hit.document_id.as_str(), format!("guide-{tenant}"));
        }
    }
    store.collection().drop_collection().await.unwrap();
}
