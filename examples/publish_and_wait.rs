//! What an upload service written in Rust does: publish an ingest request
//! with publisher confirms, and wait for the document's event.
//!
//! ```sh
//! docpipe worker &     # (scripts/examples.sh runs this example beside a worker)
//! cargo run --example publish_and_wait -- fixtures/corpus/man-ls.1.html
//! ```
//!
//! Uses the queues of `pipelines/default.toml`; the file must lie under the
//! worker's `sources.allowed_roots`.

use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, PipelineConfig, TenantId};
use docpipe_queue::Broker;
use futures::StreamExt as _;
use std::path::Path;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: publish_and_wait FILE"))?;
    let config = PipelineConfig::load(Path::new("pipelines/default.toml"))?;
    let path = std::fs::canonicalize(&file)?;
    let uri = url::Url::from_file_path(&path)
        .expect("an absolute path")
        .to_string();
    let tenant = TenantId::new("example")?;
    let document = DocumentId::new(format!(
        "examples/{}",
        path.file_stem().unwrap_or_default().to_string_lossy()
    ))?;

    let broker = Broker::connect(&config.queue, &config.retry).await?;
    // Subscribe first: the event may come before the publish returns.
    let events = broker.subscribe_events().await?;
    let publisher = broker.publisher().await?;
    let request = IngestRequest::for_file(tenant.clone(), document.clone(), uri);
    publisher.publish_ingest(&request, None).await?;
    println!("published {document} (confirmed by the broker); waiting for its event");

    let about_it = events.filter(|event| {
        let (of, about) = event.subject();
        std::future::ready(of == Some(&tenant) && about == Some(&document))
    });
    futures::pin_mut!(about_it);
    let event = tokio::time::timeout(Duration::from_secs(120), about_it.next())
        .await
        .map_err(|_| anyhow::anyhow!("no event within 120 s; is a worker running?"))?;
    match event {
        Some(DocumentEvent::Indexed { chunks, .. } | DocumentEvent::Unchanged { chunks, .. }) => {
            println!("{document}: {chunks} chunks indexed")
        }
        Some(DocumentEvent::Failed {
            error_code, reason, ..
        }) => {
            anyhow::bail!("{document} failed ({error_code}): {reason}")
        }
        other => println!("{document}: {other:?}"),
    }
    publisher.close().await;
    broker.close().await;
    Ok(())
}
