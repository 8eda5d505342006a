//! `GET /v1/dead-letters`, `GET /v1/dead-letters/{id}` and
//! `POST /v1/dead-letters/replay`: the dead-letter queue for operators (a
//! tenant key sees its own tenant's letters; only an admin key replays).

use crate::{ApiError, AppState, Role};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use docpipe_queue::DeadLetter;
use std::sync::Arc;

/// Letters listed at most, oldest first (the dead-letter queue is read
/// without removing anything, so a long queue costs a long read).
const MAX_LISTED: usize = 1000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
}

/// Dead letters the key may see, oldest first.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    let Query(query) = query.map_err(|error| ApiError::BadRequest(error.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LISTED).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_LISTED}, not {limit}"
        )));
    }
    let letters: Vec<_> = visible(&state, &principal.role)
        .await?
        .iter()
        .take(limit)
        .map(DeadLetter::summary)
        .collect();
    let mut answer = serde_json::json!({ "dead_letters": letters });
    // How many letters wait in all is other tenants' business too.
    if principal.role == Role::Admin {
        answer["queue_depth"] = state.broker.queue_depths().await?.dead.into();
    }
    Ok(Json(answer))
}

/// One letter with its failure history and original body.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    visible(&state, &principal.role)
        .await?
        .iter()
        .find(|letter| letter.id == id)
        .map(|letter| Json(letter.detail()))
        .ok_or_else(|| no_letter(&id))
}

/// What to replay: some letters by id, or all of them.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

/// Publishes the chosen letters again as first deliveries (admin key).
pub(crate) async fn replay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = state.principal(&headers)?;
    state.require_admin(principal)?;
    let Json(request) = request.map_err(|error| ApiError::BadRequest(error.body_text()))?;
    let named = !request.ids.is_empty();
    if request.all == named {
        return Err(ApiError::BadRequest(
            "name the letters to replay (`ids`) or ask for `all`, not both".into(),
        ));
    }
    let replayed = state
        .broker
        .replay_dead_letters(|letter| request.all || request.ids.contains(&letter.id))
        .await?;
    let missing: Vec<&String> = request
        .ids
        .iter()
        .filter(|id| !replayed.iter().any(|letter| &letter.id == *id))
        .collect();
    if let (Some(id), true) = (missing.first(), replayed.is_empty()) {
        return Err(no_letter(id));
    }
    tracing::info!(
        replayed = replayed.len(),
        "dead letters replayed over the API"
    );
    let ids: Vec<&str> = replayed.iter().map(|letter| letter.id.as_str()).collect();
    Ok(Json(
        serde_json::json!({ "replayed": ids, "not_found": missing }),
    ))
}

/// The letters `role` may see: all of them for an admin, its tenant's for
/// a tenant key.
async fn visible(state: &AppState, role: &Role) -> Result<Vec<DeadLetter>, ApiError> {
    let letters = state.broker.dead_letters(MAX_LISTED).await?;
    Ok(match role {
        Role::Admin => letters,
        Role::Tenant(own) => letters
            .into_iter()
            .filter(|letter| letter.tenant.as_ref() == Some(own))
            .collect(),
    })
}

fn no_letter(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no dead letter with id {id:?} (replayed already, or another tenant's); GET /v1/dead-letters lists them"
    ))
}
