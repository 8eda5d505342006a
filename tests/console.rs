//! The console in headless Chromium, driven by Playwright
//! (`tests/console/console.test.cjs`; `scripts/install-browser.sh`
//! installs Debian's Chromium and playwright-core, `make test` runs it): a
//! real worker indexes the fixtures corpus for tenant `acme` and a private
//! document for `globex`, two uploads fail for want of their files, and a
//! `docpipe serve` process serves the console. The page searches, looks a
//! document up with its chunks, shows the ingestion status and the
//! generations, replays a dead letter after its file appeared (then the
//! document is indexed), and a tenant key sees nothing of the other tenant
//! in any view. Screenshots of every view go to
//! `target/console-screenshots/`.

mod common;

use common::file_uri;
use common::serve::{QUERY, SECRET_WORD, Scenario, wait_for_document};
use docpipe_queue::Broker;
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// Publishes an upload of `path` (which does not exist yet) for `tenant`.
async fn publish_missing_file(broker: &Broker, tenant: &str, document: &str, path: &Path) {
    let request = json!({"schema_version": 1, "document_id": document, "tenant": tenant,
        "source": {"type": "file", "uri": file_uri(path)}});
    let publisher = broker.publisher().await.unwrap();
    publisher
        .publish_ingest_body(request.to_string().as_bytes(), None)
        .await
        .unwrap();
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_searches_looks_up_replays_dead_letters_and_keeps_tenants_apart() {
    let scenario = Scenario::start("console", |_| {}, &[]).await;
    let (server, keys) = (&scenario.server, &scenario.keys);
    let all_keys = [&keys.acme, &keys.globex, &keys.admin].map(String::clone);
    let late = scenario.scratch.path().join("late-notes.html");
    let broker = Broker::connect(&scenario.config.queue, &scenario.config.retry)
        .await
        .unwrap();
    publish_missing_file(&broker, "acme", "late-notes", &late).await;
    publish_missing_file(
        &broker,
        "globex",
        "globex-only-draft",
        &scenario.scratch.path().join("draft.html"),
    )
    .await;
    for (key, document) in [
        (&keys.acme, "late-notes"),
        (&keys.globex, "globex-only-draft"),
    ] {
        wait_for_document(server, key, document, |status| {
            status["dead_letter"]["error_code"] == "source_not_found"
        })
        .await;
    }
    // The file arrives: a replay from the page will index it.
    std::fs::write(
        &late,
        "<html><head><title>Late notes</title></head><body><h1>Late notes</h1>\
         <p>The tidewater survey resumes after the storm season.</p></body></html>",
    )
    .unwrap();

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let modules =
        Path::new(&std::env::var("DOCPIPE_HOME").unwrap()).join("console-tests/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/install-browser.sh (make test does)"
    );
    let (query, expected) = QUERY;
    let mut browser = Command::new("node");
    browser
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/console.test.cjs"))
        .env("NODE_PATH", &modules)
        .env("CONSOLE_URL", &server.base)
        .env("KEY_ACME", &keys.acme)
        .env("KEY_GLOBEX", &keys.globex)
        .env("KEY_ADMIN", &keys.admin)
        .env("QUERY", query)
        .env("EXPECTED_DOCUMENT", expected)
        .env("SECRET_WORD", SECRET_WORD)
        .env("SCREENSHOTS", &screenshots);
    let output = common::run(browser).await;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser test failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for view in [
        "search",
        "document",
        "ingestion",
        "dead-letters",
        "generations",
    ] {
        let shot = screenshots.join(format!("{view}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|file| file.len() > 1000),
            "{shot:?}"
        );
    }

    // The replayed upload is indexed; the other tenant's letter is untouched.
    let status = wait_for_document(server, &keys.acme, "late-notes", |status| {
        status["searchable"] == true
    })
    .await;
    assert!(status["dead_letter"].is_null(), "{status}");
    let (_, letters) = server.get(&keys.admin, "/v1/dead-letters").await;
    let remaining: Vec<_> = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| letter["document_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(remaining, ["globex-only-draft"], "{letters}");
    broker.close().await;
    let log = scenario.finish().await;
    for key in all_keys {
        assert!(!log.contains(&key), "a key was logged");
    }
}
