//! The chunker with the real model tokenizer on fixture documents.

use docpipe_chunk::{Chunker, TokenCounter};
use docpipe_core::config::ChunkingConfig;
use docpipe_core::config::PdfEngineKind;
use docpipe_core::{Chunk, DocumentId, ParsedDocument, PipelineVersion, TenantId};
use docpipe_parse::{DocumentParser, ParseLimits, PdfEngine};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

const SETTINGS: ChunkingConfig = ChunkingConfig {
    max_tokens: 64,
    overlap_tokens: 16,
    embed_context: true,
};

fn tokenizer() -> Tokenizer {
    let home = std::env::var_os("DOCPIPE_HOME").expect("DOCPIPE_HOME is set by .cargo/config.toml");
    let path = PathBuf::from(home).join("models/all-MiniLM-L6-v2/tokenizer.json");
    Tokenizer::from_file(path).expect("run `make setup` to install the model")
}

fn parsed(relative: &str) -> ParsedDocument {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus")
        .join(relative);
    DocumentParser::new(
        PdfEngine::load(PdfEngineKind::Pdfium).expect("PDFium: run `make setup`"),
        ParseLimits::default(),
    )
    .parse(&std::fs::read(path).unwrap(), None)
    .unwrap()
}

fn chunk(
    document: &ParsedDocument,
    max_chunks: usize,
) -> Result<Vec<Chunk>, docpipe_chunk::ChunkError> {
    Chunker::new(tokenizer(), &SETTINGS, max_chunks)
        .unwrap()
        .chunk(
            document,
            &TenantId::new("t").unwrap(),
            &DocumentId::new("d").unwrap(),
            &PipelineVersion::derive("test", &[]),
        )
}

/// The model's tokenizer without the shipped file's fixed padding to 128.
fn unpadded_tokenizer() -> Tokenizer {
    let mut tokenizer = tokenizer();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    tokenizer
}

/// Tokens in `text`.
fn tokens(text: &str) -> usize {
    unpadded_tokenizer().encode(text, false).unwrap().len()
}

#[test]
fn token_counts_by_range_match_tokenizing_each_range() {
    let tokenizer = unpadded_tokenizer();
    let tricky = "Crème brûlée, cafe\u{301} naïve—ÉTÉ! 東京タワー and 北京 (x+y)=z; \
        e.g. U.S.A. don't   tabs\tand\u{7}bells 🙂🙂 supercalifragilisticexpialidocious"
        .repeat(3)
        + &"y".repeat(150);
    // Over one tokenizer window (64 KiB), so windows are cut and joined.
    let long = parsed("guides/search/hnsw-vector-indexes.pdf")
        .text
        .repeat(40);
    assert!(long.len() > 70_000);
    for text in [tricky, parsed("guides/rust-borrow-checker.html").text, long] {
        let counter = TokenCounter::new(&tokenizer, &text);
        assert!(
            counter.counts_words(),
            "MiniLM's WordPiece words are independent"
        );
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|&at| text.is_char_boundary(at))
            .collect();
        // Deterministic pseudo-random ranges, short and long, most of them
        // starting and ending inside words.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        for _ in 0..3000 {
            let start = next(boundaries.len());
            let longest = if next(4) == 0 { 4000 } else { 200 };
            let length = next(longest);
            let end = boundaries[(start + length).min(boundaries.len() - 1)];
            let range = boundaries[start]..end;
            assert_eq!(
                counter.count(range.clone()),
                tokenizer.encode(&text[range.clone()], false).unwrap().len(),
                "range {range:?}: {:?}",
                &text[range.clone()]
            );
        }
    }
}

#[test]
fn chunks_fit_the_token_budget_and_point_back_into_the_text() {
    let document = parsed("guides/search/hnsw-vector-indexes.pdf");
    let chunks = chunk(&document, 1000).unwrap();
    assert!(chunks.len() > 5);
    for (ordinal, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.ordinal as usize, ordinal);
        assert!(
            tokens(&chunk.text) <= SETTINGS.max_tokens,
            "chunk {ordinal} too long"
        );
        assert_eq!(&document.text[chunk.byte_range.clone()], chunk.text);
        assert!(chunk.page.is_some());
        assert!(
            chunk.embed_text.ends_with(&chunk.text),
            "the stored text stays the original"
        );
    }
    let overlapping = chunks
        .windows(2)
        .filter(|pair| pair[1].byte_range.start < pair[0].byte_range.end)
        .count();
    assert!(overlapping > 0, "consecutive chunks share overlap tokens");
    let pages: Vec<u32> = chunks.iter().filter_map(|chunk| chunk.page).collect();
    assert!(pages.windows(2).all(|pair| pair[0] <= pair[1]));
    assert!(pages.last() > pages.first(), "chunks span the pages");
}

