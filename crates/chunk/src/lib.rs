//! Splits parsed documents into overlapping chunks sized in model tokens.
//!
//! Sizes are counted with the embedding model's own tokenizer, so a chunk of
//! `max_tokens` always fits the model. Boundaries are semantic: text-splitter
//! prefers paragraph breaks, then sentences, then words.

#![warn(missing_docs)]

use docpipe_core::config::ChunkingConfig;
use docpipe_core::{
    Chunk, ChunkId, Classify, DocumentId, ErrorClass, ParsedDocument, PipelineVersion, TenantId,
};
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};
use tokenizers::Tokenizer;

mod tokens;

pub use tokens::TokenCounter;

/// A chunk counts as at least one token per this many bytes. Ordinary text
/// has a token every few bytes; a run the tokenizer maps to a single
/// unknown token (WordPiece does so with any word over 100 characters) does
/// not, and is split by bytes instead of becoming one chunk of any size,
/// too large for a store's text field.
pub const MAX_BYTES_PER_TOKEN: usize = 32;

/// Most headings a chunk's heading path keeps (the outermost ones).
pub const MAX_HEADINGS: usize = 16;

/// Most characters kept of each heading and of the title where they
/// serve as context: a heading path is context, not content, and every
/// store caps the size of a field.
pub const MAX_HEADING_CHARS: usize = 200;

/// Why a document could not be chunked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The chunking settings are unusable.
    #[error("invalid chunking settings: {0}")]
    InvalidSettings(String),
    /// The document produced more chunks than the pipeline allows.
    #[error(
        "document produced {count} chunks; the pipeline limit (limits.max_chunks_per_document) is {limit}"
    )]
    TooManyChunks {
        /// Chunks produced.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl Classify for ChunkError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidSettings(_) => "invalid_settings",
            Self::TooManyChunks { .. } => "too_many_chunks",
        }
    }
}

/// Splits documents into chunks.
pub struct Chunker {
    tokenizer: Tokenizer,
    max_tokens: usize,
    overlap_tokens: usize,
    embed_context: bool,
    max_chunks: usize,
}

impl Chunker {
    /// A chunker counting with `tokenizer` (the embedding model's). Padding
    /// and truncation are switched off so sizes reflect the whole text.
    pub fn new(
        mut tokenizer: Tokenizer,
        settings: &ChunkingConfig,
        max_chunks: usize,
    ) -> Result<Self, ChunkError> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|error| ChunkError::InvalidSettings(error.to_string()))?;
        let chunker = Self {
            tokenizer,
            max_tokens: settings.max_tokens,
            overlap_tokens: settings.overlap_tokens,
            embed_context: settings.embed_context,
            max_chunks,
        };
        chunker.splitter("")?;
        Ok(chunker)
    }

    /// A splitter for `text`: the sizer counts tokens of ranges of it.
    fn splitter<'a>(
        &'a self,
        text: &'a str,
    ) -> Result<TextSplitter<TokensOrBytes<'a>>, ChunkError> {
        let config = ChunkConfig::new(self.max_tokens)
            .with_sizer(TokensOrBytes {
                tokens: TokenCounter::new(&self.tokenizer, text),
                max_tokens: self.max_tokens,
            })
            .with_overlap(self.overlap_tokens)
            .map_err(|error| ChunkError::InvalidSettings(error.to_string()))?;
        Ok(TextSplitter::new(config))
    }

    /// Chunks a document. Ordinals count from 0 in document order; each
    /// chunk records its byte range, starting page and heading path.
    pub fn chunk(
        &self,
        document: &ParsedDocument,
        tenant: &TenantId,
        document_id: &DocumentId,
        version: &PipelineVersion,
    ) -> Result<Vec<Chunk>, ChunkError> {
        let mut chunks = Vec::new();
        let splitter = self.splitter(&document.text)?;
        // Every chunk carries the document's title.
        let title = document.title.as_deref().map(shortened);
        for (ordinal, (start, text)) in splitter.chunk_indices(&document.text).enumerate() {
            if ordinal >= self.max_chunks {
                return Err(ChunkError::TooManyChunks {
                    count: splitter.chunk_indices(&document.text).count(),
                    limit: self.max_chunks,
                });
            }
            let ordinal = ordinal as u32;
            let block = document.block_at(start);
            let heading_path: Vec<String> = block
                .map(|block| block.heading_path.iter().take(MAX_HEADINGS))
                .into_iter()
                .flatten()
                .map(|heading| shortened(heading))
                .collect();
            let embed_text = searchable(&if self.embed_context {
                with_context(title.as_deref(), &heading_path, text)
            } else {
                text.to_owned()
            });
            chunks.push(Chunk {
                id: ChunkId::derive(tenant, document_id, version, ordinal, text),
                tenant: tenant.clone(),
                document_id: document_id.clone(),
                ordinal,
                byte_range: start..start + text.len(),
                page: block.and_then(|block| block.page),
                heading_path,
                title: title.clone(),
                text: text.to_owned(),
                embed_text,
                ocr_confidence: document.ocr_confidence(block.and_then(|block| block.page)),
            });
        }
        Ok(chunks)
    }
}

