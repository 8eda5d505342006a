//! `GET /v1/activity` (admin key): what the workers did in the last
//! minutes — outcomes by type in ten-second buckets, from the document
//! events this server follows —, what they are handling now, from the
//! statuses they publish, and the queues' depths.

use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use docpipe_core::config::PipelineConfig;
use docpipe_core::{DocumentEvent, WorkerStatus};
use docpipe_queue::QueueDepths;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// A worker whose last status is older than this is gone (it publishes
/// one every five seconds).
const WORKER_GONE_MS: u64 = 15_000;

/// The width of a bucket.
const BUCKET_MS: u64 = 10_000;
/// Buckets kept: ten minutes.
const BUCKETS: usize = 60;

/// Outcomes counted per bucket, oldest first.
#[derive(Debug, Default)]
pub(crate) struct OutcomeHistory {
    buckets: VecDeque<Bucket>,
}

/// One bucket's outcomes by event type (`document.indexed`, ...).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Bucket {
    start_unix_ms: u64,
    outcomes: BTreeMap<&'static str, u64>,
}

impl OutcomeHistory {
    /// Counts `event` in the bucket of `now_ms`.
    pub(crate) fn count(&mut self, event: &DocumentEvent, now_ms: u64) {
        let start = now_ms - now_ms % BUCKET_MS;
        if self
            .buckets
            .back()
            .is_none_or(|last| last.start_unix_ms < start)
        {
            self.buckets.push_back(Bucket {
                start_unix_ms: start,
                outcomes: BTreeMap::new(),
            });
            let kept_from = start.saturating_sub((BUCKETS as u64 - 1) * BUCKET_MS);
            while self
                .buckets
                .front()
                .is_some_and(|first| first.start_unix_ms < kept_from)
            {
                self.buckets.pop_front();
            }
        }
        let bucket = self.buckets.back_mut().expect("a bucket was just ensured");
        *bucket.outcomes.entry(event.routing_key()).or_default() += 1;
    }

    /// The buckets of the last ten minutes before `now_ms`, empty ones
    /// included, oldest first.
    pub(crate) fn recent(&self, now_ms: u64) -> Vec<Bucket> {
        let last = now_ms - now_ms % BUCKET_MS;
        (0..BUCKETS as u64)
            .rev()
            .map(|back| last.saturating_sub(back * BUCKET_MS))
            .map(|start| {
                self.buckets
                    .iter()
                    .find(|bucket| bucket.start_unix_ms == start)
                    .cloned()
                    .unwrap_or(Bucket {
                        start_unix_ms: start,
                        outcomes: BTreeMap::new(),
                    })
            })
            .collect()
    }
}

/// The last status of each worker, from the events exchange.
pub(crate) struct WorkerStatuses {
    last: Mutex<HashMap<String, WorkerStatus>>,
}

impl WorkerStatuses {
    /// Starts following the workers' statuses on `config`'s broker,
    /// reconnecting after a broker restart.
    pub(crate) fn follow(config: PipelineConfig) -> Arc<Self> {
        let statuses = Arc::new(Self {
            last: Mutex::new(HashMap::new()),
        });
        let recorder = statuses.clone();
        crate::follow(config, WorkerStatus::ROUTING_KEY, move |status| {
            recorder.record(status)
        });
        statuses
    }

    fn record(&self, status: WorkerStatus) {
        self.lock().insert(status.worker.clone(), status);
    }

    /// The workers heard from lately, by name, forgetting the others.
    fn current(&self, now_ms: u64) -> Vec<WorkerStatus> {
        let mut last = self.lock();
        last.retain(|_, status| status.at_unix_ms + WORKER_GONE_MS > now_ms);
        let mut current: Vec<WorkerStatus> = last.values().cloned().collect();
        current.sort_by(|a, b| a.worker.cmp(&b.worker));
        current
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkerStatus>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The answer of `GET /v1/activity`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Activity {
    queues: QueueDepths,
    /// The workers heard from in the last 15 s, with the documents each is
    /// handling.
    workers: Vec<WorkerStatus>,
    bucket_seconds: u64,
    buckets: Vec<Bucket>,
    /// Since when events were followed: buckets before it are unknown, not
    /// idle.
    following_since_unix_ms: u64,
}

pub(crate) async fn activity(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Activity>, ApiError> {
    let principal = state.principal(&headers)?;
    state.require_admin(principal)?;
    let now = docpipe_core::event::now_unix_ms();
    Ok(Json(Activity {
        queues: state.broker.queue_depths().await?,
        workers: state.workers.current(now),
        bucket_seconds: BUCKET_MS / 1000,
        buckets: state.documents.events().outcomes(now),
        following_since_unix_ms: state.documents.events().since_unix_ms(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{DocumentId, TenantId};

    fn removed() -> DocumentEvent {
        DocumentEvent::Removed {
            tenant: TenantId::new("acme").unwrap(),
            document_id: DocumentId::new("a").unwrap(),
            chunks: 0,
            at_unix_ms: 0,
        }
    }

    #[test]
    fn outcomes_fall_in_ten_second_buckets_and_old_ones_are_forgotten() {
        let mut history = OutcomeHistory::default();
        history.count(&removed(), 1_000);
        history.count(&removed(), 9_999);
        history.count(&removed(), 10_000);
        let recent = history.recent(15_000);
        assert_eq!(recent.len(), BUCKETS);
        let last_two: Vec<u64> = recent[BUCKETS - 2..]
            .iter()
            .map(|bucket| {
                bucket
                    .outcomes
                    .get("document.removed")
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(last_two, [2, 1]);
        let later = 15_000 + BUCKET_MS * BUCKETS as u64;
        history.count(&removed(), later);
        assert_eq!(history.buckets.len(), 1);
        let total: u64 = history
            .recent(later)
            .iter()
            .flat_map(|bucket| bucket.outcomes.values())
            .sum();
        assert_eq!(total, 1, "ten minutes later, only the new outcome counts");
    }
}
