//! Sources beyond local files. `s3://` against the local SeaweedFS
//! (`scripts/seaweedfs.sh`; the real `weed` server with its S3 gateway):
//! uploads under an allowed prefix are indexed and found; a missing object,
//! one outside the allowed prefixes and one whose ETag changed since the
//! message are dead-lettered with their reason; a changed object is indexed
//! again with its new content; a bucket prefix is backfilled like a
//! directory, and a backfill of 200 objects killed halfway publishes only
//! the remainder when run again. `https://` against a TLS server on loopback
//! with a CA the test makes: pages of allowed hosts are indexed, also
//! through a redirect; a redirect to the cloud metadata address, a host
//! not allowed and a missing page are dead-lettered with their reason.

mod common;

use common::{TestPipeline, indexed_chunks};
use docpipe_core::config::S3SourcesConfig;
use docpipe_core::{DocumentEvent, TenantId};
use docpipe_search::{Mode, Searcher};
use futures::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use serde_json::json;
use std::path::Path;

/// Puts `bytes` at `key` of the test bucket; returns the object's ETag.
async fn upload(bucket: &dyn ObjectStore, key: &str, bytes: Vec<u8>) -> String {
    let written = bucket
        .put(&ObjectPath::from(key), PutPayload::from(bytes))
        .await
        .expect("SeaweedFS is running (scripts/seaweedfs.sh start)");
    written.e_tag.expect("S3 returns an ETag")
}

fn s3_request(document: &str, uri: &str, etag: Option<&str>) -> String {
    let mut source = json!({"type": "s3", "uri": uri});
    if let Some(etag) = etag {
        source["etag"] = json!(etag);
    }
    json!({"schema_version": 1, "document_id": document, "tenant": "acme", "source": source})
        .to_string()
}

