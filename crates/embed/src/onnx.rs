//! The ONNX Runtime embedder.

use crate::batch::{BatchLimits, plan};
use crate::{EmbedError, Embedder, ModelDir, ModelManifest, Pooling};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// Finds `libonnxruntime.so`: `ORT_DYLIB_PATH`, else
/// `$DOCPIPE_HOME/lib/libonnxruntime.so` with `DOCPIPE_HOME` defaulting to `.docpipe`.
pub fn locate_onnxruntime() -> Result<PathBuf, EmbedError> {
    let path = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("DOCPIPE_HOME")
            .map_or_else(|| PathBuf::from(".docpipe"), PathBuf::from)
            .join("lib/libonnxruntime.so"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::RuntimeMissing(path))
    }
}

/// The best SIMD path this CPU offers ONNX Runtime's integer and float
/// kernels, from `/proc/cpuinfo` (for start-up logs and benchmarks).
pub fn cpu_isa() -> &'static str {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |flag: &str| flags.split_whitespace().any(|word| word == flag);
    if has("amx_int8") {
        "AMX"
    } else if has("avx512_vnni") {
        "AVX-512 VNNI"
    } else if has("avx512f") {
        "AVX-512"
    } else if has("avx2") {
        "AVX2"
    } else {
        "baseline x86-64"
    }
}

/// Loads ONNX Runtime once per process; later calls return the first outcome.
fn init_runtime(library: &Path) -> Result<&'static ort::environment::Environment, EmbedError> {
    static RUNTIME: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|error| error.to_string())?
                .with_name("docpipe")
                .build()
                .map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|message| EmbedError::RuntimeLoad {
            path: library.to_owned(),
            message: message.clone(),
        })
}

/// A BERT-family encoder run by ONNX Runtime on the CPU.
pub struct OnnxEmbedder {
    // ONNX Runtime sessions run one call at a time through `&mut`; the
    // session parallelises each call internally with its intra-op threads.
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    manifest: ModelManifest,
    limits: BatchLimits,
    feeds_token_types: bool,
}

impl OnnxEmbedder {
    /// Loads the model in `dir` to run batches within `limits` on
    /// `intra_threads` ONNX Runtime threads (0 = one per core).
    pub fn load(
        dir: &ModelDir,
        limits: BatchLimits,
        intra_threads: usize,
    ) -> Result<Self, EmbedError> {
        let environment = init_runtime(&locate_onnxruntime()?)?;
        let onnx_path = dir.onnx_path();
        let model_error = |message: String| EmbedError::Model {
            path: onnx_path.clone(),
            message,
        };
        let session = build_session(environment, &onnx_path, intra_threads)
            .map_err(|error| model_error(error.to_string()))?;
        let input_names: Vec<&str> = session.inputs().iter().map(|input| input.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !input_names.contains(&required) {
                return Err(model_error(format!(
                    "the graph has no `{required}` input (inputs: {input_names:?})"
                )));
            }
        }
        let feeds_token_types = input_names.contains(&"token_type_ids");
        let manifest = dir.manifest().clone();
        let mut tokenizer = dir.tokenizer()?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: manifest.max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|error| EmbedError::InvalidTokenizer {
                path: dir.onnx_path().with_file_name("tokenizer.json"),
                message: error.to_string(),
            })?;
        let embedder = Self {
            session: Mutex::new(session),
            tokenizer,
            manifest,
            limits,
            feeds_token_types,
        };
        let probe = embedder.embed_query("dimension probe")?;
        if probe.len() != embedder.manifest.dimension {
            return Err(model_error(format!(
                "the model produces {}-dimensional vectors but its manifest says {}",
                probe.len(),
                embedder.manifest.dimension
            )));
        }
        Ok(embedder)
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Tokenizes texts as the model reads them: with special tokens,
    /// truncated to the model's input limit, unpadded.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>, EmbedError> {
        self.tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| EmbedError::Inference(error.to_string()))
    }

    /// Tokenizes texts to be indexed, with the model's document prefix.
    pub(crate) fn tokenize_documents(&self, texts: &[&str]) -> Result<Vec<Encoding>, EmbedError> {
        let prefix = &self.manifest.document_prefix;
        if prefix.is_empty() {
            return self.tokenize(texts);
        }
        let prefixed: Vec<String> = texts.iter().map(|text| format!("{prefix}{text}")).collect();
        self.tokenize(&prefixed.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Tokenizes a search query, with the model's query prefix (truncated
    /// to the model's longest input, like every text).
    pub(crate) fn tokenize_query(&self, query: &str) -> Result<Encoding, EmbedError> {
        let text = format!("{}{query}", self.manifest.query_prefix);
        Ok(self.tokenize(&[&text])?.remove(0))
    }

    /// Runs one model call on tokenized texts, padded to the longest, and
    /// returns their pooled, normalised vectors in order.
    pub(crate) fn run_batch(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inference = |message: String| EmbedError::Inference(message);
        let size = batch.len();
        let sequence = batch
            .iter()
            .map(|encoding| encoding.len())
            .max()
            .unwrap_or(0);
        // Row-major [batch, sequence], zero-padded: pad id 0, mask 0, type 0.
        let column = |select: fn(&Encoding) -> &[u32]| -> Vec<i64> {
            let mut values = vec![0i64; size * sequence];
            for (row, encoding) in batch.iter().enumerate() {
                for (slot, &value) in values[row * sequence..].iter_mut().zip(select(encoding)) {
                    *slot = i64::from(value);
                }
            }
            values
        };
        let mask = column(Encoding::get_attention_mask);
        let tensor = |values: Vec<i64>| {
            Tensor::from_array(([size, sequence], values))
                .map_err(|error| inference(error.to_string()))
        };
        let mut inputs = vec![
            ("input_ids", tensor(column(Encoding::get_ids))?),
            ("attention_mask", tensor(mask.clone())?),
        ];
        if self.feeds_token_types {
            inputs.push(("token_type_ids", tensor(column(Encoding::get_type_ids))?));
        }
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session
            .run(inputs)
            .map_err(|error| inference(error.to_string()))?;
        let hidden_states = outputs.get("last_hidden_state").unwrap_or(&outputs[0]);
        let (shape, values) = hidden_states
            .try_extract_tensor::<f32>()
            .map_err(|error| inference(error.to_string()))?;
        let hidden = *shape.last().unwrap_or(&0) as usize;
        if shape.len() != 3 || hidden == 0 {
            return Err(inference(format!(
                "expected a [batch, sequence, hidden] output, got shape {shape:?}"
            )));
        }
        let metrics = docpipe_telemetry::metrics::metrics();
        metrics.embed_batch_size.observe(size as f64);
        metrics.padded_tokens.inc_by((size * sequence) as u64);
        metrics
            .tokens
            .inc_by(batch.iter().map(|encoding| encoding.len() as u64).sum());
        Ok((0..size)
            .map(|row| {
                let states = &values[row * sequence * hidden..(row + 1) * sequence * hidden];
                let row_mask = &mask[row * sequence..(row + 1) * sequence];
                normalised(pool(self.manifest.pooling, states, row_mask, hidden))
            })
            .collect())
    }

    /// The batch limits this embedder was loaded with.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }
}

/// ONNX Runtime threads for `intra_threads` (0 = one per core).
pub fn resolve_threads(intra_threads: usize) -> usize {
    match intra_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        threads => threads,
    }
}

