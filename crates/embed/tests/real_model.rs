//! The embedder against the real all-MiniLM-L6-v2 weights (installed by
//! `make setup`), checked against the sentence-transformers reference value
//! and an independent numpy forward pass.

use docpipe_embed::{BatchLimits, BatchingEmbedder, Embedded, Embedder, ModelDir, OnnxEmbedder};
use std::path::PathBuf;

fn models() -> PathBuf {
    let home = std::env::var_os("DOCPIPE_HOME").expect("DOCPIPE_HOME is set by .cargo/config.toml");
    PathBuf::from(home).join("models")
}

fn model_dir() -> PathBuf {
    models().join("all-MiniLM-L6-v2")
}

fn load(dir: &std::path::Path) -> OnnxEmbedder {
    let dir = ModelDir::open(dir).expect("run `make setup` to install the model");
    OnnxEmbedder::load(&dir, BatchLimits::new(4, 1024), 0).expect("the model loads")
}

fn embedder() -> OnnxEmbedder {
    load(&model_dir())
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

#[test]
fn reproduces_the_sentence_transformers_similarity() {
    let vectors = embedder()
        .embed_documents(&["A man is eating food.", "A man is eating a piece of bread."])
        .unwrap();
    let similarity = cosine(&vectors[0], &vectors[1]);
    assert!((similarity - 0.755).abs() <= 0.005, "cosine {similarity}");
}

#[test]
fn agrees_with_an_independent_forward_pass() {
    #[derive(serde::Deserialize)]
    struct Reference {
        embeddings: Vec<Row>,
    }
    #[derive(serde::Deserialize)]
    struct Row {
        text: String,
        vector: Vec<f32>,
    }
    let file = std::fs::read_to_string(model_dir().join("reference-embeddings.json")).unwrap();
    let reference: Reference = serde_json::from_str(&file).unwrap();
    let texts: Vec<&str> = reference
        .embeddings
        .iter()
        .map(|row| row.text.as_str())
        .collect();
    // One padded batch of mixed lengths: padding must not leak into pooling.
    let vectors = embedder().embed_documents(&texts).unwrap();
    for (row, vector) in reference.embeddings.iter().zip(&vectors) {
        let agreement = cosine(&row.vector, vector);
        assert!(agreement > 0.9999, "{:?}: cosine {agreement}", row.text);
    }
}

#[test]
fn vectors_have_the_manifest_dimension_and_unit_length() {
    let embedder = embedder();
    let query = embedder.embed_query("how do tides work").unwrap();
    assert_eq!(query.len(), embedder.dimension());
    assert!((cosine(&query, &query) - 1.0).abs() < 1e-4);
}

#[test]
fn a_missing_model_directory_is_a_clear_error() {
    let error = ModelDir::open(std::path::Path::new("/nonexistent/model")).unwrap_err();
    assert!(error.to_string().contains("run `make setup`"), "{error}");
}

#[test]
fn the_int8_model_stays_close_to_fp32_on_passages() {
    let passages = [
        "Quorum queues replicate their contents across nodes with the Raft protocol.",
        "Spring tides occur when the Sun and Moon line up at new and full moon.",
        "The borrow checker rejects a mutable borrow while a shared borrow is alive.",
    ];
    let fp32 = embedder().embed_documents(&passages).unwrap();
    let int8 = load(&models().join("all-MiniLM-L6-v2-int8"))
        .embed_documents(&passages)
        .unwrap();
    for ((passage, a), b) in passages.iter().zip(&fp32).zip(&int8) {
        let agreement = cosine(a, b);
        assert!(agreement >= 0.99, "{passage:?}: cosine {agreement}");
    }
}

#[test]
fn the_executor_batches_concurrent_documents_together_and_keeps_their_vectors_apart() {
    let documents: Vec<Vec<String>> = (0..4)
        .map(|document| {
            (0..3)
                .map(|chunk| format!("Document {document}, chunk {chunk}: tides, queues and bees."))
                .collect()
        })
        .collect();
    let direct = embedder();
    let executor = BatchingEmbedder::start(
        vec![embedder(), embedder()],
        8,
        // Long enough for all four callers to arrive before the first batch.
        std::time::Duration::from_millis(500),
    )
    .unwrap();
    let results: Vec<Embedded> = std::thread::scope(|scope| {
        let callers: Vec<_> = documents
            .iter()
            .map(|texts| {
                let executor = &executor;
                scope.spawn(move || {
                    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                    executor.embed(&texts).unwrap()
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|caller| caller.join().unwrap())
            .collect()
    });
    for (texts, embedded) in documents.iter().zip(&results) {
        assert!(
            embedded.largest_batch > texts.len(),
            "a document's texts rode with other documents' ({} texts in the largest batch)",
            embedded.largest_batch
        );
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let alone = direct.embed_documents(&texts).unwrap();
        for (batched, alone) in embedded.vectors.iter().zip(&alone) {
            let agreement = cosine(batched, alone);
            assert!(agreement > 0.9999, "cosine {agreement}");
        }
    }
}
