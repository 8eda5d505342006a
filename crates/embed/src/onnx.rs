//! The ONNX Runtime embedder.

use crate::{EmbedError, Embedder, ModelDir, ModelManifest, Pooling};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    batch_size: usize,
    feeds_token_types: bool,
}

impl OnnxEmbedder {
    /// Loads the model in `dir` with `intra_threads` ONNX Runtime threads (0 = one per core).
    pub fn load(
        dir: &ModelDir,
        batch_size: usize,
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
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
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
            batch_size: batch_size.max(1),
            feeds_token_types,
        };
        let (probe, _) = embedder.embed_batch(&["dimension probe"])?;
        if probe[0].len() != embedder.manifest.dimension {
            return Err(model_error(format!(
                "the model produces {}-dimensional vectors but its manifest says {}",
                probe[0].len(),
                embedder.manifest.dimension
            )));
        }
        Ok(embedder)
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The texts' vectors and how many (unpadded) tokens they had.
    fn embed_batch(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        let inference = |message: String| EmbedError::Inference(message);
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|error| inference(error.to_string()))?;
        let batch = encodings.len();
        let sequence = encodings.first().map_or(0, |encoding| encoding.len());
        let column = |select: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings
                .iter()
                .flat_map(|encoding| select(encoding).iter().map(|&value| i64::from(value)))
                .collect()
        };
        let mask = column(tokenizers::Encoding::get_attention_mask);
        let tokens = mask.iter().filter(|&&attended| attended == 1).count() as u64;
        let tensor = |values: Vec<i64>| {
            Tensor::from_array(([batch, sequence], values))
                .map_err(|error| inference(error.to_string()))
        };
        let mut inputs = vec![
            ("input_ids", tensor(column(tokenizers::Encoding::get_ids))?),
            ("attention_mask", tensor(mask.clone())?),
        ];
        if self.feeds_token_types {
            inputs.push((
                "token_type_ids",
                tensor(column(tokenizers::Encoding::get_type_ids))?,
            ));
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
        let vectors = (0..batch)
            .map(|row| {
                let states = &values[row * sequence * hidden..(row + 1) * sequence * hidden];
                let row_mask = &mask[row * sequence..(row + 1) * sequence];
                normalised(pool(self.manifest.pooling, states, row_mask, hidden))
            })
            .collect();
        Ok((vectors, tokens))
    }

    fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Batching texts of similar length keeps padding, and wasted work, small.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&index| texts[index].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        let mut tokens = 0;
        for batch in order.chunks(self.batch_size) {
            let batch_texts: Vec<&str> = batch.iter().map(|&index| texts[index]).collect();
            let (embedded, batch_tokens) = self.embed_batch(&batch_texts)?;
            tokens += batch_tokens;
            let metrics = docpipe_telemetry::metrics::metrics();
            metrics.embed_batch_size.observe(batch.len() as f64);
            metrics.tokens.inc_by(batch_tokens);
            for (&index, vector) in batch.iter().zip(embedded) {
                vectors[index] = vector;
            }
        }
        // For the caller's `docpipe.embed` span, if it declares these fields.
        let span = tracing::Span::current();
        span.record("tokens", tokens);
        span.record("batches", texts.len().div_ceil(self.batch_size));
        span.record("batch_size", self.batch_size);
        Ok(vectors)
    }
}

fn build_session(
    environment: &ort::environment::Environment,
    path: &Path,
    intra_threads: usize,
) -> ort::Result<Session> {
    let mut builder =
        Session::builder(environment)?.with_optimization_level(GraphOptimizationLevel::Level3)?;
    if intra_threads > 0 {
        builder = builder.with_intra_threads(intra_threads)?;
    }
    builder.commit_from_file(path)
}

impl Embedder for OnnxEmbedder {
    fn dimension(&self) -> usize {
        self.manifest.dimension
    }

    fn model_name(&self) -> &str {
        &self.manifest.name
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if self.manifest.document_prefix.is_empty() {
            return self.embed_all(texts);
        }
        let prefixed: Vec<String> = texts
            .iter()
            .map(|text| format!("{}{text}", self.manifest.document_prefix))
            .collect();
        self.embed_all(&prefixed.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError> {
        let text = format!("{}{query}", self.manifest.query_prefix);
        Ok(self.embed_batch(&[&text])?.0.remove(0))
    }
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
