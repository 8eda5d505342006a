//! The write path: adds and deletes under a shared writer, and group
//! commit.

use crate::{Inner, unavailable};
use docpipe_core::metadata::metadata_terms;
use docpipe_core::store::stale_ids;
use docpipe_core::{IndexedChunk, StoreError, StoredChunk};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tantivy::{IndexWriter, Term, doc};

/// Memory the writer may buffer before flushing a segment. Its term table
/// is sized from this and cleared at every commit, so more costs more per
/// commit.
const WRITER_MEMORY_BYTES: usize = 20_000_000;

/// The index's last commit.
pub(crate) struct LastCommit {
    /// Its opstamp: greater than that of every operation it covers.
    pub(crate) opstamp: u64,
    pub(crate) at: Instant,
}

impl Inner {
    /// Runs `operation` with the writer shared: tantivy takes adds and
    /// deletes through `&IndexWriter`, so documents are written side by side
    /// while no commit runs. Returns the operation's result and the
    /// rollback epoch it ran in.
    fn with_shared_writer<T>(
        &self,
        operation: impl FnOnce(&IndexWriter) -> tantivy::Result<T>,
    ) -> Result<(T, u64), StoreError> {
        loop {
            {
                let guard = self.writer.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(writer) = guard.as_ref() {
                    // Rollbacks take the writer exclusively, so none can
                    // happen between reading the epoch and the operation.
                    let epoch = self.rollbacks.load(Ordering::SeqCst);
                    return match operation(writer) {
                        Ok(value) => Ok((value, epoch)),
                        Err(error) => {
                            drop(guard);
                            Err(self.roll_back(format!(
                                "write to {} failed: {error}",
                                self.dir.display()
                            )))
                        }
                    };
                }
            }
            // Opened on first write, so readers never take the index lock.
            let mut guard = self.writer.write().unwrap_or_else(PoisonError::into_inner);
            if guard.is_none() {
                // One indexing thread: chunks arrive a few at a time, and
                // the cores are the embedder's.
                let writer = self.index.writer_with_num_threads(1, WRITER_MEMORY_BYTES).map_err(|error| {
                    unavailable(format!(
                        "cannot open the index writer for {} ({error}); is another worker using this index?",
                        self.dir.display()
                    ))
                })?;
                *guard = Some(writer);
            }
        }
    }

    /// Drops every uncommitted operation (a failed write leaves some
    /// behind), so that writes in flight see their work was lost.
    fn roll_back(&self, message: String) -> StoreError {
        let mut guard = self.writer.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = guard.as_mut() {
            let _ = writer.rollback();
        }
        self.rollbacks.fetch_add(1, Ordering::SeqCst);
        unavailable(message)
    }

    /// Writes a document's `chunks` in place of its `replacing` ones, and
    /// returns once a commit covers them.
    pub(crate) fn write(
        &self,
        chunks: &[IndexedChunk],
        replacing: &[StoredChunk],
    ) -> Result<(), StoreError> {
        let stale = stale_ids(replacing, chunks);
        let fields = self.fields;
        // The document's adds and deletes happen under one shared hold of
        // the writer, so no commit lands between them: searchers switch from
        // the old chunks to the new ones at once.
        let (last_operation, epoch) = self.with_shared_writer(|writer| {
            let mut last = writer.commit_opstamp();
            for chunk in chunks {
                writer.delete_term(Term::from_field_text(
                    fields.chunk_id,
                    chunk.chunk.id.as_str(),
                ));
                let mut document = doc!(
                    fields.chunk_id => chunk.chunk.id.as_str(),
                    fields.document_id => chunk.chunk.document_id.as_str(),
                    fields.tenant => chunk.chunk.tenant.as_str(),
                    fields.ordinal => u64::from(chunk.chunk.ordinal),
                    fields.body => chunk.chunk.embed_text.as_str(),
                    fields.text => chunk.chunk.text.as_str(),
                    fields.pipeline_version => chunk.pipeline_version.as_str(),
                    fields.content_hash => chunk.content_hash.as_str(),
                    fields.source => chunk.source.as_str(),
                );
                if let Some(page) = chunk.chunk.page {
                    document.add_u64(fields.page, u64::from(page));
                }
                if let Some(field) = fields.heading_path {
                    for heading in &chunk.chunk.heading_path {
                        document.add_text(field, heading);
                    }
                }
                if let Some(field) = fields.context {
                    let title = chunk.chunk.title.as_deref();
                    for part in title
                        .into_iter()
                        .chain(chunk.chunk.heading_path.iter().map(String::as_str))
                    {
                        document.add_text(field, part);
                    }
                }
                if let Some(field) = fields.metadata {
                    document.add_text(
                        field,
                        serde_json::Value::Object(chunk.metadata.clone()).to_string(),
                    );
                }
                if let Some(field) = fields.metadata_terms {
                    for term in metadata_terms(&chunk.metadata) {
                        document.add_text(field, term);
                    }
                }
                if let (Some(field), Some(confidence)) =
                    (fields.ocr_confidence, chunk.chunk.ocr_confidence)
                {
                    document.add_f64(field, f64::from(confidence));
                }
                last = writer.add_document(document)?;
            }
            for id in &stale {
                last = writer.delete_term(Term::from_field_text(fields.chunk_id, id.as_str()));
            }
            Ok(last)
        })?;
        self.commit_through(last_operation, epoch)
    }

    /// Makes every operation up to `operation` durable. Group commit: one
    /// commit covers every document written before it, so documents written
    /// side by side share a commit (and its fsync) instead of queueing for
    /// one each.
    fn commit_through(&self, operation: u64, epoch: u64) -> Result<(), StoreError> {
        let mut last = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // tantivy's commit opstamp exceeds the stamp of every operation it covers.
        if last.opstamp > operation {
            return Ok(());
        }
        // Writers arriving meanwhile add their documents and queue on the
        // lock; this commit covers them. Once no document is underway, none
        // is coming to join it.
        self.underway.wait_for_none(last.at + self.commit_interval);
        if self.rollbacks.load(Ordering::SeqCst) != epoch {
            return Err(unavailable(
                "a concurrent write to the index failed and its uncommitted operations were dropped; retry".into(),
            ));
        }
        let commit = {
            let mut guard = self.writer.write().unwrap_or_else(PoisonError::into_inner);
            let writer = guard.as_mut().expect("the writer is open after a write");
            writer.commit()
        };
        match commit {
            Ok(opstamp) => {
                *last = LastCommit {
                    opstamp,
                    at: Instant::now(),
                }
            }
            Err(error) => {
                return Err(
                    self.roll_back(format!("commit to {} failed: {error}", self.dir.display()))
                );
            }
        }
        self.reader.reload()
    }
}
