//! `GET /v1/status` (admin), `GET /v1/whoami`, `/readyz` and `/metrics`.

use crate::{ApiError, AppState, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use docpipe_index::IndexStats;
use docpipe_queue::QueueDepths;
use std::sync::Arc;

/// Queue depths and what the live generation holds: `GET /v1/status` and
/// `docpipe status --json`.
#[derive(Debug, serde::Serialize)]
pub struct Status {
    /// Messages waiting, and the workers consuming uploads.
    pub queues: QueueDepths,
    /// The live generation (`null` before anything was indexed).
    pub live_generation: Option<String>,
    /// `embedded` or `milvus`.
    pub backend: &'static str,
    /// What the live generation's stores hold.
    #[serde(flatten)]
    pub stores: IndexStats,
}

pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Status>, ApiError> {
    let principal = state.principal(&headers)?;
    state.require_admin(principal)?;
    let index = state.searcher.live_index().await?;
    Ok(Json(Status {
        queues: state.broker.queue_depths().await?,
        live_generation: Some(state.searcher.live_version().await?.to_string()),
        backend: state.config.index.backend.as_str(),
        stores: index.stats().await?,
    }))
}

/// Who the key is: its name, role and tenant (for the console).
pub(crate) async fn whoami(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    Ok(Json(match &principal.role {
        Role::Admin => serde_json::json!({ "name": principal.name, "role": "admin" }),
        Role::Tenant(tenant) => {
            serde_json::json!({ "name": principal.name, "role": "tenant", "tenant": tenant })
        }
    }))
}

/// Ready when the live generation can be read and its Milvus answers.
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let index = match state.searcher.live_index().await {
        Ok(index) => index,
        Err(error) => return not_ready(error.to_string()),
    };
    match index
        .aliased_collection(&state.config.milvus.collection)
        .await
    {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({ "ready": true }))),
        Err(error) => not_ready(error.to_string()),
    }
}

fn not_ready(reason: String) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "ready": false, "reason": reason })),
    )
}
