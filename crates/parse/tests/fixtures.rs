//! The parser on the committed fixture documents.

use docpipe_core::config::PdfEngineKind;
use docpipe_parse::{DocumentParser, ParseError, ParseLimits, PdfEngine};
use std::path::Path;

fn parser() -> DocumentParser {
    DocumentParser::new(
        PdfEngine::load(PdfEngineKind::Pdfium).expect("PDFium: run `make setup`"),
        ParseLimits {
            max_pdf_pages: 100,
            ..ParseLimits::default()
        },
    )
}

fn parse(relative: &str) -> Result<docpipe_core::ParsedDocument, ParseError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative);
    parser().parse(&std::fs::read(path).unwrap(), None)
}

#[test]
fn pdfs_keep_title_headings_and_pages() {
    let document = parse("corpus/guides/rabbitmq-operations.pdf").unwrap();
    assert_eq!(document.page_count, Some(4));
    assert!(
        document
            .title
            .as_deref()
            .is_some_and(|title| title.contains("RabbitMQ")),
        "{:?}",
        document.title
    );
    let pages: Vec<u32> = document
        .blocks
        .iter()
        .filter_map(|block| block.page)
        .collect();
    assert!(
        pages.windows(2).all(|pair| pair[0] <= pair[1]),
        "pages in order"
    );
    assert_eq!((pages.first(), pages.last()), (Some(&1), Some(&4)));
    let headings: Vec<&str> = document
        .blocks
        .iter()
        .filter(|block| block.is_heading)
        .map(|block| &document.text[block.range.clone()])
        .collect();
    assert!(
        headings.len() >= 4,
        "one heading per page at least: {headings:?}"
    );
    assert!(
        !document.text.contains(" of 4"),
        "running footers (\"Page N of 4\") are dropped"
    );
    let dead_lettering = document
        .text
        .find("dead-lettered")
        .expect("body text is extracted");
    assert!(
        !document
            .block_at(dead_lettering)
            .unwrap()
            .heading_path
            .is_empty()
    );
}

#[test]
fn html_drops_furniture_and_decodes_legacy_charsets() {
    for page in [
        "corpus/man-ls.1.html",
        "corpus/articles/bm25-ranking-explained.html",
        "corpus/beekeeping-seasons.html",
        "corpus/guides/rust-borrow-checker.html",
    ] {
        let document = parse(page).unwrap();
        assert!(document.title.is_some(), "{page} has a title");
        for noise in [
            "zzscriptnoise",
            "zzstylenoise",
            "zzcommentnoise",
            "zznavnoise",
            "zzfooternoise",
        ] {
            assert!(!document.text.contains(noise), "{noise} leaked from {page}");
        }
    }
    let bees = parse("corpus/beekeeping-seasons.html").unwrap();
    assert!(bees.text.contains("Warré"), "windows-1252 é decoded");
    assert!(bees.text.contains('–'), "windows-1252 en dash decoded");
}

#[test]
fn broken_fixtures_fail_with_specific_errors() {
    assert!(matches!(
        parse("bad/truncated.pdf"),
        Err(ParseError::CorruptPdf(_))
    ));
    assert!(matches!(
        parse("bad/not-a-pdf.pdf"),
        Err(ParseError::UnsupportedContent(_))
    ));
    assert!(matches!(
        parse("bad/empty.html"),
        Err(ParseError::UnsupportedContent(_))
    ));
    assert!(matches!(
        parse("bad/whitespace-only.html"),
        Err(ParseError::NoText(_))
    ));
    assert!(matches!(
        parse("bad/no-text.pdf"),
        Err(ParseError::NoText(_))
    ));
}

fn parse_html(
    markup: &str,
    declared: Option<&docpipe_core::message::DeclaredType>,
) -> Result<String, ParseError> {
    parser()
        .parse(markup.as_bytes(), declared)
        .map(|document| document.text)
}

/// Seen on real pages: table cells and the links in them ran together
/// ("1minor problems", "HomeUp").
#[test]
fn table_cells_are_words_apart() {
    let text = parse_html(
        "<html><body><table><tr><td>0</td><td>if OK</td></tr>\
         <tr><td>1</td><td>minor problems</td></tr></table>\
         <table><tr><td><a href=/>Home</a></td><td><a href=..>Up</a></td></tr></table></body></html>",
        None,
    )
    .unwrap();
    assert!(text.contains("1 minor problems"), "{text}");
    assert!(text.contains("Home Up"), "{text}");
    assert!(
        !text.contains("1minor") && !text.contains("HomeUp"),
        "{text}"
    );
}

/// Seen on real pages served as `text/html`: a stray header line before
/// the markup, and a bare `<table>` fragment. The declaration wins when the
/// bytes are markup; undeclared, HTML elements near the start say so.
#[test]
fn declared_html_is_honoured_when_the_bytes_are_markup() {
    let html = docpipe_core::message::DeclaredType {
        format: docpipe_core::DocumentFormat::Html,
        charset: None,
    };
    for page in [
        "Content-type: text/html\n\n<html><body><p>A cgi page</p></body></html>",
        "<table><tr><td>a bare</td><td>fragment</td></tr></table>",
    ] {
        let text = parse_html(page, Some(&html)).unwrap();
        assert!(!text.is_empty() && !text.contains('<'), "{page}: {text}");
        let undeclared = parse_html(page, None).unwrap();
        assert_eq!(undeclared, text, "undeclared: {page}");
    }
}
