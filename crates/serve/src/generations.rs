//! `GET /v1/generations` and `POST /v1/generations/rollback` (admin key):
//! the index generations an operator switches between.

use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use docpipe_catalog::{CatalogError, GenerationState};
use docpipe_index::GenerationSummary;
use std::sync::Arc;

/// Every generation the catalog lists, live first.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    state.require_admin(principal)?;
    let catalog = state.searcher.catalog().read().await?;
    let mut generations: Vec<_> = catalog.generations.iter().collect();
    generations.sort_by_key(|generation| generation.state != GenerationState::Live);
    let mut rows = Vec::new();
    for generation in generations {
        let stores = match state.documents.index(generation).await {
            Ok(index) => index.stats().await.ok(),
            Err(error) => {
                tracing::debug!(%error, generation = %generation.version, "cannot count");
                None
            }
        };
        rows.push(GenerationSummary::new(generation, stores));
    }
    Ok(Json(serde_json::json!({ "generations": rows })))
}

/// A rollback names the generation it expects to replace, so that two
/// operators (or a stale page) cannot roll back twice.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackRequest {
    live: String,
}

/// Makes the previous generation live again; this server's searches follow
/// at once, other servers' within a second, and the Milvus alias is moved
/// for clients outside docpipe.
pub(crate) async fn rollback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Result<Json<RollbackRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    state.require_admin(principal)?;
    let Json(request) = request.map_err(|error| ApiError::BadRequest(error.body_text()))?;
    let generation = state
        .searcher
        .catalog()
        .roll_back(Some(&request.live))
        .await
        .map_err(|error| match error {
            CatalogError::Refused(message) => ApiError::Conflict(message),
            other => other.into(),
        })?;
    state
        .documents
        .index(&generation)
        .await?
        .point_alias(&state.config.milvus.collection)
        .await?;
    // Reading the catalog again makes this server's searches follow now.
    state.searcher.live_version().await?;
    let live = &generation.version;
    tracing::info!(live = %live, replaced = %request.live, "rolled back over the API");
    Ok(Json(
        serde_json::json!({ "live": live.to_string(), "previous": request.live }),
    ))
}
