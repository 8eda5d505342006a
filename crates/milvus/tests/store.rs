//! The Milvus store against a real Milvus (`scripts/milvus.sh start`; the
//! URL comes from DOCPIPE_MILVUS_URL, default http://127.0.0.1:19530). Each
//! test uses its own collection and drops it.

use docpipe_core::testing::{indexed_chunks, sorted_ids, write_guides};
use docpipe_core::{ChunkStore, DocumentId, IndexedChunk, MetadataFilter, SearchScope, TenantId};
use docpipe_milvus::MilvusStore;
use serde_json::json;

const DIMENSION: usize = 8;

async fn store(name: &str) -> MilvusStore {
    let url =
        std::env::var("DOCPIPE_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".into());
    let collection = format!("test_{name}_{}", std::process::id());
    MilvusStore::connect(&url, &collection, DIMENSION)
        .await
        .expect("Milvus is running")
}

fn ids(tenant: &str, document: &str) -> (TenantId, DocumentId) {
    (
        TenantId::new(tenant).unwrap(),
        DocumentId::new(document).unwrap(),
    )
}

#[tokio::test]
async fn replacing_a_document_leaves_exactly_the_new_chunks() {
    let store = store("replace").await;
    let (tenant, document) = ids("acme", "doc \u{e9}/1");
    let first = indexed_chunks("acme", "doc \u{e9}/1", &["one", "two", "three"], DIMENSION);
    store
        .replace_document(&tenant, &document, &first)
        .await
        .unwrap();
    let mut stored = store.chunk_ids(&tenant, &document).await.unwrap();
    stored.sort();
    assert_eq!(stored, sorted_ids(&first));

    let second = indexed_chunks("acme", "doc \u{e9}/1", &["one", "2", "3", "4"], DIMENSION);
    store
        .replace_document(&tenant, &document, &second)
        .await
        .unwrap();
    store
        .replace_document(&tenant, &document, &second)
        .await
        .unwrap();
    let mut stored = store.chunk_ids(&tenant, &document).await.unwrap();
    stored.sort();
    assert_eq!(stored, sorted_ids(&second));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.documents, stats.chunks), (1, 4));
    store.drop_collection().await.unwrap();
}

