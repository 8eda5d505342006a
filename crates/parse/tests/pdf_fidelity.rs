//! PDFium on the small PDFs of `fixtures/pdf/`, one per way real PDFs
//! defeat text extractors (ligatures, the `'` and `"` operators, a broken
//! page, CID fonts without a Unicode map, interleaved columns, rotated
//! text, glyphs placed one by one, a file name as metadata title). What each
//! must yield is in `fixtures/pdf/expected.json`, written by the generator.

use docpipe_core::ParsedDocument;
use docpipe_core::config::PdfEngineKind;
use docpipe_parse::{DocumentParser, ParseLimits, PdfEngine};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use unicode_normalization::UnicodeNormalization as _;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pdf")
}

fn expectations() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parse(file: &str) -> ParsedDocument {
    let engine = PdfEngine::load(PdfEngineKind::Pdfium).expect("PDFium: run `make setup`");
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    DocumentParser::new(
        engine,
        ParseLimits {
            max_pdf_pages: 100,
            ..ParseLimits::default()
        },
    )
    .parse(&bytes, None)
    .unwrap_or_else(|error| panic!("{file}: {error}"))
}

/// What search sees of the text: compatibility form (as the chunker
/// makes it), whitespace collapsed.
fn searchable(text: &str) -> String {
    let normal: String = text.nfkc().collect();
    normal.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn each_failure_class_is_read_as_a_reader_sees_it() {
    let mut failures = Vec::new();
    for expected in expectations() {
        let file = expected["file"].as_str().unwrap();
        let document = parse(file);
        let text = searchable(&document.text);
        for phrase in strings(&expected["must_contain"]) {
            if !text.contains(phrase) {
                failures.push(format!("{file}: missing {phrase:?}"));
            }
        }
        for phrase in strings(&expected["must_not_contain"]) {
            if text.contains(phrase) {
                failures.push(format!("{file}: has {phrase:?}"));
            }
        }
        let order: Vec<Option<usize>> = strings(&expected["order"])
            .into_iter()
            .map(|phrase| text.find(phrase))
            .collect();
        if !order.is_sorted() || order.contains(&None) {
            failures.push(format!("{file}: out of order {order:?}"));
        }
        if let Some(pages) = expected["pages"].as_array() {
            let want: BTreeSet<u32> = pages
                .iter()
                .map(|page| page.as_u64().unwrap() as u32)
                .collect();
            let found: BTreeSet<u32> = document
                .blocks
                .iter()
                .filter_map(|block| block.page)
                .collect();
            if want != found {
                failures.push(format!(
                    "{file}: text on pages {found:?}, expected {want:?}"
                ));
            }
        }
        if let Some(title) = expected["title"].as_str()
            && document.title.as_deref() != Some(title)
        {
            failures.push(format!(
                "{file}: title {:?}, expected {title:?}",
                document.title
            ));
        }
        if failures.iter().any(|failure| failure.starts_with(file)) {
            failures.push(format!("{file} was read as:\n{}", document.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_broken_page_is_skipped_and_reported() {
    let document = parse("failing-page.pdf");
    assert_eq!(document.page_count, Some(5));
    assert_eq!(
        document.skipped_pages,
        Vec::<u32>::new(),
        "PDFium reads a broken stream as an empty page"
    );
}
