//! What flows between stages: parsed documents, chunks and embedded chunks.

use crate::ids::{ChunkId, ContentHash, DocumentId, PipelineVersion, TenantId};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A document reduced to clean text plus the structure needed to explain
/// where each piece of text came from. Serializable, so that a re-index can
/// re-chunk it without the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParsedDocument {
    /// The document title (PDF metadata or first heading; HTML `<title>` or `<h1>`).
    pub title: Option<String>,
    /// The document's text: blocks separated by blank lines.
    pub text: String,
    /// Where each block of `text` sits in the document.
    pub blocks: Vec<Block>,
    /// Number of pages, for paginated formats.
    pub page_count: Option<u32>,
    /// Pages that could not be read and were left out (1-based).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_pages: Vec<u32>,
    /// Running headers and footers recognised and left out of the text,
    /// each number masked as `#` ("Page # of #").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub furniture: Vec<String>,
    /// Pages without a text layer whose text OCR read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_pages: Vec<OcrPage>,
}

/// A page whose text OCR read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OcrPage {
    /// 1-based page number.
    pub page: u32,
    /// The mean of Tesseract's word confidences, 0 to 100.
    pub confidence: f32,
}

/// A contiguous part of [`ParsedDocument::text`] with one page and heading path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Byte range in [`ParsedDocument::text`].
    pub range: Range<usize>,
    /// 1-based page number, for paginated formats.
    pub page: Option<u32>,
    /// The headings above this block, outermost first.
    pub heading_path: Vec<String>,
    /// Whether the block is itself a heading.
    pub is_heading: bool,
}

impl ParsedDocument {
    /// Appends a block of text, separated from the previous one by a blank line.
    pub fn push_block(
        &mut self,
        text: &str,
        page: Option<u32>,
        heading_path: &[String],
        is_heading: bool,
    ) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.blocks.push(Block {
            range: start..self.text.len(),
            page,
            heading_path: heading_path.to_vec(),
            is_heading,
        });
    }

    /// The block containing byte `offset` of the text, or the nearest one before it.
    pub fn block_at(&self, offset: usize) -> Option<&Block> {
        let index = self
            .blocks
            .partition_point(|block| block.range.start <= offset);
        index.checked_sub(1).map(|index| &self.blocks[index])
    }

    /// OCR's mean confidence on `page` when OCR read it; an unpaginated
    /// document read by OCR (an image) is all one OCR page.
    pub fn ocr_confidence(&self, page: Option<u32>) -> Option<f32> {
        match page {
            Some(page) => self
                .ocr_pages
                .iter()
                .find(|ocr| ocr.page == page)
                .map(|ocr| ocr.confidence),
            None if self.page_count.is_none() => self.ocr_pages.first().map(|ocr| ocr.confidence),
            None => None,
        }
    }

    /// Whether the document has any text worth indexing.
    pub fn has_text(&self) -> bool {
        self.text.chars().any(char::is_alphanumeric)
    }
}

/// One chunk of a document, ready to be embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Content-addressed id.
    pub id: ChunkId,
    /// The owning tenant.
    pub tenant: TenantId,
    /// The document it came from.
    pub document_id: DocumentId,
    /// Position within the document, from 0.
    pub ordinal: u32,
    /// Byte range in the parsed document's text.
    pub byte_range: Range<usize>,
    /// Page where the chunk starts, for paginated formats.
    pub page: Option<u32>,
    /// Headings above the chunk's start, outermost first.
    pub heading_path: Vec<String>,
    /// Its document's title (shortened as headings are), which BM25 ranks
    /// as a field of its own beside the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The chunk's original text (what is stored and shown).
    pub text: String,
    /// What the embedder sees: the text, optionally prefixed with the title
    /// and heading path so that short chunks keep their context.
    pub embed_text: String,
    /// Tesseract's mean word confidence (0 to 100) on the page the chunk
    /// starts on, when OCR read that page; `None` for text the document
    /// carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
}

/// A chunk with its vector and provenance, as written to the stores.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedChunk {
    /// The chunk.
    pub chunk: Chunk,
    /// The L2-normalised embedding of `chunk.embed_text`.
    pub vector: Vec<f32>,
    /// The pipeline version that produced it.
    pub pipeline_version: PipelineVersion,
    /// The hash of the source document's bytes.
    pub content_hash: ContentHash,
    /// Where the document came from: its `file://` URI, or `inline`.
    pub source: String,
    /// The publisher's version of the document it came from (see
    /// [`IngestRequest::document_version`](crate::IngestRequest::document_version)).
    pub document_version: u64,
    /// The document's metadata, as its publisher gave it.
    pub metadata: crate::Metadata,
}