#[test]
fn html_chunks_carry_their_heading_path_as_embedding_context() {
    let document = parsed("guides/rust-borrow-checker.html");
    let chunks = chunk(&document, 1000).unwrap();
    let titled = chunks
        .iter()
        .filter(|chunk| chunk.embed_text.len() > chunk.text.len())
        .count();
    assert!(titled > 0, "embedding text gains title/heading context");
    assert!(
        chunks
            .iter()
            .skip(1)
            .all(|chunk| !chunk.heading_path.is_empty())
    );
}

#[test]
fn too_many_chunks_is_a_permanent_failure() {
    let error = chunk(&parsed("sourdough-bread.pdf"), 2).unwrap_err();
    assert!(
        matches!(
            error,
            docpipe_chunk::ChunkError::TooManyChunks { limit: 2, .. }
        ),
        "{error}"
    );
}

#[test]
fn a_word_the_tokenizer_counts_as_one_token_is_still_split_by_bytes() {
    // WordPiece maps any word over 100 characters to a single [UNK]: a run
    // of letters would otherwise be one 1-token chunk however long it is
    // (past 64 kB, too long for Milvus' text field).
    let mut document = ParsedDocument::default();
    document.push_block(&"x".repeat(20_000), None, &[], false);
    let chunks = chunk(&document, 1000).unwrap();
    assert!(chunks.len() > 1);
    for chunk in &chunks {
        let limit = SETTINGS.max_tokens * docpipe_chunk::MAX_BYTES_PER_TOKEN;
        assert!(chunk.text.len() <= limit, "{} bytes", chunk.text.len());
    }
}

/// PDFs keep typographic ligatures ("ﬁ", U+FB01): what is embedded and
/// BM25-indexed has plain letters, the stored text what the reader saw.
#[test]
fn ligatures_are_embedded_and_indexed_as_plain_letters() {
    let mut document = ParsedDocument::default();
    document.push_block(
        "The con\u{FB01}guration \u{FB01}le de\u{FB01}nes the work\u{FB02}ow.",
        Some(1),
        &[],
        false,
    );
    let chunks = chunk(&document, 10).unwrap();
    assert!(chunks[0].text.contains("con\u{FB01}guration \u{FB01}le"));
    assert!(
        chunks[0]
            .embed_text
            .contains("configuration file defines the workflow"),
        "{}",
        chunks[0].embed_text
    );
}

/// A hostile document's title and headings may be megabytes long and
/// thousands deep; a chunk keeps a bounded path as context, so that no
/// store refuses the chunk for the size of a field.
#[test]
fn heading_paths_and_titles_are_bounded_context() {
    use docpipe_chunk::{MAX_HEADING_CHARS, MAX_HEADINGS};
    let mut document = ParsedDocument {
        title: Some("T".repeat(100_000)),
        ..ParsedDocument::default()
    };
    let path: Vec<String> = (0..1000)
        .map(|level| format!("{level}{}", "h".repeat(10_000)))
        .collect();
    document.push_block("Give the bees fondant in winter.", None, &path, false);
    let chunks = chunk(&document, 10).unwrap();
    let heading_path = &chunks[0].heading_path;
    assert_eq!(heading_path.len(), MAX_HEADINGS);
    assert!(
        heading_path[0].starts_with("0hhh"),
        "the outermost headings are kept"
    );
    for heading in heading_path {
        assert_eq!(
            heading.chars().count(),
            MAX_HEADING_CHARS + 1,
            "cut, with an ellipsis"
        );
        assert!(heading.ends_with('…'));
    }
    let context_bytes = chunks[0].embed_text.len() - chunks[0].text.len();
    assert!(
        context_bytes < (MAX_HEADINGS + 1) * (MAX_HEADING_CHARS + 8),
        "{context_bytes}"
    );
}
