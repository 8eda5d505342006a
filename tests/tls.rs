//! Connections over TLS, through TLS terminators on loopback with a CA the
//! test makes: a worker consumes through `amqps://` from stunnel
//! (`make test` installs Debian's stunnel4) in front of the local RabbitMQ
//! (`queue.ca_file`), and writes to Milvus through `https://` from
//! `tests/support/tls_proxy.py` (which, unlike stunnel, offers gRPC's
//! `h2` by ALPN) in front of the local Milvus (`milvus.ca_file`); a server
//! whose certificate no trusted CA signed is refused with a clear error.

mod common;

use common::{TestPipeline, indexed_chunks};
use docpipe_milvus::{MilvusEndpoint, MilvusStore};
use docpipe_queue::Broker;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// stunnel accepting TLS on a free loopback port for a local service;
/// killed on drop.
struct TlsTerminator {
    process: Child,
    port: u16,
}

impl TlsTerminator {
    fn start(dir: &Path, certificate: &Path, key: &Path, service: u16) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join(format!("stunnel-{service}.conf"));
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[tls]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:{service}\ncert = {}\nkey = {}\n",
                certificate.display(),
                key.display()
            ),
        )
        .unwrap();
        let program = if Command::new("stunnel").arg("-version").output().is_ok() {
            "stunnel"
        } else {
            "stunnel4"
        };
        let process = Command::new(program)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel runs (scripts/install-stunnel.sh)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "stunnel listens on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { process, port }
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_consumes_through_amqps_and_writes_to_milvus_over_tls_and_untrusted_certificates_are_refused()
 {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = common::test_certificates(dir.path());
    let broker = TlsTerminator::start(dir.path(), &certificate, &key, 5672);
    let url = format!("amqps://guest:guest@localhost:{}/%2f", broker.port);
    // stunnel offers no ALPN, without which gRPC clients refuse TLS.
    let milvus = common::SupportServer::start(
        "tls_proxy.py",
        &["19530".as_ref(), certificate.as_os_str(), key.as_os_str()],
    );
    let milvus_url = format!("https://localhost:{}", milvus.port);

    let mut pipeline = TestPipeline::start_with(
        "amqps",
        |config| {
            config.queue.url = url.clone();
            config.queue.ca_file = Some(ca.clone());
            config.milvus.url = milvus_url.clone();
            config.milvus.ca_file = Some(ca.clone());
        },
        |store| store,
    )
    .await;
    let page = common::fixtures().join("corpus/man-ls.1.html");
    pipeline.publish_file("acme", "man-ls", &page).await;
    let event = pipeline.event_for("acme", "man-ls").await;
    assert!(indexed_chunks(&event) >= 1, "{event:?}");

    // Another CA signed nothing this broker shows; the system's CAs
    // neither.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = common::test_certificates(other.path());
    for ca_file in [Some(other_ca), None] {
        let mut queue = pipeline.config.queue.clone();
        queue.ca_file = ca_file.clone();
        let error = match Broker::connect(&queue, &pipeline.config.retry).await {
            Ok(_) => panic!("connected trusting {ca_file:?}"),
            Err(error) => error.to_string(),
        };
        assert!(
            error.contains("certificate") && error.contains("queue.ca_file"),
            "{error}"
        );
        assert!(!error.contains("guest:guest"), "no password in {error}");
        let mut milvus = pipeline.config.milvus.clone();
        milvus.ca_file = ca_file;
        let endpoint = MilvusEndpoint::for_pipeline(&milvus).unwrap();
        let error = match MilvusStore::existing(endpoint, "tls_probe").await {
            Ok(_) => panic!("connected to Milvus trusting {:?}", milvus.ca_file),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("milvus.ca_file"), "{error}");
    }
    pipeline.shutdown().await;
}