fn build_session(
    environment: &ort::environment::Environment,
    path: &Path,
    intra_threads: usize,
) -> ort::Result<Session> {
    // A fixed intra-op pool, and no spinning: idle ONNX Runtime threads
    // otherwise busy-wait between batches on cores that parsing, tokenizing
    // and the store clients need. No memory patterns: ONNX Runtime keeps
    // one per input shape, and batch shapes vary with every batch, so
    // memory grew with the corpus (by ~40 MB per session over 400 batches,
    // at no gain in speed).
    Session::builder(environment)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_memory_pattern(false)?
        .with_intra_threads(resolve_threads(intra_threads))?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?
        .commit_from_file(path)
}

impl Embedder for OnnxEmbedder {
    fn dimension(&self) -> usize {
        self.manifest.dimension
    }

    fn model_name(&self) -> &str {
        &self.manifest.name
    }

    /// Embeds texts in batches planned by token budget (see [`plan`]).
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenize_documents(texts)?;
        let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
        let mut vectors = vec![Vec::new(); texts.len()];
        let batches = plan(&lengths, self.limits);
        for batch in &batches {
            let inputs: Vec<&Encoding> = batch.iter().map(|&index| &encodings[index]).collect();
            for (&index, vector) in batch.iter().zip(self.run_batch(&inputs)?) {
                vectors[index] = vector;
            }
        }
        record_embed_fields(
            lengths.iter().sum(),
            batches.len(),
            batches.iter().map(Vec::len).max().unwrap_or(0),
        );
        Ok(vectors)
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let encoding = self.tokenize_query(query)?;
        Ok(self.run_batch(&[&encoding])?.remove(0))
    }
}

/// Records on the caller's `docpipe.embed` span, if it declares them, the
/// tokens its texts had, how many model calls they took and the largest.
pub(crate) fn record_embed_fields(tokens: usize, batches: usize, largest_batch: usize) {
    let span = tracing::Span::current();
    span.record("tokens", tokens);
    span.record("batches", batches);
    span.record("batch_size", largest_batch);
}

/// Pools one row of token embeddings (`tokens` is `sequence × hidden`).
fn pool(pooling: Pooling, tokens: &[f32], mask: &[i64], hidden: usize) -> Vec<f32> {
    match pooling {
        Pooling::Cls => tokens[..hidden].to_vec(),
        Pooling::Mean => {
            let mut sum = vec![0.0f32; hidden];
            let mut count = 0.0f32;
            for (token, _) in tokens
                .chunks_exact(hidden)
                .zip(mask)
                .filter(|(_, m)| **m == 1)
            {
                for (total, value) in sum.iter_mut().zip(token) {
                    *total += value;
                }
                count += 1.0;
            }
            sum.iter_mut().for_each(|total| *total /= count.max(1.0));
            sum
        }
    }
}

fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_ignores_padding() {
        let tokens = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        assert_eq!(pool(Pooling::Mean, &tokens, &[1, 1, 0], 2), [2.0, 3.0]);
        assert_eq!(pool(Pooling::Cls, &tokens, &[1, 1, 0], 2), [1.0, 2.0]);
    }

    #[test]
    fn vectors_are_unit_length() {
        let vector = normalised(vec![3.0, 4.0]);
        assert_eq!(vector, [0.6, 0.8]);
        assert_eq!(normalised(vec![0.0, 0.0]), [0.0, 0.0]);
    }
}
