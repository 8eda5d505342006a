//! `GET /v1/documents/{id}`: the first question of every RAG incident,
//! "was the document indexed at all?", answered from the index, the
//! document events and the dead-letter queue.

use crate::activity::{Bucket, OutcomeHistory};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use docpipe_catalog::Generation;
use docpipe_core::{
    ChunkHit, DocumentEvent, DocumentId, PipelineConfig, PipelineVersion, TenantId,
};
use docpipe_embed::ModelDir;
use docpipe_index::{Access, GenerationIndex};
use lru::LruCache;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

/// Documents whose last event is remembered (about 300 bytes each).
const REMEMBERED_EVENTS: usize = 100_000;

/// Dead letters read when looking for a document's.
const DEAD_LETTERS_SCANNED: usize = 10_000;

/// The last event of recently handled documents, from the events exchange
/// since the server started (events are not stored by the broker).
pub(crate) struct RecentEvents {
    last: Mutex<LruCache<(TenantId, DocumentId), DocumentEvent>>,
    outcomes: Mutex<OutcomeHistory>,
    since_unix_ms: u64,
}

impl RecentEvents {
    /// Starts following the events exchange of `config`'s broker,
    /// reconnecting after a broker restart.
    pub(crate) fn follow(config: PipelineConfig) -> Arc<Self> {
        let events = Arc::new(Self {
            last: Mutex::new(LruCache::new(
                NonZeroUsize::new(REMEMBERED_EVENTS).expect("non-zero"),
            )),
            outcomes: Mutex::new(OutcomeHistory::default()),
            since_unix_ms: docpipe_core::event::now_unix_ms(),
        });
        let recorder = events.clone();
        crate::follow(config, DocumentEvent::ROUTING_PATTERN, move |event| {
            recorder.record(event)
        });
        events
    }

    fn record(&self, event: DocumentEvent) {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count(&event, docpipe_core::event::now_unix_ms());
        if let (Some(tenant), Some(document)) = event.subject() {
            let key = (tenant.clone(), document.clone());
            self.lock().put(key, event);
        }
    }

    fn last(&self, tenant: &TenantId, document: &DocumentId) -> Option<DocumentEvent> {
        self.lock()
            .get(&(tenant.clone(), document.clone()))
            .cloned()
    }

    /// Outcomes by type in the last minutes before `now_ms`.
    pub(crate) fn outcomes(&self, now_ms: u64) -> Vec<Bucket> {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recent(now_ms)
    }

