//! The Milvus store against a real Milvus (`scripts/milvus.sh start`; the
//! URL comes from DOCPIPE_MILVUS_URL, default http://127.0.0.1:19530). Each
//! test uses its own collection and drops it.

use docpipe_core::testing::{indexed_chunks, sorted_ids};
use docpipe_core::{ChunkStore, DocumentId, TenantId};
use docpipe_milvus::MilvusStore;

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
    let hits = store
        .search(&TenantId::new("a").unwrap(), query, 10)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3, "only tenant a's three chunks");
    assert_eq!(hits[0].text, "y");
    assert!((hits[0].score - 1.0).abs() < 1e-4);
    assert_eq!(hits[0].page, Some(1));

    // Nothing matching is an empty answer, not an error.
    let nobody = TenantId::new("nobody").unwrap();
    assert!(
        store
            .search(&nobody, vec![1.0; DIMENSION], 10)
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
