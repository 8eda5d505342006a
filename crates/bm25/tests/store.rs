//! The tantivy store on a real index in a temporary directory.

use docpipe_bm25::Bm25Store;
use docpipe_core::testing::{indexed_chunks, sorted_ids as ids};
use docpipe_core::{ChunkId, ChunkStore, DocumentId, IndexedChunk, TenantId};

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
    // Stemming: "tide" matches "tides"; unbalanced syntax is forgiven.
    let hits = store
        .search(&TenantId::new("a").unwrap(), "tide (range", 10)
        .await
        .unwrap();
    assert_eq!(hits[0].document_id.as_str(), "tides");
    assert!(hits.iter().all(|hit| !hit.text.contains("tenant b")));
    assert_eq!(hits.len(), 1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_side_by_side_share_commits_and_each_is_durable_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Bm25Store::open_for_writes(dir.path(), std::time::Duration::from_millis(200)).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let writes: Vec<_> = (0..20)
        .map(|index| {
            let (store, tenant, path) = (store.clone(), tenant.clone(), dir.path().to_owned());
            tokio::spawn(async move {
                let name = format!("doc-{index}");
                let document = DocumentId::new(name.clone()).unwrap();
                let written = chunks("acme", &name, &[&format!("tide table number {index}")]);
                store
                    .replace_document(&tenant, &document, &written)
                    .await
                    .unwrap();
                // Returned: committed, so an index opened afresh from disk sees it.
                let reopened = Bm25Store::open(&path).unwrap();
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
