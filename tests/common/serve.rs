//! `docpipe serve` scenarios: a real worker process indexes the fixtures
//! corpus for tenant `acme` and a private document for tenant `globex`,
//! keys are made with `docpipe keys add`, and a server process answers
//! over HTTP (tests/serve.rs, tests/console.rs).

use super::{DocpipeProcess, json, remove_resources, run, with_local_s3_credentials};
use docpipe_core::PipelineConfig;
use docpipe_core::config::ReadConsistency;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
/// A word only the other tenant's document holds.
pub const SECRET_WORD: &str = "zanzibarquokka";

/// A keyword query of the gold set, and the document it finds.
pub const QUERY: (&str, &str) = (
    "x-dead-letter-exchange x-death header",
    "guides/rabbitmq-operations",
);

/// A `docpipe` command with `pipeline`, and the local S3's credentials for
/// the `milvus` backend's parsed copies.
pub fn docpipe(pipeline: &Path) -> std::process::Command {
    let mut command = super::docpipe(pipeline);
    with_local_s3_credentials(&mut command);
    command
}

/// Starts a worker process on `pipeline`.
pub fn worker(pipeline: &Path, scratch: &Path) -> DocpipeProcess {
    DocpipeProcess::start_with(pipeline, &scratch.join("worker.log"), |command| {
        with_local_s3_credentials(command);
    })
}

/// The API keys of the scenario.
pub struct Keys {
    pub acme: String,
    pub globex: String,
    pub admin: String,
}

/// A `docpipe serve` process and how to reach it.
pub struct Server {
    pub process: DocpipeProcess,
    pub base: String,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts `docpipe serve` on a free port and waits until it is ready.
    pub async fn start(pipeline: &Path, keys: &Path, log: &Path, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = docpipe(pipeline);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--keys")
            .arg(keys)
            .args(extra);
        let server = Self {
            process: DocpipeProcess::spawn(command, log),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = server.http.get(server.url("/readyz")).send().await;
            if ready.is_ok_and(|response| response.status() == StatusCode::OK) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server was not ready within 60 s: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs `body` to `/v1/search` with `key`; the status and the JSON answer.
    pub async fn search(&self, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url("/v1/search")).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        answer(request.send().await.unwrap()).await
    }

    /// GETs `path` with `key`.
    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let request = self.http.get(self.url(path)).bearer_auth(key);
        answer(request.send().await.unwrap()).await
    }

    /// The document ids a search found, best first.
    pub async fn found(&self, key: &str, body: Value) -> Vec<String> {
        let (status, answer) = self.search(Some(key), &body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        document_ids(&answer)
    }
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("a {status} answer is not JSON ({error}): {text}"));
    (status, body)
}

pub fn document_ids(answer: &Value) -> Vec<String> {
    answer["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["document_id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

/// Makes a key with `docpipe keys add`; returns what it printed once.
pub async fn add_key(pipeline: &Path, keys: &Path, name: &str, role: &[&str]) -> String {
    let mut command = docpipe(pipeline);
    command
        .args(["keys", "add", name])
        .args(role)
        .arg("--file")
        .arg(keys);
    let output = run(command).await;
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Indexes the fixtures corpus as tenant `acme` and a private document as
/// tenant `globex` through a worker process; makes the three keys.
pub async fn index_and_make_keys(pipeline: &Path, scratch: &Path) -> (PathBuf, Keys) {
    let backfill = |tenant: &str, dir: &Path| {
        let mut command = docpipe(pipeline);
        command
            .args(["backfill", "--tenant", tenant, "--wait", "--json"])
            .arg(dir);
        run(command)
    };
    let corpus = super::fixtures().join("corpus");
    let indexed = json(&backfill("acme", &corpus).await);
    assert_eq!(indexed["indexed"], 8, "{indexed}");
    let private = scratch.join("globex");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(
        private.join("secret-plan.html"),
        format!(
            "<html><head><title>Secret plan</title></head><body><h1>Secret plan</h1>\
             <p>The {SECRET_WORD} launch moves to the spring; tell nobody outside globex.</p>\
             </body></html>"
        ),
    )
    .unwrap();
    let indexed = json(&backfill("globex", &private).await);
    assert_eq!(indexed["indexed"], 1, "{indexed}");

    let keys_file = scratch.join("keys.toml");
    let keys = Keys {
        acme: add_key(pipeline, &keys_file, "acme-app", &["--tenant", "acme"]).await,
        globex: add_key(pipeline, &keys_file, "globex-app", &["--tenant", "globex"]).await,
        admin: add_key(pipeline, &keys_file, "ops", &["--admin"]).await,
    };
    let stored = std::fs::read_to_string(&keys_file).unwrap();
    assert!(!stored.contains(&keys.acme), "the file holds digests only");
    (keys_file, keys)
}

/// The configuration of a scenario: reads are Strong so that what a
/// backfill just indexed is searched at once.
pub fn scenario_config(test: &str, scratch: &Path) -> PipelineConfig {
    let mut config = super::unique_config(test, scratch);
    config.milvus.search_consistency = ReadConsistency::Strong;
    config
}

/// A scenario running: the corpus indexed by a worker process, the keys
/// made, a server up.
pub struct Scenario {
    pub config: PipelineConfig,
    pub pipeline: PathBuf,
    pub keys: Keys,
    pub server: Server,
    pub log: PathBuf,
    pub worker: DocpipeProcess,
    pub scratch: tempfile::TempDir,
}

impl Scenario {
    /// Indexes and serves with the pipeline as `configure` leaves it and
    /// `serve_args` on the server's command line.
    pub async fn start(
        test: &str,
        configure: impl FnOnce(&mut PipelineConfig),
        serve_args: &[&str],
    ) -> Self {
        let scratch = tempfile::tempdir().unwrap();
        let mut config = scenario_config(test, scratch.path());
        configure(&mut config);
        let pipeline = super::write_pipeline(&config, scratch.path());
        let worker = worker(&pipeline, scratch.path());
        let (keys_file, keys) = index_and_make_keys(&pipeline, scratch.path()).await;
        let log = scratch.path().join("serve.log");
        let server = Server::start(&pipeline, &keys_file, &log, serve_args).await;
        Self {
            config,
            pipeline,
            keys,
            server,
            log,
            worker,
            scratch,
        }
    }

    /// Stops the server and the worker; removes the queues and stores.
    /// Returns the server's log.
    pub async fn finish(mut self) -> String {
        assert!(
            self.server.process.terminate(),
            "SIGTERM stops the server cleanly"
        );
        assert!(self.worker.terminate());
        remove_resources(&self.config).await;
        std::fs::read_to_string(&self.log).unwrap()
    }
}
/// Polls the document's status until `done` holds (the worker is
/// asynchronous); returns it.
pub async fn wait_for_document(
    server: &Server,
    key: &str,
    document: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = server.get(key, &format!("/v1/documents/{document}")).await;
        if status == StatusCode::OK && done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{document}: {status} {answer}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
