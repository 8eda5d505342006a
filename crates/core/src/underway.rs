//! Documents a worker has taken on and not yet handed to its stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the documents a worker is preparing (parsing, chunking,
/// embedding, or waiting for a turn at it), which will write to the stores
/// soon. A store that groups writes into one commit waits for them, up to
/// its commit interval, and commits at once when there are none: under
/// load a commit covers many documents, and a lone document, or the last
/// of a burst, is not held back.
#[derive(Debug, Clone, Default)]
pub struct DocumentsUnderway(Arc<AtomicUsize>);

impl DocumentsUnderway {
    /// Counts one more document until the returned guard is dropped.
    pub fn enter(&self) -> Underway {
        self.0.fetch_add(1, Ordering::SeqCst);
        Underway(self.0.clone())
    }

    /// How many documents are underway now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// One document underway; dropping it (when the document is handed to the
/// stores, or fails) ends its count.
#[must_use = "the document stops counting as underway when this is dropped"]
#[derive(Debug)]
pub struct Underway(Arc<AtomicUsize>);

impl Drop for Underway {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_counts_from_enter_until_its_guard_is_dropped() {
        let underway = DocumentsUnderway::default();
        let first = underway.enter();
        let second = underway.clone().enter();
        assert_eq!(underway.count(), 2, "clones share one count");
        drop(first);
        assert_eq!(underway.count(), 1);
        drop(second);
        assert_eq!(underway.count(), 0);
    }
}
