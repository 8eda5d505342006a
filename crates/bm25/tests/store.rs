//! The tantivy store on a real index in a temporary directory.

use docpipe_bm25::Bm25Store;
use docpipe_core::testing::{assert_document_text, indexed_chunks, sorted_ids as ids};
use docpipe_core::{
    ChunkId, ChunkStore, DocumentId, DocumentsUnderway, IndexedChunk, MetadataFilter, SearchScope,
    TenantId,
};
use serde_json::json;
use std::time::Duration;

fn chunks(tenant: &str, document: &str, texts: &[&str]) -> Vec<IndexedChunk> {
    indexed_chunks(tenant, document, texts, 4)
}

async fn stored_ids(store: &Bm25Store, tenant: &str, document: &str) -> Vec<ChunkId> {
    let mut ids = store
        .chunk_ids(
            &TenantId::new(tenant).unwrap(),
            &DocumentId::new(document).unwrap(),
        )
        .await
        .unwrap();
    ids.sort();
    ids
}

#[tokio::test]
async fn replacing_a_document_leaves_exactly_the_new_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let (tenant, document) = (
        TenantId::new("acme").unwrap(),
        DocumentId::new("doc").unwrap(),
    );

    let first = chunks(
        "acme",
        "doc",
        &["tides rise twice a day", "the moon pulls the sea"],
    );
    store
        .replace_document(&tenant, &document, &first)
        .await
        .unwrap();
    assert_eq!(stored_ids(&store, "acme", "doc").await, ids(&first));

    let second = chunks(
        "acme",
        "doc",
        &["tides rise twice a day", "springs and neaps", "turbines"],
    );
    store
        .replace_document(&tenant, &document, &second)
        .await
        .unwrap();
    assert_eq!(stored_ids(&store, "acme", "doc").await, ids(&second));

    // Idempotent: the same replacement again changes nothing.
    store
        .replace_document(&tenant, &document, &second)
        .await
        .unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.documents, stats.chunks), (1, 3));
}

