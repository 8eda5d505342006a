//! Whether a long PDF stalls the small documents published after it.

use crate::end_to_end::Rig;
use crate::{BenchError, corpus, failed};
use docpipe_core::DocumentId;
use docpipe_core::PipelineConfig;
use docpipe_core::event::now_unix_ms;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Small documents' latency (publish to event) while a long PDF is being
/// indexed, against their latency alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StallReport {
    /// Pages of the long PDF.
    pub long_pdf_pages: usize,
    /// Its chunks.
    pub long_pdf_chunks: u32,
    /// Seconds from its publish to its event.
    pub long_pdf_seconds: f64,
    /// Small documents published while it was indexed, and alone.
    pub small_documents: usize,
    /// Their latency alone: median and 95th percentile, seconds.
    pub alone_p50_s: f64,
    /// See `alone_p50_s`.
    pub alone_p95_s: f64,
    /// Their latency beside the long PDF: median and 95th percentile, seconds.
    pub beside_p50_s: f64,
    /// See `beside_p50_s`.
    pub beside_p95_s: f64,
    /// Small documents indexed before the long PDF was.
    pub finished_before_long_pdf: usize,
}

/// Latencies of small documents, in seconds, and how the long PDF fared.
#[derive(Default)]
pub(crate) struct Latencies {
    pub(crate) small: Vec<f64>,
    pub(crate) finished_before_long: usize,
    pub(crate) long: Option<(f64, u32)>,
}

/// Publishes `small` documents one by one, a quarter second apart (after
/// `long_pdf`, if given), and measures each from publish to event.
pub(crate) async fn latencies(
    rig: &mut Rig,
    label: &str,
    small: &[PathBuf],
    long_pdf: Option<&Path>,
) -> Result<Latencies, BenchError> {
    const SPACING: Duration = Duration::from_millis(250);
    let long_id = DocumentId::new(format!("{label}-long")).expect("a valid id");
    // Latencies run from publish to the worker's event time: events are
    // read only after every document is published.
    let started = now_unix_ms();
    if let Some(pdf) = long_pdf {
        rig.publish(long_id.clone(), pdf).await?;
        // Let it reach the embedder before the small documents arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut published = std::collections::HashMap::new();
    for (index, path) in small.iter().enumerate() {
        let id = DocumentId::new(format!("{label}-{index}")).expect("a valid id");
        rig.publish(id.clone(), path).await?;
        published.insert(id, now_unix_ms());
        tokio::time::sleep(SPACING).await;
    }
    let mut measured = Latencies::default();
    let expected = small.len() + usize::from(long_pdf.is_some());
    let seconds_between = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
    let mut events = Vec::new();
    for _ in 0..expected {
        events.push(rig.next_indexed().await?);
    }
    // In the order the worker indexed them.
    events.sort_by_key(|&(_, _, at)| at);
    for (id, chunks, at) in events {
        if id == long_id {
            measured.long = Some((seconds_between(started, at), chunks));
        } else if let Some(&published) = published.get(&id) {
            measured.small.push(seconds_between(published, at));
            measured.finished_before_long += usize::from(measured.long.is_none());
        }
    }
    Ok(measured)
}

/// Whether a long PDF stalls the documents published after it.
pub(crate) async fn stall(
    config: &PipelineConfig,
    scratch: &Path,
    small: &[PathBuf],
    pages: usize,
) -> Result<StallReport, BenchError> {
    let pdf = corpus::write_long_pdf(&scratch.join("long"), pages)
        .map_err(failed("writing the long PDF"))?;
    let mut rig = Rig::start(config, &scratch.join("stall"), scratch).await?;
    let measured = async {
        let alone = latencies(&mut rig, "alone", small, None).await?;
        let beside = latencies(&mut rig, "beside", small, Some(&pdf)).await?;
        Ok::<_, BenchError>((alone, beside))
    }
    .await;
    rig.remove().await?;
    let (mut alone, mut beside) = measured?;
    let (alone_p50_s, alone_p95_s) = percentiles(&mut alone.small);
    let (beside_p50_s, beside_p95_s) = percentiles(&mut beside.small);
    let (long_pdf_seconds, long_pdf_chunks) = beside.long.unwrap_or((f64::NAN, 0));
    Ok(StallReport {
        long_pdf_pages: pages,
        long_pdf_chunks,
        long_pdf_seconds,
        small_documents: small.len(),
        alone_p50_s,
        alone_p95_s,
        beside_p50_s,
        beside_p95_s,
        finished_before_long_pdf: beside.finished_before_long,
    })
}

/// The median and 95th percentile of `values`.
pub(crate) fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        let rank = (quantile * values.len() as f64).ceil() as usize;
        values
            .get(rank.saturating_sub(1).min(values.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.95))
}
