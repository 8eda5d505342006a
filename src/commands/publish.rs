//! `docpipe publish` and `docpipe backfill`: what an upload service does.

use super::origins::{Location, Origin};
use super::{print_json, tenant};
use crate::cli::{BackfillArgs, PublishArgs};
use anyhow::{Context as _, bail};
use docpipe_core::{
    DocumentEvent, DocumentFormat, DocumentId, IngestRequest, Metadata, PipelineConfig, Request,
    StoredDocument, TenantId,
};
use docpipe_queue::{Broker, Publisher};
use futures::{Stream, StreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Which files backfill publishes: those whose extension names a format
/// docpipe reads; images only when the pipeline reads them by OCR
/// (`parse.ocr`).
fn is_backfilled(format: DocumentFormat, ocr: bool) -> bool {
    format != DocumentFormat::Image || ocr
}

pub async fn publish(config: &PipelineConfig, args: PublishArgs) -> anyhow::Result<ExitCode> {
    let tenant = tenant(&args.tenant)?;
    if args.id.is_some() && args.files.len() != 1 {
        bail!("--id names one document; give exactly one file with it");
    }
    let mut documents = Vec::new();
    for file in &args.files {
        let path = file
            .canonicalize()
            .with_context(|| format!("cannot publish {}", file.display()))?;
        let id = match &args.id {
            Some(id) => id.clone(),
            None => without_extension(Path::new(path.file_name().unwrap_or_default())),
        };
        documents.push((DocumentId::new(id).context("invalid document id")?, path));
    }
    let metadata: Metadata = args.metadata.into_iter().collect();
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let publisher = broker.publisher().await?;
    for (id, path) in &documents {
        let mut request = file_request(&tenant, id, path)?;
        request.metadata = metadata.clone();
        publish_file(&publisher, &request, path).await?;
        println!("published {} as \"{id}\" (tenant {tenant})", path.display());
    }
    publisher.close().await;
    broker.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn backfill(config: &PipelineConfig, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let tenant = tenant(&args.tenant)?;
    let origin = Origin::new(&args.from, config)?;
    let ocr = config.parse.ocr;
    let documents = origin
        .documents(|format| is_backfilled(format, ocr))
        .await?;
    if documents.is_empty() {
        bail!(
            "no documents under {} (docpipe reads {}{})",
            origin.shown(),
            "PDF, HTML, Markdown, text, RTF, Office, OpenDocument and EPUB files",
            if ocr { ", and images" } else { "" }
        );
    }
    let plan = plan_backfill(config, &tenant, &origin, &documents).await?;
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    // Subscribe before publishing, so no event can be missed.
    let events = match args.wait {
        true => Some(broker.subscribe_events().await?),
        false => None,
    };
    let publisher = broker.publisher().await?;
    let requests: Vec<Request> = plan
        .publish
        .iter()
        .map(|(id, location)| origin.request(&tenant, id, location).map(Request::Index))
        .chain(
            plan.remove
                .iter()
                .map(|id| Ok(Request::remove(tenant.clone(), id.clone()))),
        )
        .collect::<anyhow::Result<_>>()?;
    publish_bulk(&publisher, &requests, args.max_rate, "publishing").await?;
    eprintln!(
        "published {} documents and {} removals from {} (tenant {tenant}); {} already indexed",
        plan.publish.len(),
        plan.remove.len(),
        origin.shown(),
        plan.skipped
    );
    let mut summary = Tally {
        published: plan.publish.len() as u64,
        skipped: plan.skipped,
        ..Tally::default()
    };
    if let Some(events) = events {
        let pending = requests
            .iter()
            .map(|request| (request.tenant().clone(), request.document_id().clone()))
            .collect();
        let patience = Duration::from_secs(args.timeout_secs);
        let finished = summary.wait(events, pending, |_| true, patience).await;
        if finished {
            let generations = docpipe_index::catalog(config).await?.read().await?;
            super::generations::settle_index(config, &generations.written()).await?;
        } else {
            eprintln!(
                "gave up waiting: no document finished in the last {} s; is a worker running?",
                args.timeout_secs
            );
        }
    }
    publisher.close().await;
    broker.close().await;
    if args.json {
        print_json(&summary);
    } else {
        summary.print();
    }
    Ok(summary.exit_code())
}

/// What a backfill publishes.
struct BackfillPlan<'a> {
    /// New or changed documents.
    publish: Vec<(DocumentId, &'a Location)>,
    /// Documents indexed from under the directory whose file is gone.
    remove: Vec<DocumentId>,
    /// Documents already indexed with the same content and pipeline version.
    skipped: u64,
}

/// Compares the directory with what the live generation holds of the
/// tenant: files whose content hash and pipeline version are already there
/// are skipped (which is what makes an interrupted backfill resumable), and
/// documents indexed from under `root` whose file is gone are removed.
/// Documents from other sources are never touched.
async fn plan_backfill<'a>(
    config: &PipelineConfig,
    tenant: &TenantId,
    origin: &Origin,
    documents: &'a BTreeMap<DocumentId, Location>,
) -> anyhow::Result<BackfillPlan<'a>> {
    let catalog = docpipe_index::catalog(config).await?;
    let indexed: BTreeMap<DocumentId, StoredDocument> = match catalog.read().await?.live() {
        Some(live) => super::generations::open_index(config, live)
            .await?
            .documents(Some(tenant))
            .await?
            .into_iter()
            .map(|document| (document.document_id.clone(), document))
            .collect(),
        None => BTreeMap::new(),
    };
    let mut plan = BackfillPlan {
        publish: Vec::new(),
        remove: Vec::new(),
        skipped: 0,
    };
    let bar = progress_bar(documents.len(), "checking");
    for (id, location) in documents {
        // The worker stamps the live generation's version; a document read
        // here is current if its bytes hash to what was indexed.
        let current = match indexed.get(id) {
            Some(stored) => origin
                .content_hash(location)
                .await
                .is_some_and(|hash| hash == stored.content_hash),
            None => false,
        };
        if current {
            plan.skipped += 1;
        } else {
            plan.publish.push((id.clone(), location));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let scope = origin.scope()?;
    plan.remove = indexed
        .into_values()
        .filter(|stored| {
            stored.source.starts_with(&scope) && !documents.contains_key(&stored.document_id)
        })
        .map(|stored| stored.document_id)
        .collect();
    Ok(plan)
}

/// Publishes bulk requests with a progress bar, at most `max_rate` per second.
pub(super) async fn publish_bulk(
    publisher: &Publisher,
    requests: &[Request],
    max_rate: Option<f64>,
    message: &'static str,
) -> anyhow::Result<()> {
    let interval = match max_rate {
        Some(rate) if rate > 0.0 => Some(Duration::from_secs_f64(1.0 / rate)),
        Some(rate) => bail!("--max-rate must be positive, not {rate}"),
        None => None,
    };
    let mut ticks = interval.map(tokio::time::interval);
    let bar = progress_bar(requests.len(), message);
    for request in requests {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        let span = tracing::info_span!(
            "docpipe.publish",
            document.id = %request.document_id(),
            tenant = %request.tenant()
        );
        let traceparent = docpipe_telemetry::propagation::traceparent_of(&span);
        publisher
            .publish_bulk(request, traceparent.as_deref())
            .await
            .with_context(|| format!("cannot publish {}", request.document_id()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Outcomes of bulk work, counted from document events.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Tally {
    /// Requests published.
    pub published: u64,
    /// Documents not published because they were already current.
    pub skipped: u64,
    /// Documents indexed.
    pub indexed: u64,
    /// Documents found unchanged by the worker.
    pub unchanged: u64,
    /// Requests for a version older than the one already indexed.
    pub superseded: u64,
    /// Documents removed.
    pub removed: u64,
    /// Chunks of the documents indexed or unchanged.
    pub chunks: u64,
    /// Failed documents and why.
    pub failed: BTreeMap<String, String>,
    /// Documents with no outcome yet when waiting ended.
    pub pending: Vec<String>,
}

type DocumentKey = (TenantId, DocumentId);

impl Tally {
    /// Counts the events about `pending` documents that `accept` lets
    /// through, with a progress bar, until all arrived or `patience` passed
    /// without one (a large backfill takes as long as it takes, as long as
    /// documents keep finishing); returns whether all arrived.
    pub async fn wait(
        &mut self,
        events: impl Stream<Item = DocumentEvent>,
        mut pending: HashSet<DocumentKey>,
        accept: impl Fn(&DocumentEvent) -> bool,
        patience: Duration,
    ) -> bool {
        let bar = progress_bar(pending.len(), "waiting");
        futures::pin_mut!(events);
        let mut deadline = tokio::time::Instant::now() + patience;
        while !pending.is_empty() {
            let event = tokio::select! {
                event = events.next() => event,
                () = tokio::time::sleep_until(deadline) => break,
            };
            let Some(event) = event else {
                break;
            };
            let (Some(tenant), Some(document)) = event.subject() else {
                continue;
            };
            if !accept(&event) || !pending.remove(&(tenant.clone(), document.clone())) {
                continue;
            }
            deadline = tokio::time::Instant::now() + patience;
            match &event {
                DocumentEvent::Indexed { chunks, .. } => {
                    self.indexed += 1;
                    self.chunks += u64::from(*chunks);
                }
                DocumentEvent::Unchanged { chunks, .. } => {
                    self.unchanged += 1;
                    self.chunks += u64::from(*chunks);
                }
                DocumentEvent::Superseded { .. } => self.superseded += 1,
                DocumentEvent::Removed { .. } => self.removed += 1,
                DocumentEvent::Failed { reason, .. } => {
                    self.failed.insert(document.to_string(), reason.clone());
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        self.pending = pending
            .into_iter()
            .map(|(_, document)| document.to_string())
            .collect();
        self.pending.sort();
        self.pending.is_empty()
    }

    /// Prints the tally for people.
    pub fn print(&self) {
        println!(
            "published {}, already current {}; indexed {} and unchanged {} ({} chunks), removed {}",
            self.published, self.skipped, self.indexed, self.unchanged, self.chunks, self.removed
        );
        if self.superseded > 0 {
            println!(
                "superseded {} (a newer version of each was already indexed)",
                self.superseded
            );
        }
        if !self.failed.is_empty() {
            println!("failed {}:", self.failed.len());
            for (document, reason) in &self.failed {
                println!("  {document}: {reason}");
            }
        }
        if !self.pending.is_empty() {
            println!(
                "still pending {}: {}",
                self.pending.len(),
                self.pending.join(", ")
            );
        }
    }

    /// Failure if any document failed or is still pending.
    pub fn exit_code(&self) -> ExitCode {
        if self.failed.is_empty() && self.pending.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// A request for the file at `path`, versioned by its modification time
/// (milliseconds), so that of two versions of a file in flight at once the
/// newer one ends up indexed.
/// The media type to declare for a Markdown, CSV or plain-text file:
/// bytes cannot tell them apart, the extension does.
pub(super) fn declared_text_type(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|extension| DocumentFormat::from_extension(&extension.to_string_lossy()))
        .filter(|format| format.is_plain_text_family() && *format != DocumentFormat::Html)
        .map(|format| format.media_type().to_owned())
}

pub(super) fn file_request(
    tenant: &TenantId,
    id: &DocumentId,
    path: &Path,
) -> anyhow::Result<IngestRequest> {
    let uri = url::Url::from_file_path(path)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute path", path.display()))?;
    let modified = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .with_context(|| format!("cannot read the modification time of {}", path.display()))?;
    let version = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let mut request = IngestRequest::for_file(tenant.clone(), id.clone(), uri.to_string())
        .with_document_version(version);
    request.content_type = declared_text_type(path);
    Ok(request)
}

async fn publish_file(
    publisher: &Publisher,
    request: &IngestRequest,
    path: &Path,
) -> anyhow::Result<()> {
    // The worker's spans continue this one's trace (when tracing is on).
    let span = tracing::info_span!(
        "docpipe.publish",
        document.id = %request.document_id,
        tenant = %request.tenant
    );
    let traceparent = docpipe_telemetry::propagation::traceparent_of(&span);
    publisher
        .publish_ingest(request, traceparent.as_deref())
        .await
        .with_context(|| format!("cannot publish {}", path.display()))
}

/// Every file under `root`, recursively.
pub(super) fn files_under(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut directories = vec![root.to_owned()];
    while let Some(directory) = directories.pop() {
        let entries = std::fs::read_dir(&directory)
            .with_context(|| format!("cannot list {}", directory.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                directories.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// `a/b/man-ls.1.html` → `a/b/man-ls.1`, with `/` separators.
fn without_extension(relative: &Path) -> String {
    let text = relative.with_extension("").to_string_lossy().into_owned();
    text.replace(std::path::MAIN_SEPARATOR, "/")
}

fn progress_bar(length: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length as u64).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexed(document: &str) -> DocumentEvent {
        DocumentEvent::Indexed {
            document_id: DocumentId::new(document).unwrap(),
            tenant: TenantId::new("t").unwrap(),
            chunks: 1,
            pipeline_version: "default@000000000000".into(),
            at_unix_ms: 0,
        }
    }

    fn pending(documents: &[&str]) -> HashSet<DocumentKey> {
        documents
            .iter()
            .map(|document| {
                (
                    TenantId::new("t").unwrap(),
                    DocumentId::new(*document).unwrap(),
                )
            })
            .collect()
    }

    /// An event about each of `documents`, one per `gap`.
    fn trickle(documents: &[&str], gap: Duration) -> impl Stream<Item = DocumentEvent> {
        let events: Vec<DocumentEvent> =
            documents.iter().map(|document| indexed(document)).collect();
        futures::stream::iter(events).then(move |event| async move {
            tokio::time::sleep(gap).await;
            event
        })
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_goes_on_as_long_as_documents_keep_finishing() {
        let documents = ["a", "b", "c", "d"];
        let mut tally = Tally::default();
        // 4 minutes in all, never 90 s without progress.
        let events = trickle(&documents, Duration::from_secs(60));
        let finished = tally
            .wait(
                events,
                pending(&documents),
                |_| true,
                Duration::from_secs(90),
            )
            .await;
        assert!(finished, "pending: {:?}", tally.pending);
        assert_eq!(tally.indexed, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_once_nothing_finishes_for_its_patience() {
        let mut tally = Tally::default();
        let events = trickle(&["a"], Duration::from_secs(60)).chain(futures::stream::pending());
        let finished = tally
            .wait(
                events,
                pending(&["a", "b"]),
                |_| true,
                Duration::from_secs(90),
            )
            .await;
        assert!(!finished);
        assert_eq!(
            (tally.indexed, tally.pending.clone()),
            (1, vec!["b".to_owned()])
        );
    }

    #[test]
    fn document_ids_drop_only_the_final_extension() {
        assert_eq!(
            without_extension(Path::new("a/b/man-ls.1.html")),
            "a/b/man-ls.1"
        );
        assert_eq!(without_extension(Path::new("report.pdf")), "report");
    }

    #[tokio::test]
    async fn backfill_finds_documents_recursively_and_refuses_id_clashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        for file in [
            "a/b/man-ls.1.html",
            "top.PDF",
            "notes.txt",
            "deck.pptx",
            "scan.png",
            "tool.exe",
        ] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        let origin = Origin::Directory(dir.path().canonicalize().unwrap());
        let ids = async |ocr: bool| -> Vec<String> {
            origin
                .documents(|format| is_backfilled(format, ocr))
                .await
                .unwrap()
                .keys()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(ids(false).await, ["a/b/man-ls.1", "deck", "notes", "top"]);
        assert_eq!(
            ids(true).await,
            ["a/b/man-ls.1", "deck", "notes", "scan", "top"]
        );

        std::fs::write(dir.path().join("top.html"), "x").unwrap();
        let error = origin.documents(|_| true).await.unwrap_err().to_string();
        assert!(error.contains("would both be document \"top\""), "{error}");
    }
}
