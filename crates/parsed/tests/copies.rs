//! Parsed copies in a local directory and in real S3-compatible storage
//! (SeaweedFS, `scripts/seaweedfs.sh start`; endpoint and credentials from
//! `DOCPIPE_TEST_S3_ENDPOINT`, default the local server's).

use docpipe_core::{Classify, ContentHash, ErrorClass, ParsedDocument};
use docpipe_parsed::{ParsedCopies, ParsedError, S3Options};
use std::time::Duration;

/// The local SeaweedFS of `scripts/seaweedfs.sh`.
fn seaweedfs() -> S3Options {
    S3Options {
        endpoint: Some(
            std::env::var("DOCPIPE_TEST_S3_ENDPOINT")
                .unwrap_or_else(|_| "http://127.0.0.1:18333".into()),
        ),
        region: Some("us-east-1".into()),
        credentials: Some(("docpipe".into(), "docpipe-local-secret".into())),
    }
}

fn unique_prefix() -> String {
    format!("s3://docpipe/tests/{}", uuid::Uuid::new_v4().simple())
}

fn document(text: &str) -> ParsedDocument {
    let mut parsed = ParsedDocument::default();
    parsed.push_block(text, Some(1), &["Spring".into()], false);
    parsed
}

/// What every store must do: round-trip copies, tell a missing copy from
/// an error, and prune only what is neither kept nor young.
async fn keeps_finds_and_prunes(copies: &ParsedCopies) {
    let (bees, bread) = (ContentHash::of(b"bees"), ContentHash::of(b"bread"));
    assert_eq!(copies.load(&bees).await.unwrap(), None);
    copies
        .save(&bees, &document("Swarms in May"))
        .await
        .unwrap();
    copies
        .save(&bees, &document("Swarms in May"))
        .await
        .unwrap();
    copies.save(&bread, &document("Starter")).await.unwrap();
    assert_eq!(
        copies.load(&bees).await.unwrap(),
        Some(document("Swarms in May"))
    );

    let keep_bees = |hash: &str| hash == bees.as_str();
    assert_eq!(
        copies
            .prune(keep_bees, Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "too young to prune"
    );
    assert_eq!(copies.prune(keep_bees, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(copies.load(&bread).await.unwrap(), None);
    assert!(copies.load(&bees).await.unwrap().is_some());
}

#[tokio::test]
async fn a_local_directory_keeps_finds_and_prunes_copies() {
    let directory = tempfile::tempdir().unwrap();
    let copies = ParsedCopies::local(&directory.path().join("parsed")).unwrap();
    keeps_finds_and_prunes(&copies).await;
}

#[tokio::test]
async fn an_s3_bucket_keeps_finds_and_prunes_copies() {
    let copies = ParsedCopies::s3(&unique_prefix(), &seaweedfs()).unwrap();
    keeps_finds_and_prunes(&copies).await;
    // Another process (a worker on another machine) reads the same copies.
    let elsewhere = ParsedCopies::s3(copies.location(), &seaweedfs()).unwrap();
    assert!(
        elsewhere
            .load(&ContentHash::of(b"bees"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_unreachable_store_is_transient_and_a_bad_location_permanent() {
    let nobody = S3Options {
        endpoint: Some("http://127.0.0.1:9".into()),
        ..seaweedfs()
    };
    let copies = ParsedCopies::s3(&unique_prefix(), &nobody).unwrap();
    let error = copies.load(&ContentHash::of(b"x")).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Transient, "{error}");

    let error = ParsedCopies::s3("https://bucket/prefix", &seaweedfs()).unwrap_err();
    assert!(matches!(error, ParsedError::Location { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn a_copy_that_is_not_json_is_reported_as_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    let copies = ParsedCopies::local(directory.path()).unwrap();
    let hash = ContentHash::of(b"mangled");
    std::fs::write(directory.path().join(format!("{hash}.json")), b"{not json").unwrap();
    let error = copies.load(&hash).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
    assert!(error.to_string().contains("corrupt"), "{error}");
}
