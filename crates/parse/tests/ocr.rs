//! Scanned PDFs through OCR, with the real components: PDFium renders a
//! page that has no text layer, Tesseract reads it. `fixtures/pdf/scanned.pdf`
//! is an image of text and nothing else; `scanned.json` says what OCR must find.

use docpipe_core::config::PdfEngineKind;
use docpipe_parse::{DocumentParser, Ocr, ParseError, PdfEngine};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pdf")
        .join(name)
}

fn scanned() -> Vec<u8> {
    std::fs::read(fixture("scanned.pdf")).unwrap()
}

fn parser() -> DocumentParser {
    let engine = PdfEngine::load(PdfEngineKind::Pdfium).expect("PDFium: run `make setup`");
    DocumentParser::new(engine, 100, 512)
}

fn ocr(page_timeout: Duration) -> Ocr {
    let ocr = Ocr::new("eng", page_timeout);
    ocr.check().expect("Tesseract with eng: run `make setup`");
    ocr
}

#[test]
fn a_scanned_page_is_read_by_ocr_and_its_confidence_recorded() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("scanned.json")).unwrap()).unwrap();
    let document = parser()
        .with_ocr(ocr(Duration::from_secs(60)))
        .parse(&scanned(), None)
        .unwrap();
    let text = document.text.to_lowercase();
    for phrase in expected["must_contain"].as_array().unwrap() {
        let phrase = phrase.as_str().unwrap().to_lowercase();
        assert!(text.contains(&phrase), "OCR missed {phrase:?} in {text:?}");
    }
    assert_eq!(document.ocr_pages.len(), 1);
    assert_eq!(document.ocr_pages[0].page, 1);
    assert!(
        document.ocr_pages[0].confidence > 60.0,
        "a clean scan reads with high confidence: {:?}",
        document.ocr_pages
    );
    assert!(document.blocks.iter().all(|block| block.page == Some(1)));
}

#[test]
fn without_ocr_a_scanned_pdf_has_no_text_and_says_how_to_read_it() {
    let error = parser().parse(&scanned(), None).unwrap_err();
    assert!(matches!(error, ParseError::NoText(_)), "{error}");
    assert!(error.to_string().contains("parse.ocr = true"), "{error}");
}

#[test]
fn a_page_over_its_time_limit_is_given_up_with_the_reason() {
    let error = parser()
        .with_ocr(ocr(Duration::from_millis(1)))
        .parse(&scanned(), None)
        .unwrap_err();
    assert!(error.to_string().contains("took longer than"), "{error}");
}

#[test]
fn pages_with_text_are_not_sent_to_ocr() {
    let bytes = std::fs::read(fixture("two-columns.pdf")).unwrap();
    let document = parser()
        .with_ocr(ocr(Duration::from_secs(60)))
        .parse(&bytes, None)
        .unwrap();
    assert!(document.ocr_pages.is_empty());
}
