//! Embed-only runs: the rate the end-to-end pipeline is compared with.

use crate::{BenchError, failed};
use docpipe_core::PipelineConfig;
use docpipe_embed::{BatchLimits, BatchingEmbedder, Embedder, ModelDir, OnnxEmbedder};
use std::path::Path;
use std::time::{Duration, Instant};

/// One embed-only measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedRun {
    /// `fp32` or `int8`.
    pub model: &'static str,
    /// ONNX Runtime sessions, side by side.
    pub sessions: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    /// Chunks embedded per second.
    pub chunks_per_s: f64,
    /// Model tokens (with special tokens, truncated as embedded) per second.
    pub tokens_per_s: f64,
    /// Share of the token positions computed that were padding.
    pub padding: f64,
}

impl EmbedRun {
    /// "2 thread(s)", "2 sessions x 1 thread(s)".
    pub(crate) fn layout(&self) -> String {
        match self.sessions {
            1 => format!("{} thread(s)", self.threads),
            sessions => format!("{sessions} sessions x {} thread(s)", self.threads),
        }
    }
}

pub(crate) fn count_tokens(model: &ModelDir, texts: &[&str]) -> Result<usize, BenchError> {
    let mut tokenizer = model.tokenizer().map_err(failed("loading the tokenizer"))?;
    tokenizer.with_padding(None);
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .map_err(failed("counting tokens"))?;
    Ok(encodings.iter().map(|encoding| encoding.len()).sum())
}

/// The model and session layout of an embed-only run.
#[derive(Clone, Copy)]
pub(crate) struct EmbedShape {
    pub(crate) label: &'static str,
    pub(crate) sessions: usize,
    pub(crate) threads: usize,
}

pub(crate) fn embed_only(
    config: &PipelineConfig,
    dir: &Path,
    shape: EmbedShape,
    texts: &[&str],
    tokens: usize,
) -> Result<(EmbedRun, Vec<Vec<f32>>), BenchError> {
    let model = ModelDir::open(dir).map_err(failed("opening a model"))?;
    let limits = BatchLimits::new(config.model.batch_size, config.model.batch_tokens);
    let mut sessions = (0..shape.sessions)
        .map(|_| OnnxEmbedder::load(&model, limits, shape.threads))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed("loading a model"))?;
    let (started, work) = (Instant::now(), ModelWork::now());
    let vectors = if sessions.len() == 1 {
        sessions.remove(0).embed_documents(texts)
    } else {
        // One job of every text, no deadline: the lanes take batches side
        // by side, as fast as they can.
        BatchingEmbedder::start(sessions, 1, Duration::ZERO)
            .and_then(|executor| executor.embed(texts))
            .map(|embedded| embedded.vectors)
    }
    .map_err(failed("embedding"))?;
    let seconds = started.elapsed().as_secs_f64();
    let run = EmbedRun {
        model: shape.label,
        sessions: shape.sessions,
        threads: shape.threads,
        chunks_per_s: texts.len() as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        padding: work.padding_since(),
    };
    tracing::info!(?run, "embed-only measured");
    Ok((run, vectors))
}

/// Embeds `texts` as a worker would (its session layout and batching).
pub(crate) fn embed_with_worker_layout(
    config: &PipelineConfig,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, BenchError> {
    let model = ModelDir::open(&config.model.dir).map_err(failed("opening the model"))?;
    let tokens = count_tokens(&model, texts)?;
    Ok(embed_only(
        config,
        &config.model.dir,
        worker_layout(config),
        texts,
        tokens,
    )?
    .1)
}

/// The worker's session layout of the pipeline's (fp32) model.
pub(crate) fn worker_layout(config: &PipelineConfig) -> EmbedShape {
    let (sessions, threads) = config
        .model
        .session_layout(docpipe_embed::resolve_threads(config.model.intra_threads));
    EmbedShape {
        label: "fp32",
        sessions,
        threads,
    }
}

/// Counts model work between two points: tokens, and positions computed
/// with padding (from the process's metrics).
pub(crate) struct ModelWork {
    tokens: u64,
    padded: u64,
}

impl ModelWork {
    pub(crate) fn now() -> Self {
        let metrics = docpipe_telemetry::metrics::metrics();
        Self {
            tokens: metrics.tokens.get(),
            padded: metrics.padded_tokens.get(),
        }
    }

    /// The share of positions computed since `self` that were padding.
    pub(crate) fn padding_since(&self) -> f64 {
        let now = Self::now();
        let padded = (now.padded - self.padded) as f64;
        1.0 - (now.tokens - self.tokens) as f64 / padded.max(1.0)
    }
}