#[tokio::test]
async fn search_ranks_by_bm25_and_never_crosses_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    for (tenant, document, text) in [
        ("a", "tides", "the tidal range peaks at spring tides"),
        ("a", "bread", "sourdough starter needs feeding"),
        ("b", "tides", "spring tides in tenant b"),
    ] {
        let chunks = chunks(tenant, document, &[text]);
        let (tenant, document) = (
            TenantId::new(tenant).unwrap(),
            DocumentId::new(document).unwrap(),
        );
        store
            .replace_document(&tenant, &document, &chunks)
            .await
            .unwrap();
    }
    // Stemming: "tide" matches "tides"; a parenthesis is only punctuation.
    let tenant_a = SearchScope::tenant(TenantId::new("a").unwrap());
    let hits = store.search(&tenant_a, "tide (range", 10).await.unwrap();
    assert_eq!(hits[0].document_id.as_str(), "tides");
    assert_eq!(hits.len(), 1);
    // What a result shows is read apart, for the chunks shown only.
    let shown = store
        .chunk_texts(&TenantId::new("a").unwrap(), &[hits[0].chunk_id.clone()])
        .await
        .unwrap();
    let shown = &shown[&hits[0].chunk_id];
    assert_eq!(shown.text, "the tidal range peaks at spring tides");
    assert_eq!(shown.heading_path, ["Guide", "Part 0"]);
    // Tenant b's chunk is not tenant a's to read, even by its id.
    let tenant_b = SearchScope::tenant(TenantId::new("b").unwrap());
    let theirs = store.search(&tenant_b, "tides", 10).await.unwrap();
    let read_by_a = store
        .chunk_texts(&TenantId::new("a").unwrap(), &[theirs[0].chunk_id.clone()])
        .await
        .unwrap();
    assert!(read_by_a.is_empty());

    // A scope naming documents keeps the search to them, scores unchanged.
    let named = |documents: &[&str]| {
        let documents = documents.iter().map(|id| DocumentId::new(*id).unwrap());
        tenant_a.clone().with_documents(documents.collect())
    };
    let narrowed = store
        .search(&named(&["tides", "bread"]), "tide", 10)
        .await
        .unwrap();
    assert_eq!(narrowed, store.search(&tenant_a, "tide", 10).await.unwrap());
    assert!(
        store
            .search(&named(&["bread"]), "tide", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search(&named(&[]), "tide", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Queries are people's words, not tantivy's query language: a hyphen is
/// not a phrase, parentheses are not grouping, a colon is not a field and a
/// stray quote is not an error.
#[tokio::test]
async fn punctuation_in_a_query_is_not_query_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let tenant = TenantId::new("a").unwrap();
    let scope = SearchScope::from(&tenant);
    for (document, text) in [
        (
            "paths",
            "settings specific to each distribution, such as install paths",
        ),
        ("generic", "a generic distribution of packages"),
        ("bread", "sourdough starter needs feeding"),
    ] {
        let chunks = chunks("a", document, &[text]);
        store
            .replace_document(&tenant, &DocumentId::new(document).unwrap(), &chunks)
            .await
            .unwrap();
    }
    let ranking = |hits: Vec<docpipe_core::RankedChunk>| -> Vec<(String, f32)> {
        hits.into_iter()
            .map(|hit| (hit.document_id.to_string(), hit.score))
            .collect()
    };
    let plain = ranking(
        store
            .search(&scope, "distribution specific paths", 10)
            .await
            .unwrap(),
    );
    assert_eq!(plain[0].0, "paths");
    for typed in [
        "distribution-specific (paths)",
        "\"distribution-specific paths",
        "distribution: specific, paths?",
    ] {
        let hits = store.search(&scope, typed, 10).await.unwrap();
        assert_eq!(ranking(hits), plain, "{typed}");
    }
    assert!(store.search(&scope, "\"(:)", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn commits_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let written = chunks("acme", "doc", &["durable words"]);
    {
        let store = Bm25Store::open(dir.path()).unwrap();
        let (tenant, document) = (
            TenantId::new("acme").unwrap(),
            DocumentId::new("doc").unwrap(),
        );
        store
            .replace_document(&tenant, &document, &written)
            .await
            .unwrap();
    }
    let reopened = Bm25Store::open(dir.path()).unwrap();
    assert_eq!(stored_ids(&reopened, "acme", "doc").await, ids(&written));
}

/// `work`, failing the test if it has not finished within a minute.
async fn within_a_minute<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("finished within a minute")
}

/// Writes `document` (one chunk) through `store`.
async fn write_one(store: &Bm25Store, document: &str) {
    let written = chunks("acme", document, &[&format!("tide table for {document}")]);
    store
        .replace_document(
            &TenantId::new("acme").unwrap(),
            &DocumentId::new(document).unwrap(),
            &written,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_side_by_side_share_commits_and_each_is_durable_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let underway = DocumentsUnderway::default();
    let store =
        Bm25Store::open_for_writes(dir.path(), Duration::from_millis(200), underway.clone())
            .unwrap();
    let writes: Vec<_> = (0..20)
        .map(|index| {
            // As a worker does: underway while being prepared, handed to
            // the store when it writes.
            let preparing = underway.enter();
            let (store, path) = (store.clone(), dir.path().to_owned());
            tokio::spawn(async move {
                let name = format!("doc-{index}");
                drop(preparing);
                write_one(&store, &name).await;
                // Returned: committed, so an index opened afresh from disk sees it.
                let reopened = Bm25Store::open(&path).unwrap();
                let document = DocumentId::new(name).unwrap();
                let tenant = TenantId::new("acme").unwrap();
                assert_eq!(
                    reopened.chunk_ids(&tenant, &document).await.unwrap().len(),
                    1
                );
            })
        })
        .collect();
    for write in writes {
        write.await.unwrap();
    }
    let stats = Bm25Store::open(dir.path()).unwrap().stats().await.unwrap();
    assert_eq!((stats.documents, stats.chunks), (20, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_waits_for_documents_underway_and_no_longer_once_none_are() {
    let dir = tempfile::tempdir().unwrap();
    let underway = DocumentsUnderway::default();
    // An interval no test would sit out: every wait below ends because no
    // document is underway any more.
    let store = Bm25Store::open_for_writes(dir.path(), Duration::from_secs(3600), underway.clone())
        .unwrap();
    // Alone: committed at once.
    within_a_minute(write_one(&store, "lone")).await;

    // Another document is being prepared: the first write waits for it.
    let preparing = underway.enter();
    let first = tokio::spawn({
        let store = store.clone();
        async move { write_one(&store, "first").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !first.is_finished(),
        "the commit waits while a document is underway"
    );
    drop(preparing);
    within_a_minute(write_one(&store, "second")).await;
    within_a_minute(first).await.unwrap();
    let stats = Bm25Store::open(dir.path()).unwrap().stats().await.unwrap();
    assert_eq!(stats.documents, 3);
}

/// Metadata filters compare a key's value exactly, type included, and a
/// list accepts any of its values.
#[tokio::test]
async fn a_metadata_filter_keeps_documents_whose_metadata_has_the_values_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    for (document, metadata) in [
        ("english", json!({"lang": "en", "year": 2024})),
        ("french", json!({"lang": "fr", "year": 2025, "draft": true})),
        ("untagged", json!({})),
    ] {
        let chunks: Vec<IndexedChunk> = chunks("a", document, &["spring tides"])
            .into_iter()
            .map(|chunk| IndexedChunk {
                metadata: metadata.as_object().unwrap().clone(),
                ..chunk
            })
            .collect();
        let (tenant, document) = (
            TenantId::new("a").unwrap(),
            DocumentId::new(document).unwrap(),
        );
        store
            .replace_document(&tenant, &document, &chunks)
            .await
            .unwrap();
    }
    let found = |filter: serde_json::Value| {
        let filter = MetadataFilter::from_json(filter.as_object().unwrap()).unwrap();
        let scope = SearchScope::tenant(TenantId::new("a").unwrap()).with_metadata(filter);
        let store = store.clone();
        async move {
            let mut documents: Vec<String> = store
                .search(&scope, "tides", 10)
                .await
                .unwrap()
                .into_iter()
                .map(|hit| hit.document_id.as_str().to_owned())
                .collect();
            documents.sort();
            documents
        }
    };
    assert_eq!(found(json!({"lang": "en"})).await, ["english"]);
    assert_eq!(
        found(json!({"year": [2024, 2025]})).await,
        ["english", "french"]
    );
    assert_eq!(
        found(json!({"lang": "fr", "draft": true})).await,
        ["french"]
    );
    assert!(
        found(json!({"year": "2024"})).await.is_empty(),
        "a string is not an integer"
    );
    assert!(found(json!({"lang": []})).await.is_empty());
    assert_eq!(found(json!({})).await.len(), 3);
    // Listings keep the metadata, for re-indexes.
    let chunks = store
        .document_chunks(
            &TenantId::new("a").unwrap(),
            &DocumentId::new("french").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(chunks[0].metadata["lang"], "fr");
}

#[tokio::test]
async fn shown_chunks_say_which_ocr_read_and_with_what_confidence() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    // The test chunks' second one reads as if OCR had read its page.
    let written = chunks("acme", "scan", &["typed ledger", "scanned logbook"]);
    store
        .replace_document(&tenant, &DocumentId::new("scan").unwrap(), &written)
        .await
        .unwrap();
    let scope = SearchScope::tenant(tenant.clone());
    for (query, expected) in [("ledger", None), ("logbook", Some(91.5))] {
        let hits = store.search(&scope, query, 1).await.unwrap();
        let chunk = hits[0].chunk_id.clone();
        let shown = store
            .chunk_texts(&tenant, std::slice::from_ref(&chunk))
            .await
            .unwrap();
        assert_eq!(shown[&chunk].ocr_confidence, expected, "{query}");
    }
}

#[tokio::test]
async fn a_documents_text_comes_back_in_reading_order_and_from_its_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let document = DocumentId::new("manual").unwrap();
    let mut written = chunks(
        "a",
        "manual",
        &["install the pump", "prime the pump", "run the pump"],
    );
    written[1].chunk.page = Some(2);
    written[2].chunk.page = None;
    // Written last chunk first, so index order is not reading order.
    let reversed: Vec<IndexedChunk> = written.iter().rev().cloned().collect();
    store
        .replace_document(&TenantId::new("a").unwrap(), &document, &reversed)
        .await
        .unwrap();
    // The same document id in another tenant, with other text.
    store
        .replace_document(
            &TenantId::new("b").unwrap(),
            &document,
            &chunks("b", "manual", &["tenant b's secret"]),
        )
        .await
        .unwrap();

    let tenant = TenantId::new("a").unwrap();
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
        .document_text(&TenantId::new("b").unwrap(), &document, 10_000)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].text, "tenant b's secret");
    assert!(
        store
            .document_text(&TenantId::new("c").unwrap(), &document, 10_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every chunk carries its document's title, and a query's words there
/// count apart from the text's, times the boost: a document titled by the
/// query's word outranks one whose text only repeats it.
#[tokio::test]
async fn a_boosted_title_match_outranks_a_repeated_word_in_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    // indexed_chunks titles them "The tides handbook" and "The notes handbook".
    for (document, text) in [
        ("tides", "charts for sailors, tides included"),
        ("notes", "tides and tides again, tides all day"),
    ] {
        let id = DocumentId::new(document).unwrap();
        store
            .replace_document(&tenant, &id, &chunks("acme", document, &[text]))
            .await
            .unwrap();
    }
    let scope = SearchScope::tenant(tenant);
    let first = |store: Bm25Store| {
        let scope = scope.clone();
        async move {
            store.search(&scope, "tides", 2).await.unwrap()[0]
                .document_id
                .to_string()
        }
    };
    assert_eq!(first(store.clone()).await, "notes");
    assert_eq!(first(store.with_context_boost(1.0)).await, "tides");
}

#[tokio::test]
async fn a_short_ranking_is_the_head_of_the_full_one_even_with_deletes_and_other_tenants() {
    // A short ranking against one long enough to hold every match, over
    // segments holding deleted chunks and another tenant's.
    let dir = tempfile::tempdir().unwrap();
    let store = Bm25Store::open(dir.path()).unwrap();
    let words = [
        "tide", "moon", "harbour", "sail", "anchor", "storm", "keel", "mast", "chart", "buoy",
        "gale", "reef", "pier", "rope", "deck", "wave", "salt", "gull", "hull", "oar",
    ];
    // A fixed pseudo-random text per chunk, so the test is repeatable.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut text = |length: usize| -> String {
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Skewed towards the first words, as real term frequencies are.
                let pick = (state % 400) as usize;
                words[(pick * pick / 8000).min(words.len() - 1)]
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for round in 0..2 {
        for number in 0..60_usize {
            let tenant = if number.is_multiple_of(3) {
                "other"
            } else {
                "acme"
            };
            let document = format!("doc-{number}");
            // The second round replaces every document: the first round's
            // chunks stay in their segments, deleted.
            let texts: Vec<String> = (0..4).map(|_| text(6 + round * 3)).collect();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            store
                .replace_document(
                    &TenantId::new(tenant).unwrap(),
                    &DocumentId::new(&document).unwrap(),
                    &chunks(tenant, &document, &texts),
                )
                .await
                .unwrap();
        }
    }
    let acme = SearchScope::tenant(TenantId::new("acme").unwrap());
    for query in ["tide moon", "storm keel mast", "gull hull oar reef", "tide"] {
        let full = store.search(&acme, query, 1000).await.unwrap();
        assert!(full.len() > 10, "{query}: too few matches to prune");
        let of_acme = |hit: &docpipe_core::RankedChunk| {
            let number: usize = hit.document_id.as_str()["doc-".len()..].parse().unwrap();
            !number.is_multiple_of(3)
        };
        assert!(full.iter().all(of_acme), "{query}: another tenant's chunk");
        let short = store.search(&acme, query, 10).await.unwrap();
        let scores = |hits: &[docpipe_core::RankedChunk]| -> Vec<f32> {
            hits.iter().map(|hit| hit.score).collect()
        };
        assert_eq!(scores(&short), scores(&full[..10]), "{query}");
        for hit in &short {
            assert!(
                full.contains(hit),
                "{query}: {} is not in the full ranking",
                hit.chunk_id.as_str()
            );
        }
    }
}