    /// When this server started following events.
    pub(crate) fn since_unix_ms(&self) -> u64 {
        self.since_unix_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<(TenantId, DocumentId), DocumentEvent>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Looks documents up in every generation the catalog lists.
pub(crate) struct DocumentLookup {
    base: PipelineConfig,
    events: Arc<RecentEvents>,
    indexes: tokio::sync::Mutex<HashMap<PipelineVersion, Arc<dyn GenerationIndex>>>,
}

/// What one generation holds of a document.
#[derive(Debug, serde::Serialize)]
struct Holding {
    generation: String,
    state: &'static str,
    /// Chunks in each store (`milvus`, and `tantivy` in the embedded backend).
    chunks: BTreeMap<&'static str, usize>,
    content_hash: String,
    pipeline_version: String,
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_version: Option<u64>,
}

/// The answer of a document lookup.
#[derive(Debug, serde::Serialize)]
pub(crate) struct DocumentStatus {
    tenant: TenantId,
    document_id: DocumentId,
    /// Whether the live generation holds it: searches can find it.
    searchable: bool,
    generations: Vec<Holding>,
    /// Its last event since this server started, if any.
    last_event: Option<DocumentEvent>,
    /// Its most recent dead letter, if one is waiting in the dead-letter queue.
    dead_letter: Option<serde_json::Value>,
    /// Its chunks in the live generation, in order (`?chunks=true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    chunks: Option<Vec<ChunkHit>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LookupQuery {
    tenant: Option<TenantId>,
    /// Whether to include the chunks the live generation holds.
    #[serde(default)]
    chunks: bool,
}

pub(crate) async fn document(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<LookupQuery>, QueryRejection>,
) -> Result<Json<DocumentStatus>, ApiError> {
    let principal = state.principal(&headers)?;
    let Path(id) = id.map_err(|error| ApiError::BadRequest(error.body_text()))?;
    let Query(query) = query.map_err(|error| ApiError::BadRequest(error.body_text()))?;
    let tenant = state.tenant(principal, query.tenant)?;
    let document = DocumentId::new(id)
        .map_err(|error| ApiError::BadRequest(format!("invalid document id: {error}")))?;
    let mut status = state.documents.status(&state, tenant, document).await?;
    if status.generations.is_empty() && status.last_event.is_none() && status.dead_letter.is_none()
    {
        return Err(ApiError::NotFound(format!(
            "no generation holds document {:?} of tenant {:?}, no event about it was seen since this server started, and no dead letter names it; check the id and the tenant, or whether it was published",
            status.document_id, status.tenant
        )));
    }
    if query.chunks && status.searchable {
        let index = state.searcher.live_index().await?;
        status.chunks = Some(
            index
                .document_text(&status.tenant, &status.document_id)
                .await?,
        );
    }
    Ok(Json(status))
}

impl DocumentLookup {
    pub(crate) fn new(base: PipelineConfig, events: Arc<RecentEvents>) -> Self {
        Self {
            base,
            events,
            indexes: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn status(
        &self,
        state: &AppState,
        tenant: TenantId,
        document: DocumentId,
    ) -> Result<DocumentStatus, ApiError> {
        let catalog = state.searcher.catalog().read().await?;
        let mut generations = Vec::new();
        let mut searchable = false;
        for generation in catalog.written() {
            let index = self.index(generation).await?;
            if let Some(holding) = holding(generation, index.as_ref(), &tenant, &document).await? {
                searchable |= generation.state == docpipe_catalog::GenerationState::Live;
                generations.push(holding);
            }
        }
        let dead_letter = state
            .broker
            .dead_letters(DEAD_LETTERS_SCANNED)
            .await?
            .into_iter()
            .filter(|letter| {
                letter.tenant.as_ref() == Some(&tenant)
                    && letter.document_id.as_ref() == Some(&document)
            })
            .max_by_key(|letter| letter.failed_at_unix_ms)
            .map(|letter| letter.summary());
        Ok(DocumentStatus {
            last_event: self.events.last(&tenant, &document),
            tenant,
            document_id: document,
            searchable,
            generations,
            dead_letter,
            chunks: None,
        })
    }

    /// The events followed.
    pub(crate) fn events(&self) -> &RecentEvents {
        &self.events
    }

    /// The index of `generation`, opened once.
    pub(crate) async fn index(
        &self,
        generation: &Generation,
    ) -> Result<Arc<dyn GenerationIndex>, ApiError> {
        let mut indexes = self.indexes.lock().await;
        if let Some(index) = indexes.get(&generation.version) {
            return Ok(index.clone());
        }
        let config = generation.pipeline(&self.base);
        let dimension = ModelDir::open(&config.model.dir)?.manifest().dimension;
        let index = docpipe_index::open(&self.base, generation, dimension, Access::Read).await?;
        indexes.insert(generation.version.clone(), index.clone());
        Ok(index)
    }
}

/// What `index` holds of the document, if anything.
async fn holding(
    generation: &Generation,
    index: &dyn GenerationIndex,
    tenant: &TenantId,
    document: &DocumentId,
) -> Result<Option<Holding>, ApiError> {
    let mut chunks = BTreeMap::new();
    let mut first = None;
    for store in index.stores() {
        let stored = store.document_chunks(tenant, document).await?;
        chunks.insert(store.name(), stored.len());
        first = first.or(stored.into_iter().next());
    }
    Ok(first.map(|chunk| Holding {
        generation: generation.version.to_string(),
        state: generation.state.as_str(),
        chunks,
        content_hash: chunk.content_hash.to_string(),
        pipeline_version: chunk.pipeline_version,
        source: chunk.source,
        document_version: chunk.document_version,
    }))
}
