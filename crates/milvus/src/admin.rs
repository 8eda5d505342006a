//! Operating on a generation's collection as a whole: its alias, flushing,
//! settling its index, and dropping it.

use crate::MilvusStore;
use crate::columns::classify;
use docpipe_core::StoreError;
use milvus::v2 as sdk;
use milvus::v2::prelude::*;
use std::collections::HashSet;
// The SDK prelude has its own `Result`; ours carries `StoreError`.
use std::result::Result;
use std::time::{Duration, Instant};

/// How often [`MilvusStore::settle`] looks at the segments again.
const SETTLE_POLL: Duration = Duration::from_millis(500);

/// Polls `settled` until it holds (`true`) or `deadline` passes (`false`).
pub(crate) async fn until<F, Fut>(deadline: Instant, settled: F) -> Result<bool, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    while Instant::now() < deadline {
        if settled().await? {
            return Ok(true);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    Ok(false)
}

impl MilvusStore {
    /// Drops `alias` if it exists (a collection with aliases cannot be dropped).
    pub async fn drop_alias(&self, alias: &str) -> Result<(), StoreError> {
        if self.aliased_collection(alias).await?.is_none() {
            return Ok(());
        }
        self.client
            .drop_alias(
                sdk::request::alias::DropAliasRequest::builder()
                    .alias(alias)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)
    }

    /// Points `alias` at this collection, creating the alias if needed.
    /// Milvus switches an alias atomically: a request through it reaches
    /// either the old collection or this one.
    pub async fn point_alias(&self, alias: &str) -> Result<(), StoreError> {
        if self.aliased_collection(alias).await?.is_some() {
            self.client
                .alter_alias(
                    sdk::request::alias::AlterAliasRequest::builder()
                        .alias(alias)
                        .collection_name(&self.collection)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)
        } else {
            self.client
                .create_alias(
                    sdk::request::alias::CreateAliasRequest::builder()
                        .alias(alias)
                        .collection_name(&self.collection)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)
        }
    }

    /// The collection `alias` points at, if the alias exists.
    pub async fn aliased_collection(&self, alias: &str) -> Result<Option<String>, StoreError> {
        let request = sdk::request::alias::DescribeAliasRequest::builder()
            .alias(alias)
            .build()
            .map_err(classify)?;
        match self.client.describe_alias(request).await {
            Ok(response) => Ok(Some(response.collection_name().to_owned())),
            // Milvus reports an unknown alias as an error status.
            Err(error) if error.to_string().contains("alias") => Ok(None),
            Err(error) => Err(classify(error)),
        }
    }

    /// Seals and persists the collection's growing segments; Milvus names
    /// the segments it sealed.
    pub async fn flush(&self) -> Result<sdk::response::utility::FlushResponse, StoreError> {
        self.client
            .flush(
                FlushRequest::builder()
                    .collection_names([self.collection.as_str()])
                    .wait_flushed_ms(60_000)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)
    }

    /// Drops the collection if it exists (`docpipe gc`, tests' clean-up).
    pub async fn drop_collection(&self) -> Result<(), StoreError> {
        let exists = self.exists().await?;
        if !exists {
            return Ok(());
        }
        self.client
            .drop_collection(
                DropCollectionRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)
    }

    /// Makes every write acknowledged so far as findable as data Milvus
    /// has settled on its own schedule. Until Milvus seals a growing
    /// segment (by size, or after `dataCoord.segment.maxIdleTime`, ten
    /// minutes by default), it searches it through an approximate interim
    /// index (IVF, 16 of 128 lists probed on 2.3): right after a backfill,
    /// dense Recall@10 was 1.6 to 2.3 points lower than ten minutes later.
    /// This seals the growing segments, then waits until the HNSW index
    /// covers every sealed row and a query node serves every sealed
    /// segment. Then it merges sealed segments (see
    /// `merge_segments`, after any merge Milvus is running on its own) and
    /// waits until query nodes serve the merged ones instead of their
    /// sources, as long as merging joins segments.
    /// Returns whether all that happened within `timeout` (the data is
    /// searchable either way).
    pub async fn settle(&self, timeout: Duration) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        let sealed: Vec<i64> = self
            .flush()
            .await?
            .segment_ids()
            .values()
            .flatten()
            .copied()
            .collect();
        if !until(deadline, || self.is_settled(&sealed, &[])).await? {
            return Ok(false);
        }
        while self.flushed_segments().await?.len() > 1 {
            let Some(compaction) = self.merge_segments(deadline).await? else {
                return Ok(false);
            };
            let merges = self.merges_of(compaction).await?;
            if merges.is_empty() {
                // Milvus plans nothing for segments a merge of its own
                // holds (it starts one when a flush leaves enough small
                // segments): let that merge finish, then ask again.
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                tokio::time::sleep(SETTLE_POLL).await;
                continue;
            }
            let targets: Vec<i64> = merges.iter().map(|(_, target)| *target).collect();
            if !until(deadline, || self.is_settled(&[], &targets)).await? {
                return Ok(false);
            }
            // Milvus 2.3 also rewrites a lone segment (a new one, indexed
            // again): once no merge joins segments, merging gains nothing.
            if merges.iter().all(|(sources, _)| sources.len() < 2) {
                break;
            }
        }
        // A merge Milvus ran on its own may have left one flushed segment
        // that query nodes do not serve yet, beside the sources they do.
        until(deadline, || self.is_settled(&[], &[])).await
    }

    /// Asks Milvus to merge the collection's sealed segments now and waits
    /// for it, up to `deadline`; returns the compaction's id, 0 if Milvus
    /// started none (`None` if it was not done in time). Milvus merges small segments on its own
    /// schedule otherwise, a minute or more after they are sealed, and a
    /// search pays for every segment it visits: on 2.3.5, with 100,000
    /// freshly loaded chunks, Milvus' CPU per search tripled while a merge
    /// ran in the middle of a load test. Milvus 2.3 merges only indexed
    /// segments, so settle them first.
    pub(crate) async fn merge_segments(
        &self,
        deadline: Instant,
    ) -> Result<Option<i64>, StoreError> {
        let compaction = self
            .client
            .compact(
                sdk::request::utility::CompactRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?
            .compaction_id();
        // Milvus answers 0 when it starts none (milvus-lite, which merges
        // on its own after every flush, always does).
        if compaction <= 0 {
            return Ok(Some(compaction));
        }
        let done = until(deadline, || async move {
            let state = self
                .client
                .get_compaction_state(
                    sdk::request::utility::GetCompactionStateRequest::builder()
                        .compaction_id(compaction)
                        .build()
                        .map_err(classify)?,
                )
                .await
                .map_err(classify)?;
            Ok(state.state() == sdk::CompactionStateCode::Completed)
        })
        .await?;
        Ok(done.then_some(compaction))
    }

    /// What the finished compaction `id` did: each merge's source segments
    /// and the segment they became.
    async fn merges_of(&self, id: i64) -> Result<Vec<(Vec<i64>, i64)>, StoreError> {
        if id <= 0 {
            return Ok(Vec::new());
        }
        let plans = self
            .client
            .get_compaction_plans(
                sdk::request::utility::GetCompactionPlansRequest::builder()
                    .compaction_id(id)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        Ok(plans
            .merges()
            .iter()
            .map(|merge| {
                (
                    merge.get_source_segment_ids().to_vec(),
                    merge.get_target_segment_id(),
                )
            })
            .collect())
    }

    /// Rows in sealed segments that query nodes serve (through the index,
    /// or exhaustively for segments too small to index); rows still in
    /// growing segments are not counted.
    pub async fn served_sealed_rows(&self) -> Result<u64, StoreError> {
        Ok(self
            .served_segments()
            .await?
            .iter()
            .filter(|segment| segment.get_state() != sdk::SegmentState::Growing)
            .map(|segment| segment.get_row_count().max(0) as u64)
            .sum())
    }

    /// How many sealed segments query nodes serve: a search visits each.
    pub async fn served_sealed_segments(&self) -> Result<usize, StoreError> {
        Ok(self
            .served_segments()
            .await?
            .iter()
            .filter(|segment| segment.get_state() != sdk::SegmentState::Growing)
            .count())
    }

    async fn served_segments(&self) -> Result<Vec<sdk::QuerySegmentInfo>, StoreError> {
        Ok(self
            .client
            .list_query_segments(
                sdk::request::utility::ListQuerySegmentsRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?
            .segments()
            .to_vec())
    }

    /// The segments Milvus has persisted, in every state.
    async fn persisted_segments(
        &self,
    ) -> Result<sdk::response::utility::ListPersistentSegmentsResponse, StoreError> {
        self.client
            .list_persistent_segments(
                sdk::request::utility::ListPersistentSegmentsRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)
    }

    /// The ids of the persisted segments that are flushed (sealed, on
    /// object storage, not merged away).
    async fn flushed_segments(&self) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .persisted_segments()
            .await?
            .segments()
            .iter()
            .filter(|segment| segment.get_state() == sdk::SegmentState::Flushed)
            .map(|segment| segment.get_segment_id())
            .collect())
    }

    /// Whether no sealed data waits for its index or for a query node: the
    /// index covers every flushed row, every flushed segment is served, and
    /// so is each of `sealed` and of `merged` unless compaction merged it
    /// into another since; and no segment merged away is served any more.
    /// A segment of `sealed` Milvus no longer lists counts as merged away;
    /// one of `merged` (a merge's fresh target) must be listed, as Milvus
    /// lists it before query nodes load it.
    async fn is_settled(&self, sealed: &[i64], merged: &[i64]) -> Result<bool, StoreError> {
        if !self.index_covers_every_row().await? {
            return Ok(false);
        }
        let persisted = self.persisted_segments().await?;
        let served: HashSet<i64> = self
            .served_segments()
            .await?
            .iter()
            .map(|segment| segment.get_segment_id())
            .collect();
        let state = |id: i64| {
            persisted
                .segments()
                .iter()
                .find(|segment| segment.get_segment_id() == id)
                .map(|segment| segment.get_state())
        };
        let flushed_served = persisted.segments().iter().all(|segment| {
            segment.get_state() != sdk::SegmentState::Flushed
                || served.contains(&segment.get_segment_id())
        });
        let sealed_served = sealed.iter().all(|&id| {
            served.contains(&id)
                || matches!(
                    state(id),
                    None | Some(sdk::SegmentState::Dropped | sdk::SegmentState::NotExist)
                )
        });
        let merged_served = merged.iter().all(|&id| {
            served.contains(&id) || matches!(state(id), Some(sdk::SegmentState::Dropped))
        });
        // After a merge, query nodes serve the sources beside the merged
        // segment until they hand off; a search visits both until then.
        let sources_released = served
            .iter()
            .all(|&id| !matches!(state(id), Some(sdk::SegmentState::Dropped)));
        Ok(flushed_served && sealed_served && merged_served && sources_released)
    }

    /// Whether every index of the collection covers every row Milvus has
    /// flushed (nothing pending).
    pub(crate) async fn index_covers_every_row(&self) -> Result<bool, StoreError> {
        let index = self
            .client
            .describe_index(
                sdk::request::index::DescribeIndexRequest::builder()
                    .collection_name(&self.collection)
                    .build()
                    .map_err(classify)?,
            )
            .await
            .map_err(classify)?;
        Ok(index.indexes().iter().all(|index| {
            index.get_pending_rows() == 0 && index.get_indexed_rows() >= index.get_total_rows()
        }))
    }
}