/// Sizes chunks of `text` in model tokens, and at least one token per
/// [`MAX_BYTES_PER_TOKEN`] bytes.
struct TokensOrBytes<'a> {
    tokens: TokenCounter<'a>,
    max_tokens: usize,
}

impl ChunkSizer for TokensOrBytes<'_> {
    fn size(&self, chunk: &str) -> usize {
        let by_bytes = chunk.len().div_ceil(MAX_BYTES_PER_TOKEN);
        if by_bytes > self.max_tokens {
            // Too large whatever its token count: the splitter asks about
            // whole sections before it narrows down, and tokenizing them
            // would cost more than the chunks themselves.
            return by_bytes;
        }
        self.tokens.count_slice(chunk).max(by_bytes)
    }
}

/// What the model and BM25 see of a text: its Unicode compatibility form
/// (NFKC). PDFs keep typographic ligatures and presentation forms ("ﬁle",
/// U+FB01), which neither the tokenizer nor the BM25 analyzer would ever
/// match with "file"; the stored text keeps what a reader expects.
fn searchable(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    text.nfkc().collect()
}

/// `text`, cut to [`MAX_HEADING_CHARS`] characters (an ellipsis marks a cut).
fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_HEADING_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `Title › Heading › Subheading` on a line above the text, skipping parts
/// the text already starts with (a chunk that opens with its own heading).
fn with_context(title: Option<&str>, heading_path: &[String], text: &str) -> String {
    let mut context: Vec<&str> = Vec::new();
    for part in title
        .into_iter()
        .chain(heading_path.iter().map(String::as_str))
    {
        if context.last() != Some(&part) && !text.starts_with(part) {
            context.push(part);
        }
    }
    if context.is_empty() {
        text.to_owned()
    } else {
        format!("{}\n{text}", context.join(" › "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ligatures_and_presentation_forms_are_searched_as_plain_letters() {
        assert_eq!(
            searchable("\u{FB01}le \u{FB02}ow, \u{FF21}\u{FF22}C"),
            "file flow, ABC"
        );
        assert_eq!(
            searchable("caf\u{E9}"),
            "caf\u{E9}",
            "composed letters stay"
        );
    }

    #[test]
    fn context_line_skips_repeats_and_the_chunks_own_heading() {
        let path = ["Feeding".to_owned()];
        assert_eq!(
            with_context(Some("Bees"), &path, "Give fondant."),
            "Bees › Feeding\nGive fondant."
        );
        assert_eq!(
            with_context(Some("Bees"), &path, "Feeding\n\nGive fondant."),
            "Bees\nFeeding\n\nGive fondant."
        );
        assert_eq!(with_context(None, &[], "x"), "x");
        let same = ["Bees".to_owned()];
        assert_eq!(with_context(Some("Bees"), &same, "y"), "Bees\ny");
    }
}
