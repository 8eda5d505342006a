//! The documents a worker is handling, published every few seconds as a
//! [`WorkerStatus`] so that operators see what is in flight
//! (`docpipe serve`'s `/v1/activity` and console).

use docpipe_core::event::now_unix_ms;
use docpipe_core::{InFlightDocument, WorkerStatus};
use docpipe_queue::Publisher;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often a worker publishes its status.
pub(crate) const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// The deliveries being handled, by the order they were taken in.
#[derive(Default)]
pub(crate) struct InFlight {
    next: AtomicU64,
    documents: Mutex<BTreeMap<u64, InFlightDocument>>,
}

/// The fields of a message worth showing, read leniently: a malformed
/// message is in flight too, until it is dead-lettered.
#[derive(serde::Deserialize)]
struct Named {
    tenant: Option<String>,
    document_id: Option<String>,
}

impl InFlight {
    /// Records a delivery taken, with what its `body` names; returns the
    /// key that [`finish`](Self::finish) takes.
    pub(crate) fn start(&self, body: &[u8]) -> u64 {
        let named = serde_json::from_slice::<Named>(body).unwrap_or(Named {
            tenant: None,
            document_id: None,
        });
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            key,
            InFlightDocument {
                tenant: named.tenant,
                document_id: named.document_id,
                since_unix_ms: now_unix_ms(),
            },
        );
        key
    }

    /// Forgets a delivery settled.
    pub(crate) fn finish(&self, key: u64) {
        self.lock().remove(&key);
    }

    /// The documents in flight, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<InFlightDocument> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, InFlightDocument>> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// This process, as statuses name it: host name and process id.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// Publishes the status every [`STATUS_INTERVAL`] until aborted. A failed
/// publish is logged at debug level: the consume loop notices a lost
/// broker itself.
pub(crate) async fn publish_statuses(in_flight: Arc<InFlight>, publisher: Arc<Publisher>) {
    let worker = worker_name();
    let mut ticks = tokio::time::interval(STATUS_INTERVAL);
    loop {
        ticks.tick().await;
        let status = WorkerStatus {
            worker: worker.clone(),
            in_flight: in_flight.snapshot(),
            at_unix_ms: now_unix_ms(),
        };
        if let Err(error) = publisher.publish_worker_status(&status).await {
            tracing::debug!(%error, "cannot publish the worker's status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_in_flight_from_taken_to_settled_oldest_first() {
        let in_flight = InFlight::default();
        let first = in_flight.start(br#"{"tenant": "acme", "document_id": "a", "source": {}}"#);
        let second = in_flight.start(b"not json at all");
        let shown = in_flight.snapshot();
        assert_eq!(shown.len(), 2);
        assert_eq!(
            (shown[0].tenant.as_deref(), shown[0].document_id.as_deref()),
            (Some("acme"), Some("a"))
        );
        assert_eq!(
            (shown[1].tenant.as_ref(), shown[1].document_id.as_ref()),
            (None, None)
        );
        in_flight.finish(first);
        assert_eq!(in_flight.snapshot().len(), 1);
        in_flight.finish(second);
        assert!(in_flight.snapshot().is_empty());
    }
}
