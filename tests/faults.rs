//! Fault tests against the real services: a worker killed with SIGKILL
//! again and again, Milvus stopped mid-run, the object store of `s3://`
//! sources stopped mid-run, the broker closing the worker's connection.
//! Each ends with every document indexed exactly once. And Milvus restarted
//! with authentication on: docpipe signs in with a user's password or a
//! token, refuses to start without them, and never logs them nor the
//! broker's password.
//!
//! They stop shared services, so they are ignored by a plain `cargo test`
//! and run one at a time by `make test-faults` (which `make test` runs).

mod common;

use common::TestPipeline;
use common::scenario::Scenario;
use docpipe_core::DocumentEvent;
use docpipe_core::config::S3SourcesConfig;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Runs `scripts/<service>.sh <command>` (start or stop a local service).
fn service_script(service: &str, command: &str) {
    service_script_with(service, command, &[]);
}

/// Like [`service_script`], with `environment` set for the script.
fn service_script_with(service: &str, command: &str, environment: &[(&str, &str)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scripts/{service}.sh"));
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(command)
        .envs(environment.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/{service}.sh {command} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn a_worker_killed_again_and_again_loses_and_duplicates_nothing() {
    let scenario = Scenario::new("kill9", 200, |_| {}).await;
    scenario.publish_all().await;
    // Kill the worker at varying points mid-run, five times.
    for (run, lifetime_ms) in [2_500u64, 4_000, 3_000, 5_000, 3_500]
        .into_iter()
        .enumerate()
    {
        let mut worker = scenario.worker(run);
        tokio::time::sleep(Duration::from_millis(lifetime_ms)).await;
        worker.kill();
    }
    let mut worker = scenario.worker(99);
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate(), "the last worker exits cleanly");
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn milvus_stopped_for_twenty_seconds_mid_run_loses_nothing() {
    // Enough delivery attempts (delays 1, 2, 4, ... s) to outlast the outage.
    let scenario = Scenario::new("milvus_down", 60, |config| config.retry.max_attempts = 10).await;
    let mut worker = scenario.worker(0);
    scenario.publish_all().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    service_script("milvus", "stop");
    tokio::time::sleep(Duration::from_secs(20)).await;
    service_script("milvus", "start");
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate());
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn the_object_store_stopped_mid_run_delays_s3_sources_and_loses_nothing() {
    let s3 = common::local_s3();
    let (key, secret) = s3.credentials.clone().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let credentials = secrets.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    let prefix = format!("faults/{}/", uuid::Uuid::new_v4().simple());
    let allowed = format!("docpipe/{prefix}");
    let mut pipeline = TestPipeline::start_with(
        "s3_down",
        |config| {
            config.retry.max_attempts = 10;
            config.sources.s3 = Some(S3SourcesConfig {
                allowed: vec![allowed],
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                credentials_file: Some(credentials),
                profile: None,
            });
        },
        |store| store,
    )
    .await;
    let bucket = s3.store("docpipe").unwrap();
    const DOCUMENTS: usize = 12;
    for number in 0..DOCUMENTS {
        let page = format!(
            "<html><title>Orchard note {number}</title><body><p>Orchard note {number}: \
             the pear trees of row {number} were pruned and mulched.</p></body></html>"
        );
        bucket
            .put(
                &ObjectPath::from(format!("{prefix}note-{number}.html")),
                PutPayload::from(page.into_bytes()),
            )
            .await
            .expect("SeaweedFS is running");
    }
    service_script("seaweedfs", "stop");
    for number in 0..DOCUMENTS {
        let request = json!({"schema_version": 1, "document_id": format!("note-{number}"),
            "tenant": "acme",
            "source": {"type": "s3", "uri": format!("s3://docpipe/{prefix}note-{number}.html")}});
        pipeline
            .publisher
            .publish_ingest_body(request.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    service_script("seaweedfs", "start");
    let events = pipeline.events(DOCUMENTS).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, DocumentEvent::Failed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let summary = pipeline.shutdown().await;
    assert_eq!(
        (summary.indexed, summary.dead_lettered),
        (DOCUMENTS as u64, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn the_worker_reconnects_when_the_broker_closes_its_connection() {
    let scenario = Scenario::new("broker_close", 100, |_| {}).await;
    let log = scenario.scratch.path().join("worker-0.log");
    let mut worker = scenario.worker(0);
    scenario.publish_all().await;
    // Mid-run: after the first document, long before the last.
    scenario.wait_until_some_indexed().await;
    let closed = std::process::Command::new("rabbitmqctl")
        .args([
            "close_all_connections",
            "docpipe fault test: broker-side close",
        ])
        .status()
        .expect("rabbitmqctl is installed with the broker");
    assert!(closed.success());
    scenario
        .wait_until_all_indexed(Duration::from_secs(600))
        .await;
    assert!(worker.terminate());
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("reconnecting"),
        "the worker noticed and reconnected:\n{log}"
    );
    scenario.assert_exactly_once().await;
    scenario.remove().await;
}

/// A RabbitMQ user allowed everything on the default virtual host;
/// deleted however the test ends.
struct BrokerUser(String);

impl BrokerUser {
    fn add(user: &str, password: &str) -> Self {
        rabbitmqctl(&["add_user", user, password]);
        rabbitmqctl(&["set_permissions", "-p", "/", user, ".*", ".*", ".*"]);
        Self(user.to_owned())
    }
}

impl Drop for BrokerUser {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_user", &self.0]);
    }
}

fn rabbitmqctl(arguments: &[&str]) {
    let output = std::process::Command::new("rabbitmqctl")
        .args(arguments)
        .output()
        .expect("rabbitmqctl is installed with the broker");
    assert!(output.status.success(), "rabbitmqctl {}", arguments[0]);
}

/// The shared Milvus restarted with authentication on; restarted with it
/// off again however the test ends.
struct MilvusWithAuthentication;

impl MilvusWithAuthentication {
    fn start() -> Self {
        service_script_with("milvus", "start", &[("MILVUS_AUTHORIZATION", "true")]);
        Self
    }

    /// Creates a user with `password` and Milvus's built-in admin role,
    /// signed in as root with the server's default password.
    async fn create_admin(&self, url: &str, user: &str, password: &str) {
        use milvus::v2::prelude::*;
        let root = ConnectConfig::new()
            .uri(url)
            .username("root")
            .password("Milvus");
        let client = ClientV2::new(&root).await.expect("root signs in");
        let request = CreateUserRequest::builder()
            .username(user)
            .password(password)
            .build()
            .unwrap();
        client.create_user(request).await.expect("user created");
        let grant = GrantRoleRequest::builder()
            .username(user)
            .role_name("admin")
            .build()
            .unwrap();
        client.grant_role(grant).await.expect("admin role granted");
    }
}

impl Drop for MilvusWithAuthentication {
    fn drop(&mut self) {
        service_script("milvus", "start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault test: stops shared processes; run by `make test-faults`"]
async fn with_authentication_on_docpipe_signs_in_to_milvus_and_the_broker_and_logs_no_secret() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = common::unique_config("milvus_auth", scratch.path());
    let milvus = MilvusWithAuthentication::start();
    let user = format!(
        "docpipe_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    milvus
        .create_admin(&config.milvus.url, &user, &password)
        .await;
    // The broker too, with a user of its own.
    let _broker_user = BrokerUser::add(&user, &password);
    config.queue.url = format!("amqp://{user}:{password}@127.0.0.1:5672/%2f");
    // The worker and the backfill sign in with a user and password from a
    // secrets file.
    let credentials = scratch.path().join("milvus-credentials");
    std::fs::write(&credentials, format!("{user}:{password}\n")).unwrap();
    config.milvus.credentials_file = Some(credentials);
    let signed_in = common::write_pipeline(&config, scratch.path());
    let docs = scratch.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(
        common::fixtures().join("corpus/man-ls.1.html"),
        docs.join("man-ls.html"),
    )
    .unwrap();
    let worker_log = scratch.path().join("worker.log");
    let mut worker = common::DocpipeProcess::start_with(&signed_in, &worker_log, |command| {
        command.env("RUST_LOG", "debug");
    });
    let mut backfill = common::docpipe(&signed_in);
    backfill
        .env("RUST_LOG", "debug")
        .args(["backfill", "--tenant", "acme", "--wait", "--json"])
        .arg(&docs);
    let backfill = common::run(backfill).await;
    assert_eq!(common::json(&backfill)["indexed"], 1);

    // A searcher signs in with a token (`user:password` is one on Milvus).
    let mut tokenless = config.clone();
    tokenless.milvus.credentials_file = None;
    let tokenless_dir = tempfile::tempdir().unwrap();
    let tokenless = common::write_pipeline(&tokenless, tokenless_dir.path());
    let search = |token: Option<String>| {
        let mut command = common::docpipe(&tokenless);
        command
            .env("RUST_LOG", "debug")
            .env_remove("DOCPIPE_MILVUS_TOKEN")
            .args(["search", "list directory contents", "--tenant", "acme"])
            .args(["--mode", "dense", "--json"]);
        if let Some(token) = token {
            command.env("DOCPIPE_MILVUS_TOKEN", token);
        }
        common::run(command)
    };
    let found = search(Some(format!("{user}:{password}"))).await;
    assert!(found.status.success());
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("man-ls"),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
    // Without credentials, or with a wrong password: a clear error, at once.
    for token in [None, Some(format!("{user}:wrong"))] {
        let refused = search(token).await;
        assert!(!refused.status.success());
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(
            error.contains("refused docpipe's credentials")
                && error.contains("DOCPIPE_MILVUS_TOKEN"),
            "{error}"
        );
    }

    assert!(worker.terminate(), "the worker exits cleanly");
    let worker_log = std::fs::read_to_string(&worker_log).unwrap();
    for (what, output) in [
        ("worker", worker_log.as_bytes()),
        ("backfill", &backfill.stderr),
        ("search", &found.stderr),
    ] {
        let output = String::from_utf8_lossy(output);
        assert!(output.lines().count() > 3, "{what} logged at debug level");
        assert!(!output.contains(&password), "{what} logged a password");
    }
    common::remove_resources(&config).await;
}
