//! `docpipe publish` and `docpipe backfill`: what an upload service does.

use super::{print_json, tenant};
use crate::cli::{BackfillArgs, PublishArgs};
use anyhow::{Context as _, bail};
use docpipe_core::{DocumentEvent, DocumentId, IngestRequest, PipelineConfig, TenantId};
use docpipe_queue::{Broker, Publisher};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// File extensions backfill publishes (compared case-insensitively).
const DOCUMENT_EXTENSIONS: [&str; 3] = ["pdf", "html", "htm"];

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
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let publisher = broker.publisher().await?;
    for (id, path) in &documents {
        publish_file(&publisher, &tenant, id, path).await?;
        println!("published {} as \"{id}\" (tenant {tenant})", path.display());
    }
    broker.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn backfill(config: &PipelineConfig, args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let tenant = tenant(&args.tenant)?;
    let root = args
        .dir
        .canonicalize()
        .with_context(|| format!("cannot backfill {}", args.dir.display()))?;
    let documents = documents_under(&root)?;
    if documents.is_empty() {
        bail!("no PDF or HTML files under {}", root.display());
    }
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    // Subscribe before publishing, so no event can be missed.
    let events = match args.wait {
        true => Some(broker.subscribe_events().await?),
        false => None,
    };
    let publisher = broker.publisher().await?;
    let bar = progress_bar(documents.len(), "publishing");
    for (id, path) in &documents {
        publish_file(&publisher, &tenant, id, path).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "published {} documents from {} (tenant {tenant})",
        documents.len(),
        root.display()
    );
    let Some(events) = events else {
        broker.close().await;
        return Ok(ExitCode::SUCCESS);
    };

    let mut pending: HashSet<DocumentId> = documents.keys().cloned().collect();
    let mut summary = BackfillSummary::default();
    let bar = progress_bar(documents.len(), "indexing");
    let waiting = async {
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                DocumentEvent::Indexed {
                    document_id,
                    tenant: of,
                    chunks,
                    ..
                } if of == tenant && pending.remove(&document_id) => {
                    summary.indexed += 1;
                    summary.chunks += u64::from(chunks);
                }
                DocumentEvent::Failed {
                    document_id: Some(document_id),
                    tenant: Some(of),
                    reason,
                    ..
                } if of == tenant && pending.remove(&document_id) => {
                    summary.failed.insert(document_id.to_string(), reason);
                }
                _ => continue,
            }
            bar.inc(1);
            if pending.is_empty() {
                break;
            }
        }
    };
    let finished = tokio::time::timeout(Duration::from_secs(args.timeout_secs), waiting).await;
    bar.finish_and_clear();
    broker.close().await;
    summary.pending = pending.iter().map(ToString::to_string).collect();
    summary.pending.sort();
    if finished.is_err() {
        eprintln!(
            "gave up waiting after {} s; is a worker running?",
            args.timeout_secs
        );
    }
    if args.json {
        print_json(&summary);
    } else {
        summary.print();
    }
    Ok(if summary.failed.is_empty() && summary.pending.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, Default, serde::Serialize)]
struct BackfillSummary {
    indexed: u64,
    unchanged: u64,
    chunks: u64,
    failed: BTreeMap<String, String>,
    pending: Vec<String>,
}

impl BackfillSummary {
    fn print(&self) {
        println!(
            "indexed {} documents ({} chunks)",
            self.indexed, self.chunks
        );
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
}

async fn publish_file(
    publisher: &Publisher,
    tenant: &TenantId,
    id: &DocumentId,
    path: &Path,
) -> anyhow::Result<()> {
    let uri = url::Url::from_file_path(path)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute path", path.display()))?;
    let request = IngestRequest::for_file(tenant.clone(), id.clone(), uri.to_string());
    publisher
        .publish_ingest(&request, None)
        .await
        .with_context(|| format!("cannot publish {}", path.display()))
}

/// Every PDF/HTML file under `root` by document id (the path relative to
/// `root` without its final extension). Two files mapping to one id are an
/// error: one would silently replace the other.
fn documents_under(root: &Path) -> anyhow::Result<BTreeMap<DocumentId, PathBuf>> {
    let mut documents = BTreeMap::new();
    let mut directories = vec![root.to_owned()];
    while let Some(directory) = directories.pop() {
        let entries = std::fs::read_dir(&directory)
            .with_context(|| format!("cannot list {}", directory.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                directories.push(path);
                continue;
            }
            let is_document = path.extension().is_some_and(|extension| {
                DOCUMENT_EXTENSIONS
                    .iter()
                    .any(|known| extension.eq_ignore_ascii_case(known))
            });
            if !is_document {
                continue;
            }
            let relative = path
                .strip_prefix(root)
                .expect("walked paths are under the root");
            let id = DocumentId::new(without_extension(relative))
                .with_context(|| format!("{} cannot be a document id", relative.display()))?;
            if let Some(previous) = documents.insert(id.clone(), path.clone()) {
                bail!(
                    "{} and {} would both be document \"{id}\"; rename one",
                    previous.display(),
                    path.display()
                );
            }
        }
    }
    Ok(documents)
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

    #[test]
    fn document_ids_drop_only_the_final_extension() {
        assert_eq!(
            without_extension(Path::new("a/b/man-ls.1.html")),
            "a/b/man-ls.1"
        );
        assert_eq!(without_extension(Path::new("report.pdf")), "report");
    }

    #[test]
    fn backfill_finds_documents_recursively_and_refuses_id_clashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        for file in ["a/b/man-ls.1.html", "top.PDF", "notes.txt"] {
            std::fs::write(dir.path().join(file), "x").unwrap();
        }
        let ids: Vec<String> = documents_under(dir.path())
            .unwrap()
            .keys()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, ["a/b/man-ls.1", "top"]);

        std::fs::write(dir.path().join("top.html"), "x").unwrap();
        let error = documents_under(dir.path()).unwrap_err().to_string();
        assert!(error.contains("would both be document \"top\""), "{error}");
    }
}
