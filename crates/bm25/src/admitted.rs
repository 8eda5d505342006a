//! The documents of each segment a tenant's searches may return, kept
//! across searches.
//!
//! A search looks each candidate up in the set of documents its scope
//! admits (see `best_in_scope`). Made from the tenant's postings for every
//! search, that set cost 1.7 % of the machine's CPU samples in
//! `bench --serve`, though a segment's documents never change (deletes are
//! the segment's alive set, checked apart). So the sets of plain tenant
//! scopes are kept by segment; scopes that name documents or metadata are
//! made for each search.

use docpipe_core::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tantivy::index::SegmentId;
use tantivy::{BitSet, SegmentReader};

/// Most sets kept (a tenant in a segment each, a bit per document); past
/// that, the cache starts over: merged-away segments leave with it.
const MOST_SETS: usize = 256;

/// Kept sets of admitted documents, by segment and tenant.
#[derive(Default)]
pub(crate) struct AdmittedSets {
    sets: Mutex<HashMap<(SegmentId, TenantId), Arc<BitSet>>>,
}

impl AdmittedSets {
    /// The documents of `segment` that `tenant`'s searches may return: as
    /// kept, or made by `make` and kept.
    pub(crate) fn of_tenant(
        &self,
        segment: &SegmentReader,
        tenant: &TenantId,
        make: impl FnOnce() -> tantivy::Result<BitSet>,
    ) -> tantivy::Result<Arc<BitSet>> {
        let key = (segment.segment_id(), tenant.clone());
        if let Some(set) = self.lock().get(&key) {
            return Ok(set.clone());
        }
        // Made outside the lock: searches of other tenants go on meanwhile.
        let set = Arc::new(make()?);
        let mut sets = self.lock();
        if sets.len() >= MOST_SETS {
            sets.clear();
        }
        sets.insert(key, set.clone());
        Ok(set)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SegmentId, TenantId), Arc<BitSet>>> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{STRING, Schema};
    use tantivy::{Index, IndexWriter, doc};

    #[test]
    fn a_set_is_kept_for_its_segment_and_tenant_only() {
        let mut schema = Schema::builder();
        let tenant = schema.add_text_field("tenant", STRING);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.add_document(doc!(tenant => "a")).unwrap();
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let segment = &searcher.segment_readers()[0];
        let sets = AdmittedSets::default();
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        let made = |documents: &[u32]| {
            let mut set = BitSet::with_max_value(segment.max_doc());
            for &doc in documents {
                set.insert(doc);
            }
            Ok(set)
        };
        assert!(
            sets.of_tenant(segment, &a, || made(&[0]))
                .unwrap()
                .contains(0)
        );
        let kept = sets
            .of_tenant(segment, &a, || panic!("tenant a's set was kept"))
            .unwrap();
        assert!(kept.contains(0));
        // Another tenant's set is its own, never a's.
        assert!(
            !sets
                .of_tenant(segment, &b, || made(&[]))
                .unwrap()
                .contains(0)
        );
    }
}