/// `[sources.s3]` for a fresh prefix of the local SeaweedFS's bucket, its
/// credentials in a secrets file (as a mounted Kubernetes secret gives
/// them) in `secrets`; returns it and the prefix.
fn s3_sources(secrets: &Path) -> (S3SourcesConfig, String) {
    let s3 = common::local_s3();
    let (key, secret) = s3.credentials.clone().unwrap();
    let credentials = secrets.join("credentials");
    std::fs::write(
        &credentials,
        format!("[uploads]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let prefix = format!("uploads/{}/", uuid::Uuid::new_v4().simple());
    let config = S3SourcesConfig {
        allowed: vec![format!("docpipe/{prefix}")],
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        credentials_file: Some(credentials),
        profile: Some("uploads".into()),
    };
    (config, prefix)
}

/// A pipeline reading `[sources.s3]` under a fresh prefix of the local
/// SeaweedFS's bucket (see [`s3_sources`]), and that bucket.
struct S3Pipeline {
    pipeline: TestPipeline,
    bucket: object_store::aws::AmazonS3,
    /// The prefix the pipeline may read, ending in `/`.
    prefix: String,
    /// Holds the credentials file for as long as the pipeline runs.
    _secrets: tempfile::TempDir,
}

impl S3Pipeline {
    async fn start(name: &str) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let (sources, prefix) = s3_sources(secrets.path());
        let pipeline = TestPipeline::start_with(
            name,
            |config| config.sources.s3 = Some(sources),
            |store| store,
        )
        .await;
        Self {
            pipeline,
            bucket: common::local_s3().store("docpipe").unwrap(),
            prefix,
            _secrets: secrets,
        }
    }
}

/// Publishes `indexed` (document, body) and `refused` (code, document,
/// body) requests; waits until the first are indexed and the second
/// dead-lettered with their codes. Returns a searcher that sees every
/// acknowledged write.
async fn expect_outcomes(
    pipeline: &mut TestPipeline,
    indexed: &[(&str, String)],
    refused: &[(&str, &str, String)],
) -> Searcher {
    let bodies = indexed
        .iter()
        .map(|(_, body)| body)
        .chain(refused.iter().map(|(_, _, body)| body));
    for body in bodies {
        pipeline
            .publisher
            .publish_ingest_body(body.as_bytes(), None)
            .await
            .unwrap();
    }
    for (document, _) in indexed {
        let event = pipeline.event_for("acme", document).await;
        assert!(indexed_chunks(&event) >= 1, "{document}: {event:?}");
    }
    for (_, document, _) in refused {
        let event = pipeline.event_for("acme", document).await;
        assert!(matches!(event, DocumentEvent::Failed { .. }), "{event:?}");
    }
    let cases: Vec<(&str, String)> = refused
        .iter()
        .map(|(code, _, body)| (*code, body.clone()))
        .collect();
    pipeline.assert_dead_lettered(&cases).await;
    let mut config = pipeline.config.clone();
    config.milvus.search_consistency = docpipe_core::config::ReadConsistency::Strong;
    Searcher::open(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_under_allowed_prefixes_are_indexed_and_the_rest_dead_lettered() {
    let S3Pipeline {
        mut pipeline,
        bucket,
        prefix,
        _secrets,
    } = S3Pipeline::start("s3sources").await;
    let fixtures = common::fixtures();
    let deck = std::fs::read(fixtures.join("formats/tide-pools.pptx")).unwrap();
    let deck_etag = upload(&bucket, &format!("{prefix}decks/tide-pools.pptx"), deck).await;
    let page = std::fs::read(fixtures.join("corpus/man-ls.1.html")).unwrap();
    upload(&bucket, &format!("{prefix}man/ls.html"), page).await;
    let uri = |key: &str| format!("s3://docpipe/{prefix}{key}");

    let indexed = [
        (
            "decks/tide-pools",
            s3_request(
                "decks/tide-pools",
                &uri("decks/tide-pools.pptx"),
                Some(&deck_etag),
            ),
        ),
        ("man/ls", s3_request("man/ls", &uri("man/ls.html"), None)),
    ];
    let refused = [
        (
            "source_not_found",
            "missing",
            s3_request("missing", &uri("nope.pdf"), None),
        ),
        (
            "source_not_allowed",
            "elsewhere",
            s3_request("elsewhere", "s3://docpipe/elsewhere/a.pdf", None),
        ),
        (
            "source_changed",
            "stale",
            s3_request("stale", &uri("man/ls.html"), Some("\"0123456789abcdef\"")),
        ),
    ];
    let searcher = expect_outcomes(&mut pipeline, &indexed, &refused).await;
    let tenant = TenantId::new("acme").unwrap();
    let hits = searcher
        .search(&tenant, "anemone tentacles at low tide", Mode::Hybrid, 3)
        .await
        .unwrap();
    assert_eq!(hits[0].document_id.as_str(), "decks/tide-pools");

    // The deck is replaced by another document under the same key: the
    // new content is indexed in place of the old.
    let replacement = std::fs::read(fixtures.join("formats/cold-chain.docx")).unwrap();
    let etag = upload(
        &bucket,
        &format!("{prefix}decks/tide-pools.pptx"),
        replacement,
    )
    .await;
    assert_ne!(etag, deck_etag);
    let body = s3_request(
        "decks/tide-pools",
        &uri("decks/tide-pools.pptx"),
        Some(&etag),
    );
    pipeline
        .publisher
        .publish_ingest_body(body.as_bytes(), None)
        .await
        .unwrap();
    let event = pipeline.event_for("acme", "decks/tide-pools").await;
    assert!(indexed_chunks(&event) >= 1, "{event:?}");
    let hits = searcher
        .search(
            &tenant,
            "ice-lined refrigerators for vaccines",
            Mode::Hybrid,
            3,
        )
        .await
        .unwrap();
    assert_eq!(hits[0].document_id.as_str(), "decks/tide-pools");
    assert!(
        hits[0].chunk.text.contains("accin"),
        "{:?}",
        hits[0].chunk.text
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_prefix_is_backfilled_like_a_directory() {
    let S3Pipeline {
        mut pipeline,
        bucket,
        prefix,
        _secrets,
    } = S3Pipeline::start("s3backfill").await;
    let fixtures = common::fixtures();
    for (key, fixture) in [
        ("man/ls.1.html", "corpus/man-ls.1.html"),
        ("decks/tide-pools.pptx", "formats/tide-pools.pptx"),
        ("notes/error-handling.md", "formats/error-handling.md"),
        ("notes/expected.json", "formats/expected.json"),
    ] {
        let bytes = std::fs::read(fixtures.join(fixture)).unwrap();
        upload(&bucket, &format!("{prefix}{key}"), bytes).await;
    }
    let pipeline_file = common::write_pipeline(&pipeline.config, pipeline.scratch.path());
    let backfill = || {
        let mut command = common::docpipe(&pipeline_file);
        command
            .args(["backfill", "--tenant", "acme", "--wait", "--json"])
            .arg(format!("s3://docpipe/{prefix}"));
        common::run(command)
    };
    let output = backfill().await;
    // The secret key reached the store, and nothing else: no log line.
    let (_, secret) = common::local_s3().credentials.unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!logs.is_empty() && !logs.contains(&secret), "{logs}");
    let first = common::json(&output);
    assert_eq!(
        (first["published"].as_u64(), first["indexed"].as_u64()),
        (Some(3), Some(3)),
        "{first}"
    );
    for document in ["man/ls.1", "decks/tide-pools", "notes/error-handling"] {
        let event = pipeline.event_for("acme", document).await;
        assert!(indexed_chunks(&event) >= 1, "{document}: {event:?}");
    }
    // Run again: nothing changed, nothing is published; an object gone
    // is removed.
    bucket
        .delete(&ObjectPath::from(format!("{prefix}man/ls.1.html")))
        .await
        .unwrap();
    let second = common::json(&backfill().await);
    assert_eq!(
        (
            second["published"].as_u64(),
            second["skipped"].as_u64(),
            second["removed"].as_u64()
        ),
        (Some(0), Some(2), Some(1)),
        "{second}"
    );
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_backfill_killed_halfway_publishes_exactly_the_remainder_when_run_again() {
    const OBJECTS: u64 = 200;
    let S3Pipeline {
        pipeline,
        bucket,
        prefix,
        _secrets,
    } = S3Pipeline::start("s3resume").await;
    futures::stream::iter(0..OBJECTS)
        .for_each_concurrent(16, |index| {
            let note = format!("# Note {index}\n\nzyxobject{index} marks note {index}.\n");
            let key = format!("{prefix}notes/note-{index:03}.md");
            let bucket = &bucket;
            async move {
                upload(bucket, &key, note.into_bytes()).await;
            }
        })
        .await;
    let pipeline_file = common::write_pipeline(&pipeline.config, pipeline.scratch.path());
    let backfill = || {
        let mut command = common::docpipe(&pipeline_file);
        command
            .args(["backfill", "--tenant", "acme"])
            .arg(format!("s3://docpipe/{prefix}"));
        command
    };

    // Published slowly, then killed (a crash, a cancelled cron job) once
    // some documents are indexed.
    let mut first = backfill()
        .args(["--max-rate", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while pipeline.indexed_document_count().await < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let done = pipeline.settled_document_count().await;
    assert!(
        0 < done && done < OBJECTS,
        "killed halfway: {done} of {OBJECTS} indexed"
    );

    let mut resumed = backfill();
    resumed.args(["--wait", "--json"]);
    let summary = common::json(&common::run(resumed).await);
    assert_eq!(summary["skipped"], done, "{summary}");
    assert_eq!(summary["published"], OBJECTS - done, "{summary}");
    assert_eq!(summary["indexed"], OBJECTS - done, "{summary}");
    assert_eq!(summary["failed"], json!({}), "{summary}");
    assert_eq!(pipeline.indexed_document_count().await, OBJECTS);
    for index in [0, OBJECTS / 2, OBJECTS - 1] {
        let ids = pipeline
            .stored_chunk_ids("acme", &format!("notes/note-{index:03}"))
            .await;
        assert_eq!(ids.len(), 1, "note {index} is one chunk, stored once");
    }
    pipeline.shutdown().await;
}

fn https_request(document: &str, uri: &str) -> String {
    json!({"schema_version": 1, "document_id": document, "tenant": "acme",
           "source": {"type": "https", "uri": uri}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_allowed_hosts_are_fetched_and_the_rest_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = common::test_certificates(dir.path());
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let fixtures = common::fixtures();
    std::fs::copy(fixtures.join("corpus/man-ls.1.html"), site.join("ls.html")).unwrap();
    std::fs::copy(
        fixtures.join("formats/lichens.epub"),
        site.join("lichens.epub"),
    )
    .unwrap();
    let server = common::SupportServer::start(
        "https_server.py",
        &[site.as_os_str(), certificate.as_os_str(), key.as_os_str()],
    );
    let mut pipeline = TestPipeline::start_with(
        "https",
        |config| {
            config.sources.https = Some(docpipe_core::config::HttpsSourcesConfig {
                allowed_hosts: vec!["localhost".into()],
                max_redirects: 2,
                connect_timeout_secs: 5,
                timeout_secs: 30,
                // The test server is on loopback.
                allow_private_addresses: true,
                ca_file: Some(ca),
            });
        },
        |store| store,
    )
    .await;
    let url = |path: &str| format!("https://localhost:{}{path}", server.port);
    let indexed = [
        ("web/ls", https_request("web/ls", &url("/ls.html"))),
        (
            "web/lichens",
            https_request(
                "web/lichens",
                &url(&format!("/redirect?to={}", url("/lichens.epub"))),
            ),
        ),
    ];
    let refused = [
        (
            "source_not_found",
            "web/missing",
            https_request("web/missing", &url("/nope.pdf")),
        ),
        (
            "source_not_allowed",
            "web/metadata",
            https_request(
                "web/metadata",
                &url("/redirect?to=https://169.254.169.254/latest/meta-data/"),
            ),
        ),
        (
            "source_not_allowed",
            "web/by-address",
            https_request(
                "web/by-address",
                &format!("https://127.0.0.1:{}/ls.html", server.port),
            ),
        ),
    ];
    let searcher = expect_outcomes(&mut pipeline, &indexed, &refused).await;
    let hits = searcher
        .search(
            &TenantId::new("acme").unwrap(),
            "fungus and alga living together that reveal whether a town's air is dirty",
            Mode::Hybrid,
            3,
        )
        .await
        .unwrap();
    assert_eq!(hits[0].document_id.as_str(), "web/lichens");
    pipeline.shutdown().await;
}
