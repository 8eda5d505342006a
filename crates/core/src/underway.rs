//! Documents a worker has taken on and not yet handed to its stores.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Counts the documents a worker is preparing (parsing, chunking,
/// embedding, or waiting for a turn at it), which will write to the stores
/// soon. A store that groups writes into one commit waits for them, up to
/// its commit interval, and commits at once when there are none: under
/// load a commit covers many documents, and a lone document, or the last
/// of a burst, is not held back.
#[derive(Debug, Clone, Default)]
pub struct DocumentsUnderway(Arc<Count>);

#[derive(Debug, Default)]
struct Count {
    documents: Mutex<usize>,
    /// Signalled when the last document underway is handed over.
    none_left: Condvar,
}

impl Count {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl DocumentsUnderway {
    /// Counts one more document until the returned guard is dropped.
    pub fn enter(&self) -> Underway {
        *self.0.lock() += 1;
        Underway(self.0.clone())
    }

    /// Blocks until no document is underway or `deadline` passes, whichever
    /// comes first; returns whether none is underway. Waiting is woken by
    /// the last document's hand-over, not by polling, so a store waiting a
    /// second for its group does not wake up meanwhile (on a busy worker
    /// every wake-up preempts the embedding threads).
    pub fn wait_for_none(&self, deadline: Instant) -> bool {
        let mut documents = self.0.lock();
        while *documents > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            documents = self
                .0
                .none_left
                .wait_timeout(documents, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// One document underway; dropping it (when the document is handed to the
/// stores, or fails) ends its count.
#[must_use = "the document stops counting as underway when this is dropped"]
#[derive(Debug)]
pub struct Underway(Arc<Count>);

impl Drop for Underway {
    fn drop(&mut self) {
        let mut documents = self.0.lock();
        *documents -= 1;
        if *documents == 0 {
            self.0.none_left.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_document_counts_from_enter_until_its_guard_is_dropped() {
        let underway = DocumentsUnderway::default();
        let none_now = || underway.wait_for_none(Instant::now());
        assert!(none_now());
        let first = underway.enter();
        let second = underway.clone().enter();
        drop(first);
        assert!(
            !none_now(),
            "clones share one count: the second is underway"
        );
        drop(second);
        assert!(none_now());
    }

    #[test]
    fn waiting_for_none_ends_when_the_last_document_is_handed_over() {
        let underway = DocumentsUnderway::default();
        let document = underway.enter();
        let handed_over = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(document);
        });
        let started = Instant::now();
        assert!(underway.wait_for_none(started + Duration::from_secs(60)));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "woken, not timed out"
        );
        handed_over.join().unwrap();
    }

    #[test]
    fn waiting_for_none_gives_up_at_the_deadline() {
        let underway = DocumentsUnderway::default();
        let _document = underway.enter();
        assert!(!underway.wait_for_none(Instant::now() + Duration::from_millis(20)));
    }
}
