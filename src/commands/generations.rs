//! `docpipe reindex`, `generations`, `rollback` and `gc`: the operator's
//! view of index generations (see the `docpipe-catalog` crate).

use super::print_json;
use super::publish::{Tally, publish_bulk};
use crate::cli::{GcArgs, GenerationsArgs, ReindexArgs};
use anyhow::bail;
use docpipe_catalog::{Catalog, Generation, GenerationState};
use docpipe_core::config::IndexBackend;
use docpipe_core::{
    ContentHash, DocumentEvent, DocumentId, PipelineConfig, PipelineVersion, Request, StoreStats,
    TenantId,
};
use docpipe_embed::ModelDir;
use docpipe_index::{Access, GenerationIndex, GenerationSummary};
use docpipe_parsed::{PRUNE_GRACE, ParsedCopies};
use docpipe_pipeline::{drop_generations, pipeline_version};
use docpipe_queue::Broker;
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many times `reindex` publishes what the new generation lacks before
/// giving up (a document missing past the grace period after the first
/// round means workers are failing).
const MAX_ROUNDS: usize = 5;

/// How long `settle_index` waits for Milvus to index sealed segments.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Seals and merges the Milvus segments of `generations` and waits for
/// their index (see `GenerationIndex::settle`): what a backfill or re-index
/// just wrote is then found as well, and as fast, as data Milvus settled on
/// its own minutes later.
/// Not settling in time is reported, not an error: the data is searchable.
pub(super) async fn settle_index(
    config: &PipelineConfig,
    generations: &[&Generation],
) -> anyhow::Result<()> {
    for generation in generations {
        let collection = generation.collection(&config.milvus.collection);
        eprintln!(
            "settling {collection}: sealing and merging its segments, waiting for their index"
        );
        let settled = open_index(config, generation)
            .await?
            .settle(SETTLE_TIMEOUT)
            .await?;
        if !settled {
            eprintln!(
                "warning: Milvus has not settled {collection} (sealed segments indexed, served and merged) \
                 after {} s; until it does, searches of the newest documents may go through its approximate \
                 interim index and visit more segments than needed",
                SETTLE_TIMEOUT.as_secs()
            );
        }
    }
    Ok(())
}

/// How long a live document may be missing from the new generation before
/// `reindex` rebuilds it: an upload being written right now is written to
/// the live generation first, then to the new one, a second or so later.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);

type DocumentKey = (TenantId, DocumentId);

/// What the new generation lacks, by document: a `reindex` for each live
/// document it does not hold with the same content hash in every store, a
/// `remove` for each document it holds that is no longer live. The first
/// listing, made after the new generation was added to the catalog, covers
/// every document written before; every later write goes to both
/// generations, so what appears missing afterwards is being written right
/// now, unless it stays missing past [`IN_FLIGHT_GRACE`].
async fn differences(
    live: &dyn GenerationIndex,
    new: &dyn GenerationIndex,
    version: &PipelineVersion,
) -> anyhow::Result<HashMap<DocumentKey, Request>> {
    let (live_documents, new_documents) = (documents(live).await?, documents(new).await?);
    let mut by_tenant: HashMap<&TenantId, Vec<DocumentId>> = HashMap::new();
    for (tenant, document) in live_documents.keys() {
        by_tenant.entry(tenant).or_default().push(document.clone());
    }
    let mut in_milvus = HashMap::new();
    for (tenant, documents) in by_tenant {
        for (document, hash) in new.content_hashes(tenant, &documents).await? {
            in_milvus.insert((tenant.clone(), document), hash);
        }
    }
    let mut differences = HashMap::new();
    for (key, hash) in &live_documents {
        if new_documents.get(key) != Some(hash) || in_milvus.get(key) != Some(hash) {
            let (tenant, document) = key.clone();
            differences.insert(
                key.clone(),
                Request::reindex(tenant, document, version.clone()),
            );
        }
    }
    for key in new_documents.keys() {
        if !live_documents.contains_key(key) {
            let (tenant, document) = key.clone();
            differences.insert(key.clone(), Request::remove(tenant, document));
        }
    }
    Ok(differences)
}

/// A generation's index, opened for reading.
pub(super) async fn open_index(
    base: &PipelineConfig,
    generation: &Generation,
) -> anyhow::Result<Arc<dyn GenerationIndex>> {
    let model = generation.pipeline(base).model.dir;
    let dimension = ModelDir::open(&model)?.manifest().dimension;
    Ok(docpipe_index::open(base, generation, dimension, Access::Read).await?)
}

