//! The model directory and its `docpipe-model.toml` manifest.

use crate::EmbedError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The file name of the manifest inside a model directory.
pub const MANIFEST_FILE: &str = "docpipe-model.toml";

/// How token embeddings become one text embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average of token embeddings under the attention mask (sentence-transformers MiniLM).
    Mean,
    /// The `[CLS]` token's embedding (bge).
    Cls,
}

/// What the embedder must know about `model.onnx`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// The model's name, e.g. `BAAI/bge-small-en-v1.5`.
    pub name: String,
    /// Embedding dimension.
    pub dimension: usize,
    /// Pooling the model was trained with.
    pub pooling: Pooling,
    /// Longest input, in tokens including special tokens.
    pub max_tokens: usize,
    /// Prepended to search queries (bge: `Represent this sentence for searching relevant passages: `).
    #[serde(default)]
    pub query_prefix: String,
    /// Prepended to indexed text.
    #[serde(default)]
    pub document_prefix: String,
}

/// A directory holding `model.onnx`, `tokenizer.json` and the manifest.
#[derive(Debug, Clone)]
pub struct ModelDir {
    path: PathBuf,
    manifest: ModelManifest,
}

impl ModelDir {
    /// Opens a model directory, checking that every file is there.
    pub fn open(path: &Path) -> Result<Self, EmbedError> {
        for file in [MANIFEST_FILE, "model.onnx", "tokenizer.json"] {
            if !path.join(file).is_file() {
                return Err(EmbedError::ModelFileMissing {
                    dir: path.to_owned(),
                    file,
                });
            }
        }
        let manifest_path = path.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path).map_err(|error| {
            EmbedError::InvalidManifest {
                path: manifest_path.clone(),
                message: error.to_string(),
            }
        })?;
        let manifest: ModelManifest =
            toml::from_str(&text).map_err(|error| EmbedError::InvalidManifest {
                path: manifest_path,
                message: error.to_string(),
            })?;
        Ok(Self {
            path: path.to_owned(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The path of `model.onnx`.
    pub fn onnx_path(&self) -> PathBuf {
        self.path.join("model.onnx")
    }

    /// The model's tokenizer exactly as shipped (its padding and truncation
    /// settings are the caller's to override).
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer, EmbedError> {
        let path = self.path.join("tokenizer.json");
        tokenizers::Tokenizer::from_file(&path).map_err(|error| EmbedError::InvalidTokenizer {
            path,
            message: error.to_string(),
        })
    }

    /// SHA-256 over the manifest and the ONNX file: the model's identity in
    /// the pipeline version, so swapping weights re-keys every chunk.
    pub fn fingerprint(&self) -> Result<Vec<u8>, EmbedError> {
        let mut hasher = Sha256::new();
        for file in [MANIFEST_FILE, "model.onnx"] {
            let path = self.path.join(file);
            let mut reader = std::fs::File::open(&path).map_err(|source| EmbedError::Io {
                path: path.clone(),
                source,
            })?;
            let mut buffer = vec![0; 1 << 20];
            loop {
                let read = reader.read(&mut buffer).map_err(|source| EmbedError::Io {
                    path: path.clone(),
                    source,
                })?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
            }
        }
        Ok(hasher.finalize().to_vec())
    }
}
