//! Connections to the broker over TLS: a worker consumes through
//! `amqps://` from stunnel, a TLS terminator on loopback in front of the
//! local RabbitMQ, trusting the CA the test makes (`queue.ca_file`); a
//! broker whose certificate no trusted CA signed is refused with a clear
//! error. `make test` installs stunnel (Debian's stunnel4).

mod common;

use common::{TestPipeline, indexed_chunks};
use docpipe_queue::Broker;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// stunnel accepting TLS on a free loopback port for the local RabbitMQ;
/// killed on drop.
struct TlsTerminator {
    process: Child,
    port: u16,
}

impl TlsTerminator {
    fn start(dir: &Path, certificate: &Path, key: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[amqps]\naccept = 127.0.0.1:{port}\n\
                 connect = 127.0.0.1:5672\ncert = {}\nkey = {}\n",
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

    fn url(&self) -> String {
        format!("amqps://guest:guest@localhost:{}/%2f", self.port)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_consumes_through_amqps_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = common::test_certificates(dir.path());
    let terminator = TlsTerminator::start(dir.path(), &certificate, &key);
    let url = terminator.url();

    let mut pipeline = TestPipeline::start_with(
        "amqps",
        |config| {
            config.queue.url = url.clone();
            config.queue.ca_file = Some(ca.clone());
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
    }
    pipeline.shutdown().await;
}
