//! `POST /v1/search`.

use crate::{ApiError, AppState};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use docpipe_core::metadata::FilterError;
use docpipe_core::{DocumentId, Metadata, MetadataFilter, SearchScope, TenantId};
use docpipe_search::{DocumentHit, Mode, SearchRequest, StageTimings};
use docpipe_telemetry::metrics::metrics;
use std::sync::Arc;
use std::time::Instant;

/// Documents returned when the request does not say.
const DEFAULT_TOP_K: usize = 10;

/// The body of a search.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    query: String,
    #[serde(default = "default_mode")]
    mode: Mode,
    #[serde(default = "default_top_k")]
    top_k: usize,
    /// Only an admin key may name a tenant other than its own.
    #[serde(default)]
    tenant: Option<TenantId>,
    #[serde(default)]
    filter: Filter,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    #[serde(default)]
    document_ids: Option<Vec<DocumentId>>,
    /// Key → value, or list of values (any of).
    #[serde(default)]
    metadata: Option<Metadata>,
}

fn default_mode() -> Mode {
    Mode::Hybrid
}

fn default_top_k() -> usize {
    DEFAULT_TOP_K
}

/// The answer to a search.
#[derive(Debug, serde::Serialize)]
pub(crate) struct SearchAnswer {
    tenant: TenantId,
    mode: Mode,
    generation: String,
    documents: Vec<DocumentHit>,
    timings: StageTimings,
}

pub(crate) async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SearchAnswer>, ApiError> {
    let started = Instant::now();
    let principal = state.principal(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let request: SearchBody = serde_json::from_slice(&body)
        .map_err(|error| ApiError::BadRequest(format!("invalid search request: {error}")))?;
    let mode = request.mode;
    let outcome = run(&state, principal, request, started).await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(error) => error.code(),
    };
    metrics().search(mode.as_str(), label, started.elapsed());
    outcome.map(Json)
}

async fn run(
    state: &AppState,
    principal: &crate::Principal,
    request: SearchBody,
    started: Instant,
) -> Result<SearchAnswer, ApiError> {
    let tenant = state.tenant(principal, request.tenant)?;
    let limits = &state.limits;
    if request.query.trim().is_empty() {
        return Err(ApiError::BadRequest("the query is empty".into()));
    }
    if request.query.len() > limits.max_query_bytes {
        return Err(ApiError::TooLarge(format!(
            "the query is {} bytes; at most {} are accepted",
            request.query.len(),
            limits.max_query_bytes
        )));
    }
    let mut scope = SearchScope::tenant(tenant.clone());
    if let Some(documents) = request.filter.document_ids {
        if documents.len() > limits.max_filter_documents {
            return Err(ApiError::TooLarge(format!(
                "the filter names {} documents; at most {} are accepted",
                documents.len(),
                limits.max_filter_documents
            )));
        }
        scope = scope.with_documents(documents);
    }
    if let Some(metadata) = request.filter.metadata {
        let filter = MetadataFilter::from_json(&metadata).map_err(|error| match error {
            FilterError::TooLarge => ApiError::TooLarge(error.to_string()),
            _ => ApiError::BadRequest(error.to_string()),
        })?;
        scope = scope.with_metadata(filter);
    }
    // Refused at once when full: a queue without bound would only make
    // every caller late.
    let _permit = state
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded(limits.max_in_flight))?;
    let request = SearchRequest {
        scope,
        query: request.query,
        mode: request.mode,
        top_k: request.top_k,
    };
    let remaining = limits.request_timeout.saturating_sub(started.elapsed());
    let results = tokio::time::timeout(remaining, state.searcher.find(&request))
        .await
        .map_err(|_| ApiError::Timeout(limits.request_timeout.as_millis()))??;
    Ok(SearchAnswer {
        tenant,
        mode: request.mode,
        generation: results.generation.to_string(),
        documents: results.documents,
        timings: results.timings,
    })
}

/// The request body, refused with 413 past `max_body_bytes`.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.limits.max_body_bytes;
    let too_large = || ApiError::TooLarge(format!("the request body exceeds {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}