/// Every document of a generation, keyed by tenant and id, with its content hash.
async fn documents(
    index: &dyn GenerationIndex,
) -> anyhow::Result<HashMap<DocumentKey, ContentHash>> {
    Ok(index
        .documents(None)
        .await?
        .into_iter()
        .map(|document| {
            (
                (document.tenant, document.document_id),
                document.content_hash,
            )
        })
        .collect())
}

#[derive(serde::Serialize)]
struct ReindexReport {
    generation: String,
    previous: String,
    rounds: usize,
    work: Tally,
    documents: u64,
    chunks_before: u64,
    chunks_after: u64,
    switched: bool,
}

pub async fn reindex(config: &PipelineConfig, args: ReindexArgs) -> anyhow::Result<ExitCode> {
    let catalog = docpipe_index::catalog(config).await?;
    let version = pipeline_version(config, &ModelDir::open(&config.model.dir)?)?;
    let building = Generation::of(config, version.clone(), GenerationState::Building);
    let Some(live) = catalog.read().await?.live().cloned() else {
        return Err(no_family_to_reindex(config).await);
    };
    catalog
        .update(|generations| generations.begin_building(building.clone()))
        .await?;
    eprintln!(
        "building generation {version} from live generation {} (workers now write both)",
        live.version
    );
    let (old, new) = (
        open_index(config, &live).await?,
        open_index(config, &building).await?,
    );
    let broker = Broker::connect(&config.queue, &config.retry).await?;
    let publisher = broker.publisher().await?;
    let mut work = Tally::default();
    let mut rounds = 0;
    let mut missing_since: HashMap<DocumentKey, Instant> = HashMap::new();
    let mut settling: Option<Instant> = None;
    // Compare, publish what is missing or extra, wait; again until nothing
    // is missing but documents being written right now (see `differences`).
    loop {
        let differences = differences(old.as_ref(), new.as_ref(), &version).await?;
        let now = Instant::now();
        missing_since.retain(|key, _| differences.contains_key(key));
        for key in differences.keys() {
            missing_since.entry(key.clone()).or_insert(now);
        }
        let due: Vec<Request> = differences
            .into_iter()
            .filter(|(key, _)| {
                rounds == 0 || now.duration_since(missing_since[key]) >= IN_FLIGHT_GRACE
            })
            .map(|(_, request)| request)
            .collect();
        if due.is_empty() {
            // Watch for a grace period: what stays missing becomes due;
            // what is still missing after it is being written right now,
            // to both generations, and lands whatever is live by then.
            let watching = *settling.get_or_insert(now);
            if missing_since.is_empty() || now.duration_since(watching) >= IN_FLIGHT_GRACE {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        settling = None;
        rounds += 1;
        if rounds > MAX_ROUNDS {
            bail!(
                "generation {version} still lacks {} live documents after {MAX_ROUNDS} rounds; check the workers' logs and re-run",
                due.len()
            );
        }
        let events = broker.subscribe_events().await?;
        publish_bulk(&publisher, &due, args.max_rate, "publishing").await?;
        let pending: HashSet<_> = due
            .iter()
            .map(|request| (request.tenant().clone(), request.document_id().clone()))
            .collect();
        let about_new = |event: &DocumentEvent| match event {
            DocumentEvent::Indexed {
                pipeline_version, ..
            }
            | DocumentEvent::Unchanged {
                pipeline_version, ..
            } => *pipeline_version == version.as_str(),
            _ => true,
        };
        work.published += due.len() as u64;
        let finished = work
            .wait(
                events,
                pending,
                about_new,
                Duration::from_secs(args.timeout_secs),
            )
            .await;
        if !work.failed.is_empty() {
            work.print();
            bail!(
                "some documents could not be rebuilt; fix them and re-run `docpipe reindex` (nothing was switched)"
            );
        }
        if !finished {
            bail!(
                "gave up waiting: no document finished in the last {} s and {} are pending; is a worker running? Re-run to resume",
                args.timeout_secs,
                work.pending.len()
            );
        }
        missing_since.clear();
    }
    // Before searches read it: its newest segments through the real index.
    settle_index(config, &[&building]).await?;
    let (before, after) = (old.stats().await?.listed(), new.stats().await?.listed());
    let switched = !args.no_switch;
    if switched {
        catalog
            .update(|generations| generations.switch_to(&version))
            .await?;
        new.point_alias(&config.milvus.collection).await?;
    }
    let report = ReindexReport {
        generation: version.to_string(),
        previous: live.version.to_string(),
        rounds,
        work,
        documents: after.documents,
        chunks_before: before.chunks,
        chunks_after: after.chunks,
        switched,
    };
    publisher.close().await;
    broker.close().await;
    if args.json {
        print_json(&report);
    } else if switched {
        println!(
            "generation {} is live: {} documents, {} chunks (were {}); previous generation {} is kept up to date \
             (`docpipe rollback` switches back, `docpipe gc` drops it)",
            report.generation,
            report.documents,
            report.chunks_after,
            report.chunks_before,
            report.previous
        );
    } else {
        println!(
            "generation {} is built and verified ({} documents); re-run without --no-switch to switch",
            report.generation, report.documents
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Why there is nothing to re-index, and what to change: a re-index builds
/// a generation beside the live one of the same family, so the pipeline
/// file must name the family that holds the documents.
async fn no_family_to_reindex(config: &PipelineConfig) -> anyhow::Error {
    let index_dir = &config.bm25.index_dir;
    let mut families = Vec::new();
    if config.index.backend == IndexBackend::Embedded {
        let siblings = index_dir
            .parent()
            .and_then(|parent| std::fs::read_dir(parent).ok())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path != index_dir);
        for path in siblings {
            if Catalog::file(&path)
                .read()
                .await
                .is_ok_and(|catalog| catalog.live().is_some())
            {
                families.push(path.display().to_string());
            }
        }
    }
    let found = match families.as_slice() {
        [] => String::new(),
        families => format!(
            " (index families with a live generation: {})",
            families.join(", ")
        ),
    };
    anyhow::anyhow!(
        "nothing to re-index: no live generation in the index family of this pipeline file \
         (milvus.collection = {:?}, bm25.index_dir = {:?}){found}. A re-index builds a new generation \
         beside the live one of the same family: give this file the [milvus] collection and \
         [bm25] index_dir of the pipeline that indexed your documents (pipelines/default.toml: \
         \"docpipe_chunks\" and \".docpipe/index/docpipe_chunks\")",
        config.milvus.collection,
        index_dir.display().to_string()
    )
}

pub async fn list(config: &PipelineConfig, args: GenerationsArgs) -> anyhow::Result<ExitCode> {
    let catalog = docpipe_index::catalog(config).await?;
    let generations = catalog.read().await?;
    let mut rows = Vec::new();
    for generation in &generations.generations {
        let stats = match open_index(config, generation).await {
            Ok(index) => Some(index.stats().await?),
            Err(error) => {
                tracing::warn!(%error, generation = %generation.version, "cannot count");
                None
            }
        };
        rows.push(GenerationSummary::new(generation, stats));
    }
    if args.json {
        print_json(&rows);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no generations in {} yet", catalog.location());
    }
    let count = |stats: Option<StoreStats>| {
        stats.map_or("?".to_owned(), |stats| {
            format!("{}/{}", stats.documents, stats.chunks)
        })
    };
    for row in rows {
        println!(
            "{:<9} {:<28} chunks {:>4}/{:<3} format {} milvus {:>12} tantivy {:>12}  {}",
            row.state,
            row.version,
            row.max_tokens,
            row.overlap_tokens,
            row.index_format,
            count(row.stores.map(|stores| stores.milvus)),
            count(row.stores.and_then(|stores| stores.tantivy)),
            row.model
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(config: &PipelineConfig) -> anyhow::Result<ExitCode> {
    let catalog = docpipe_index::catalog(config).await?;
    let generation = catalog.roll_back(None).await?;
    open_index(config, &generation)
        .await?
        .point_alias(&config.milvus.collection)
        .await?;
    println!("generation {} is live again", generation.version);
    Ok(ExitCode::SUCCESS)
}

pub async fn gc(config: &PipelineConfig, args: GcArgs) -> anyhow::Result<ExitCode> {
    let catalog = docpipe_index::catalog(config).await?;
    let dropped = catalog
        .update(|generations| Ok(generations.collect_garbage(args.building)))
        .await?;
    drop_generations(config, &dropped).await?;
    // Parsed copies still referenced by a remaining generation are kept.
    let mut referenced = HashSet::new();
    for generation in catalog.read().await?.generations {
        let index = open_index(config, &generation).await?;
        for document in index.documents(None).await? {
            referenced.insert(document.content_hash.to_string());
        }
    }
    let pruned = ParsedCopies::for_pipeline(config)?
        .prune(|hash| referenced.contains(hash), PRUNE_GRACE)
        .await?;
    for generation in &dropped {
        println!(
            "dropped {} generation {}",
            generation.state.as_str(),
            generation.version
        );
    }
    println!(
        "dropped {} generations and {pruned} unused parsed copies",
        dropped.len()
    );
    Ok(ExitCode::SUCCESS)
}
