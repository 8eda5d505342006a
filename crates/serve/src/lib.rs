//! `docpipe serve`: the retrieval API RAG applications call.
//!
//! - `POST /v1/search`: dense, BM25 or hybrid search of the live
//!   generation, within the tenant the API key belongs to (optionally
//!   narrowed to some documents), with per-stage timings.
//! - `GET /v1/documents/{id}`: what became of a document — the generations
//!   holding it, its chunks in each store, its last event, its dead letter.
//! - `GET /v1/status` (admin key): queue depths and what the live
//!   generation holds.
//! - `GET /v1/dead-letters[/{id}]` (a tenant key sees its own) and `POST
//!   /v1/dead-letters/replay` (admin key); `GET /v1/generations` and `POST
//!   /v1/generations/rollback`, `GET /v1/activity` (admin key).
//! - `GET /v1/whoami`: the key's name, role and tenant.
//! - `/`: the console, a page over this API (static files in the binary).
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus) and `/openapi.json`.
//!
//! The model is loaded once per generation; concurrent queries are
//! embedded together by one executor, repeated ones come from a cache.
//! Searches beyond `max_in_flight` are refused with 429 rather than queued
//! without bound; each has a deadline; the process finishes the requests
//! in flight when told to stop.

#![warn(missing_docs)]

mod activity;
mod console;
mod dead_letters;
mod documents;
mod error;
mod generations;
pub mod keys;
mod search;
mod status;

pub use error::ApiError;
pub use keys::{ApiKeys, KeysError, Principal, Role};
pub use status::Status;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use docpipe_core::{PipelineConfig, TenantId};
use docpipe_queue::Broker;
use docpipe_search::Searcher;
use documents::{DocumentLookup, RecentEvents};
use futures::StreamExt as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The OpenAPI 3 description of the API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Bounds that keep one client from exhausting the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Longest query, in bytes (413 beyond; within it, the model reads at
    /// most its own maximum of tokens).
    pub max_query_bytes: usize,
    /// Most documents a filter may name.
    pub max_filter_documents: usize,
    /// Searches served at once; more are refused with 429.
    pub max_in_flight: usize,
    /// How long a search may take before it is abandoned with 504.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_query_bytes: 4096,
            max_filter_documents: 1000,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The searcher could not open the index.
    #[error(transparent)]
    Search(#[from] docpipe_search::SearchError),
    /// The broker is unreachable.
    #[error(transparent)]
    Queue(#[from] docpipe_queue::QueueError),
    /// The listening socket failed.
    #[error("cannot serve on {address}: {source}")]
    Io {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) config: PipelineConfig,
    pub(crate) searcher: Searcher,
    pub(crate) keys: ApiKeys,
    pub(crate) limits: Limits,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) broker: Broker,
    pub(crate) documents: DocumentLookup,
    pub(crate) workers: Arc<activity::WorkerStatuses>,
}

/// A retrieval server ready to accept connections.
pub struct Server {
    state: Arc<AppState>,
}

impl Server {
    /// Opens the index family of `config` (searches follow its live
    /// generation), connects to the broker (document events, dead letters,
    /// queue depths) and starts following document events.
    pub async fn open(
        config: &PipelineConfig,
        keys: ApiKeys,
        limits: Limits,
    ) -> Result<Self, ServeError> {
        let searcher = Searcher::open(config).await?;
        let broker = Broker::connect(&config.queue, &config.retry).await?;
        let events = RecentEvents::follow(config.clone());
        let documents = DocumentLookup::new(config.clone(), events);
        Ok(Self {
            state: Arc::new(AppState {
                config: config.clone(),
                searcher,
                keys,
                limits,
                in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
                broker,
                documents,
                workers: activity::WorkerStatuses::follow(config.clone()),
            }),
        })
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/search", post(search::search))
            .route("/v1/documents/{*id}", get(documents::document))
            .route("/v1/status", get(status::status))
            .route("/v1/whoami", get(status::whoami))
            .route("/v1/activity", get(activity::activity))
            .route("/v1/dead-letters", get(dead_letters::list))
            .route("/v1/dead-letters/replay", post(dead_letters::replay))
            .route("/v1/dead-letters/{id}", get(dead_letters::show))
            .route("/v1/generations", get(generations::list))
            .route("/v1/generations/rollback", post(generations::rollback))
            .merge(console::routes())
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(status::ready))
            .route("/metrics", get(docpipe_telemetry::http::metrics_text))
            .route("/openapi.json", get(openapi))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then stops
    /// accepting and finishes the requests in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let address = listener
            .local_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| ServeError::Io { address, source })?;
        self.state.broker.close().await;
        Ok(())
    }
}

/// Follows the messages of `config`'s events exchange routed by
/// `routing_key`, handing each to `record`, for as long as the process
/// runs, reconnecting after a broker restart (the broker keeps no events,
/// so every replica follows them itself).
pub(crate) fn follow<T>(
    config: PipelineConfig,
    routing_key: &'static str,
    record: impl Fn(T) + Send + 'static,
) where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match Broker::connect(&config.queue, &config.retry).await {
                Ok(broker) => match broker.subscribe::<T>(routing_key).await {
                    Ok(stream) => {
                        let mut stream = std::pin::pin!(stream);
                        while let Some(message) = stream.next().await {
                            record(message);
                        }
                    }
                    Err(error) => tracing::warn!(%error, routing_key, "cannot follow events"),
                },
                Err(error) => tracing::warn!(%error, routing_key, "cannot follow events"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

impl AppState {
    /// Who sent the request: the key in `Authorization: Bearer` (or
    /// `X-API-Key`), looked up by digest. The key itself is never logged.
    pub(crate) fn principal(&self, headers: &HeaderMap) -> Result<&Principal, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let key = bearer
            .or_else(|| {
                headers
                    .get("x-api-key")
                    .and_then(|value| value.to_str().ok())
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::MissingKey)?;
        self.keys.principal(key).ok_or(ApiError::InvalidKey)
    }

    /// The tenant a request reads: the key's own (asking for another is
    /// refused), or, for an admin key, the one the request names.
    pub(crate) fn tenant(
        &self,
        principal: &Principal,
        requested: Option<TenantId>,
    ) -> Result<TenantId, ApiError> {
        match (&principal.role, requested) {
            (Role::Tenant(own), None) => Ok(own.clone()),
            (Role::Tenant(own), Some(asked)) if asked == *own => Ok(asked),
            (Role::Tenant(own), Some(asked)) => Err(ApiError::Forbidden(format!(
                "this key reads tenant {own:?} only, not {asked:?}"
            ))),
            (Role::Admin, Some(asked)) => Ok(asked),
            (Role::Admin, None) => Err(ApiError::BadRequest(
                "an admin key reads any tenant, so the request must name one (`tenant`)".into(),
            )),
        }
    }

    /// Refuses keys other than admin keys.
    pub(crate) fn require_admin(&self, principal: &Principal) -> Result<(), ApiError> {
        match principal.role {
            Role::Admin => Ok(()),
            Role::Tenant(_) => Err(ApiError::Forbidden(
                "this needs an admin key; tenant keys search and look up their own documents"
                    .into(),
            )),
        }
    }
}