#[tokio::test]
async fn search_finds_nearest_chunks_within_the_tenant_only() {
    let store = store("search").await;
    for tenant in ["a", "b"] {
        let (tenant_id, document) = ids(tenant, "shared-id");
        let chunks = indexed_chunks(tenant, "shared-id", &["x", "y", "z"], DIMENSION);
        store
            .replace_document(&tenant_id, &document, &chunks)
            .await
            .unwrap();
    }
    let mut query = vec![0.0; DIMENSION];
    query[1] = 1.0;
    let tenant_a = SearchScope::tenant(TenantId::new("a").unwrap());
    let hits = store.search(&tenant_a, query.clone(), 10).await.unwrap();
    assert_eq!(hits.len(), 3, "only tenant a's three chunks");
    let nearest = &indexed_chunks("a", "shared-id", &["x", "y", "z"], DIMENSION)[1];
    assert_eq!(hits[0].chunk_id, nearest.chunk.id);
    assert_eq!(hits[0].ordinal, 1);
    assert!((hits[0].score - 1.0).abs() < 1e-4);

    // A scope naming documents keeps the search to them.
    let elsewhere = tenant_a
        .clone()
        .with_documents(vec![DocumentId::new("another-id").unwrap()]);
    assert!(
        store
            .search(&elsewhere, query.clone(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let named = tenant_a.with_documents(vec![DocumentId::new("shared-id").unwrap()]);
    assert_eq!(store.search(&named, query, 10).await.unwrap().len(), 3);

    // Nothing matching is an empty answer, not an error.
    let nobody = TenantId::new("nobody").unwrap();
    assert!(
        store
            .search(&(&nobody).into(), vec![1.0; DIMENSION], 10)
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = DocumentId::new("unknown").unwrap();
    assert!(store.chunk_ids(&nobody, &unknown).await.unwrap().is_empty());
    store.drop_collection().await.unwrap();
}

#[tokio::test]
async fn a_collection_with_another_dimension_is_refused() {
    let store = store("dimension").await;
    let url =
        std::env::var("DOCPIPE_MILVUS_URL").unwrap_or_else(|_| "http://127.0.0.1:19530".into());
    let error = MilvusStore::connect(&url, store.collection(), DIMENSION * 2)
        .await
        .err()
        .expect("a dimension mismatch is an error");
    assert!(error.to_string().contains("dimension"), "{error}");
    store.drop_collection().await.unwrap();
}

/// Enough chunks that Milvus builds the HNSW index over the sealed segment
/// (it searches smaller segments exhaustively).
const INDEXED_CHUNKS: usize = 3000;

#[tokio::test]
async fn settled_chunks_are_searched_through_the_index_for_any_number_of_hits() {
    let store = store("settle").await;
    let (tenant, document) = ids("acme", "big");
    let texts: Vec<String> = (0..INDEXED_CHUNKS).map(|i| format!("chunk {i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut chunks = indexed_chunks("acme", "big", &texts, DIMENSION);
    // Distinct directions (a linear congruential sequence): HNSW links
    // copies of one vector poorly.
    let mut state: u64 = 1;
    for chunk in &mut chunks {
        for value in &mut chunk.vector {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            *value = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
    }
    store
        .replace_document(&tenant, &document, &chunks)
        .await
        .unwrap();
    assert!(
        store
            .settle(std::time::Duration::from_secs(120))
            .await
            .unwrap(),
        "the index covers the sealed segment and a query node serves it"
    );
    // More hits than the HNSW breadth docpipe used to fix at 64 (Milvus
    // refused them: "ef(64) should be larger than k(65)").
    for limit in [65, 500] {
        let hits = store
            .search(&(&tenant).into(), vec![1.0; DIMENSION], limit)
            .await
            .unwrap();
        assert_eq!(hits.len(), limit);
    }
    let error = store
        .search(
            &(&tenant).into(),
            vec![1.0; DIMENSION],
            docpipe_milvus::MAX_SEARCH_LIMIT + 1,
        )
        .await
        .unwrap_err();
    assert_eq!(
        docpipe_core::Classify::class(&error),
        docpipe_core::ErrorClass::Permanent,
        "{error}"
    );
    store.drop_collection().await.unwrap();
}

#[tokio::test]
async fn settling_merges_the_segments_that_several_flushes_left() {
    let store = store("merge").await;
    for document in ["a", "b", "c"] {
        let (tenant, id) = ids("acme", document);
        let texts: Vec<String> = (0..100).map(|i| format!("{document} {i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let chunks = indexed_chunks("acme", document, &texts, DIMENSION);
        store.replace_document(&tenant, &id, &chunks).await.unwrap();
        // Each flush seals what was written since the last one.
        store.flush().await.unwrap();
    }
    assert!(
        store
            .settle(std::time::Duration::from_secs(120))
            .await
            .unwrap()
    );
    // One segment to search instead of three, holding every row (the
    // merged-away ones released).
    assert_eq!(store.served_sealed_segments().await.unwrap(), 1);
    assert_eq!(store.served_sealed_rows().await.unwrap(), 300);
    store.drop_collection().await.unwrap();
}

#[tokio::test]
async fn metadata_filters_compare_values_type_included_and_listings_keep_metadata() {
    let store = store("metadata").await;
    for (document, metadata) in [
        ("english", json!({"lang": "en", "year": 2024})),
        ("quoted", json!({"lang": "say \"hi\"", "draft": true})),
    ] {
        let (tenant, id) = ids("acme", document);
        let chunks: Vec<IndexedChunk> = indexed_chunks("acme", document, &["x"], DIMENSION)
            .into_iter()
            .map(|chunk| IndexedChunk {
                metadata: metadata.as_object().unwrap().clone(),
                ..chunk
            })
            .collect();
        store.replace_document(&tenant, &id, &chunks).await.unwrap();
    }
    let found = |filter: serde_json::Value| {
        let filter = MetadataFilter::from_json(filter.as_object().unwrap()).unwrap();
        let scope = SearchScope::tenant(TenantId::new("acme").unwrap()).with_metadata(filter);
        let store = store.clone();
        async move {
            let mut query = vec![0.0; DIMENSION];
            query[0] = 1.0;
            let hits = store.search(&scope, query, 10).await.unwrap();
            let mut found: Vec<String> =
                hits.iter().map(|hit| hit.document_id.to_string()).collect();
            found.sort();
            found
        }
    };
    assert_eq!(
        found(json!({"lang": ["en", "say \"hi\""]})).await,
        ["english", "quoted"]
    );
    assert_eq!(found(json!({"year": 2024})).await, ["english"]);
    assert_eq!(found(json!({"draft": true})).await, ["quoted"]);
    assert!(
        found(json!({"year": "2024"})).await.is_empty(),
        "a string is not an integer"
    );
    let (tenant, id) = ids("acme", "english");
    let stored = store.document_chunks(&tenant, &id).await.unwrap();
    assert_eq!(stored[0].metadata["year"], 2024);
    store.drop_collection().await.unwrap();
}

#[tokio::test]
async fn searches_made_at_once_share_requests_and_each_gets_its_own_hits() {
    let store = store("concurrent").await;
    let texts: Vec<String> = (0..DIMENSION).map(|axis| format!("topic{axis}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    write_guides(&store, &["a", "b"], &texts, DIMENSION)
        .await
        .unwrap();
    // Polled together, the searches queue behind the first request, so
    // later requests each carry several of them, of both tenants' shapes.
    let searches = (0..64).map(|search| {
        let tenant = ["a", "b"][search % 2];
        let axis = search / 2 % DIMENSION;
        let mut vector = vec![0.0; DIMENSION];
        vector[axis] = 1.0;
        let scope = SearchScope::tenant(TenantId::new(tenant).unwrap());
        let store = &store;
        async move { (tenant, axis, store.search(&scope, vector, 3).await) }
    });
    for (tenant, axis, hits) in futures::future::join_all(searches).await {
        let hits = hits.unwrap();
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].ordinal as usize, axis, "the nearest first");
        assert!((hits[0].score - 1.0).abs() < 1e-4);
        for hit in &hits {
            assert_eq!(hit.document_id.as_str(), format!("guide-{tenant}"));
        }
    }
    store.drop_collection().await.unwrap();
}
