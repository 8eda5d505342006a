//! Embeds text locally with a BERT-family ONNX encoder through ONNX Runtime.
//!
//! Any encoder works if its directory holds `model.onnx` (inputs
//! `input_ids`, `attention_mask` and optionally `token_type_ids`; output
//! `last_hidden_state`), its `tokenizer.json`, and a `docpipe-model.toml`
//! manifest naming the dimension, pooling, input limit and query prefix.
//! Vectors are pooled as the manifest says and L2-normalised, so inner
//! product equals cosine similarity. Texts are batched by a token budget
//! ([`BatchLimits`]); a [`BatchingEmbedder`] does so across the documents a
//! worker has in flight.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from
//! `ORT_DYLIB_PATH`, else `$DOCPIPE_HOME/lib/libonnxruntime.so` (`DOCPIPE_HOME`
//! defaults to `.docpipe`), which `make setup` installs from PyPI.

#![warn(missing_docs)]

mod batch;
mod executor;
mod manifest;
mod onnx;

pub use batch::{BatchLimits, next_batch, plan};
pub use executor::{BatchingEmbedder, Embedded};
pub use manifest::{MANIFEST_FILE, ModelDir, ModelManifest, Pooling};
pub use onnx::{OnnxEmbedder, cpu_isa, locate_onnxruntime, resolve_threads};

use docpipe_core::{Classify, ErrorClass};
use std::path::PathBuf;

/// Turns texts into vectors.
pub trait Embedder: Send + Sync {
    /// Length of every vector.
    fn dimension(&self) -> usize;

    /// The model's name, for spans and logs.
    fn model_name(&self) -> &str;

    /// Embeds texts to be indexed, in order, batching internally.
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Embeds a search query (with the model's query prefix).
    fn embed_query(&self, query: &str) -> Result<Vec<f32>, EmbedError>;
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The ONNX Runtime shared library is not where it was looked for.
    #[error(
        "ONNX Runtime library not found at {0}; run `make setup` or set ORT_DYLIB_PATH to libonnxruntime.so"
    )]
    RuntimeMissing(PathBuf),
    /// The ONNX Runtime library could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad {
        /// The library path.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A required model file is missing.
    #[error(
        "model directory {dir} has no {file}; run `make setup` or point model.dir at a complete model directory"
    )]
    ModelFileMissing {
        /// The model directory.
        dir: PathBuf,
        /// The missing file.
        file: &'static str,
    },
    /// The manifest is unreadable or invalid.
    #[error("invalid model manifest {path}: {message}")]
    InvalidManifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer file is unreadable or invalid.
    #[error("invalid tokenizer {path}: {message}")]
    InvalidTokenizer {
        /// The tokenizer path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ONNX session could not be created or does not fit the manifest.
    #[error("cannot use model {path}: {message}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Tokenisation or inference failed for a batch.
    #[error("embedding failed: {0}")]
    Inference(String),
}

impl Classify for EmbedError {
    fn class(&self) -> ErrorClass {
        // Inference on the same text fails the same way; set-up errors are
        // the operator's to fix, and retrying a document will not fix them.
        ErrorClass::Permanent
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Inference(_) => "embedding_failed",
            _ => "embedder_unavailable",
        }
    }
}
