//! Concurrent searches of one shape go to Milvus as one request.
//!
//! A Milvus search request has a fixed cost besides the work per query:
//! measured on 2.3.5 over 100k vectors, one request of one query took
//! 4.5 ms of server CPU, one request of 8 queries 1.5 ms per query (6.7
//! and 3.2 ms for 200 hits each). So searches that would go to Milvus with
//! the same collection, field, filter, limit, output columns and
//! consistency share a request: while one request of a shape is in flight,
//! searches of that shape wait, and the next request carries all of them
//! (up to [`MOST_QUERIES_PER_REQUEST`]). A search that finds no request of
//! its shape in flight is sent at once, so nothing waits when Milvus is
//! idle; under load a request carries what arrived during the previous one.
//!
//! Searches of different tenants have different filters, so they never
//! share a request.

use crate::columns::classify;
use crate::search::{consistency_level, ranked_chunks, search_params};
use docpipe_core::config::ReadConsistency;
use docpipe_core::{RankedChunk, StoreError};
use milvus::v2::prelude::*;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;

/// Most queries one request carries: the probe above measured up to 16
/// (1.1 ms of server CPU per query for 50 hits each).
pub(crate) const MOST_QUERIES_PER_REQUEST: usize = 16;

/// What searches must share to go to Milvus as one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SearchShape {
    /// The collection searched.
    pub collection: String,
    /// The vector field searched (see [`SearchQuery::field`]), so one
    /// request carries queries of one kind.
    pub field: &'static str,
    /// The boolean expression the hits satisfy.
    pub filter: String,
    /// The columns each hit carries.
    pub output_fields: Vec<&'static str>,
    /// Hits per query.
    pub limit: usize,
    /// The read consistency.
    pub consistency: ReadConsistency,
}

/// One search's query.
#[derive(Debug)]
pub(crate) enum SearchQuery {
    /// A dense vector.
    Vector(Vec<f32>),
    /// Text the server turns into a sparse vector (full-text search).
    Text(String),
}

impl SearchQuery {
    /// The vector field a query of this kind searches.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            Self::Vector(_) => crate::VECTOR,
            Self::Text(_) => crate::fulltext::SPARSE,
        }
    }
}

/// The searches of each shape not yet sent, while a request of the shape
/// is in flight. A shape with no entry has no request in flight.
pub(crate) struct Coalescer {
    client: Arc<ClientV2>,
    waiting: Mutex<HashMap<SearchShape, Vec<Waiting>>>,
}

/// A search waiting for its shape's next request.
struct Waiting {
    query: SearchQuery,
    reply: oneshot::Sender<Result<Vec<RankedChunk>, StoreError>>,
}

impl Coalescer {
    /// A coalescer of searches sent through `client`.
    pub(crate) fn new(client: Arc<ClientV2>) -> Self {
        Self {
            client,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    /// The hits of `query` in a search of `shape`, found by a request it
    /// shares with the searches of that shape that wait with it.
    pub(crate) async fn search(
        self: &Arc<Self>,
        shape: SearchShape,
        query: SearchQuery,
    ) -> Result<Vec<RankedChunk>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting { query, reply };
        let send_now = match self.lock().entry(shape.clone()) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push(waiting);
                false
            }
            Entry::Vacant(free) => {
                free.insert(vec![waiting]);
                true
            }
        };
        if send_now {
            // A task of its own, so that a caller that stops waiting (a
            // timed-out request) leaves the searches it carries answered.
            tokio::spawn(self.clone().send_until_none_wait(shape));
        }
        answer.await.map_err(|_| StoreError::Unavailable {
            store: crate::STORE,
            message: "the search was dropped before Milvus answered it (is the process \
                      shutting down?)"
                .into(),
        })?
    }

    /// Sends requests of `shape`, each with the searches waiting when it
    /// leaves, until none wait.
    async fn send_until_none_wait(self: Arc<Self>, shape: SearchShape) {
        // Searches whose queries were embedded in one batch wake together;
        // letting them run first puts them in this request, where the
        // first of them would otherwise go alone and the rest wait for it.
        tokio::task::yield_now().await;
        loop {
            let batch = {
                let mut waiting = self.lock();
                let Some(queue) = waiting.get_mut(&shape) else {
                    return;
                };
                if queue.is_empty() {
                    waiting.remove(&shape);
                    return;
                }
                let taken = queue.len().min(MOST_QUERIES_PER_REQUEST);
                queue.drain(..taken).collect::<Vec<_>>()
            };
            let (queries, replies): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .map(|waiting| (waiting.query, waiting.reply))
                .unzip();
            tracing::debug!(
                collection = %shape.collection,
                field = shape.field,
                queries = queries.len(),
                "one Milvus search request"
            );
            match self.send(&shape, queries).await {
                Ok(hits) => {
                    for (reply, hits) in replies.into_iter().zip(hits) {
                        // A caller that stopped waiting does not need them.
                        let _ = reply.send(Ok(hits));
                    }
                }
                Err(error) => {
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// One request for `queries` (of one kind), the hits of each in order.
    async fn send(
        &self,
        shape: &SearchShape,
        queries: Vec<SearchQuery>,
    ) -> Result<Vec<Vec<RankedChunk>>, StoreError> {
        let count = queries.len();
        let (metric, params) = search_params(shape.field, shape.limit);
        let response = self
            .client
            .search(
                SearchRequest::builder()
                    .collection_name(&shape.collection)
                    .vector_field(shape.field)
                    .vectors(search_vectors(queries)?)
                    .filter(shape.filter.clone())
                    .output_fields(shape.output_fields.clone())
                    .limit(shape.limit as i64)
                    .metric_type(metric)
                    .extra_params(params)
                    .consistency_level(consistency_level(shape.consistency))
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        let results = response.results().get_results();
        // Milvus answers a request with no hits at all with no results.
        (0..count)
            .map(|query| results.get(query).map_or(Ok(Vec::new()), ranked_chunks))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SearchShape, Vec<Waiting>>> {
        // The map stays consistent even if a holder panicked: every change
        // to it is a single insert, push, drain or remove.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The request's vectors: all dense, or all text.
fn search_vectors(queries: Vec<SearchQuery>) -> Result<SearchVectors, StoreError> {
    let mut dense = Vec::new();
    let mut texts = Vec::new();
    for query in queries {
        match query {
            SearchQuery::Vector(vector) => dense.push(vector),
            SearchQuery::Text(text) => texts.push(text),
        }
    }
    match (dense.is_empty(), texts.is_empty()) {
        (false, true) => Ok(SearchVectors::Float(dense)),
        (true, false) => Ok(SearchVectors::EmbeddedText(texts)),
        _ => Err(StoreError::Rejected {
            store: crate::STORE,
            message: "one search request cannot carry both dense and text queries".into(),
        }),
    }
}
