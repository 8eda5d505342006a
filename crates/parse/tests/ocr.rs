//! Scanned PDFs through OCR, with the real components: PDFium renders a
//! page that has no text layer, Tesseract reads it. `fixtures/pdf/scanned.pdf`
//! is an image of text and nothing else (the tests also save it as a TIFF,
//! as a scanner would); `scanned.json` says what OCR must find.

use docpipe_core::config::PdfEngineKind;
use docpipe_core::{Classify as _, ParsedDocument};
use docpipe_parse::{DocumentParser, Ocr, ParseError, ParseLimits, PdfEngine};
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
    DocumentParser::new(
        engine,
        ParseLimits {
            max_pdf_pages: 100,
            ..ParseLimits::default()
        },
    )
}

fn ocr(page_timeout: Duration) -> Ocr {
    let ocr = Ocr::new("eng", page_timeout);
    ocr.check().expect("Tesseract with eng: run `make setup`");
    ocr
}

/// Asserts that OCR found every word `scanned.json` lists (case aside).
fn assert_has_the_scans_words(document: &ParsedDocument) {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("scanned.json")).unwrap()).unwrap();
    let text = document.text.to_lowercase();
    for phrase in expected["must_contain"].as_array().unwrap() {
        let phrase = phrase.as_str().unwrap().to_lowercase();
        assert!(text.contains(&phrase), "OCR missed {phrase:?} in {text:?}");
    }
}

#[test]
fn a_scanned_page_is_read_by_ocr_and_its_confidence_recorded() {
    let document = parser()
        .with_ocr(ocr(Duration::from_secs(60)))
        .parse(&scanned(), None)
        .unwrap();
    assert_has_the_scans_words(&document);
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

/// The scan as an uncompressed 8-bit grayscale TIFF, rendered by PDFium at
/// 200 dpi: what a scanner or a phone app uploads.
fn scanned_tiff() -> Vec<u8> {
    use pdfium_render::prelude::*;
    let PdfEngine::Pdfium(pdfium) = PdfEngine::load(PdfEngineKind::Pdfium).unwrap() else {
        unreachable!("asked for PDFium")
    };
    let bytes = scanned();
    let document = pdfium.load_pdf_from_byte_slice(&bytes, None).unwrap();
    let page = document.pages().get(0).unwrap();
    let bitmap = page
        .render_with_config(&PdfRenderConfig::new().scale_page_by_factor(200.0 / 72.0))
        .unwrap();
    let (width, height) = (bitmap.width() as u32, bitmap.height() as u32);
    let gray: Vec<u8> = bitmap
        .as_rgba_bytes()
        .chunks_exact(4)
        .take((width * height) as usize)
        .map(|pixel| pixel[1])
        .collect();
    tiff(width, height, &gray)
}

/// A baseline TIFF: header, the pixels as one strip, then one IFD.
fn tiff(width: u32, height: u32, gray: &[u8]) -> Vec<u8> {
    let mut file = b"II*\0".to_vec();
    let ifd_offset = 8 + gray.len() as u32;
    file.extend(ifd_offset.to_le_bytes());
    file.extend(gray);
    // (tag, type 3 = SHORT or 4 = LONG, value), in ascending tag order.
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8), // bits per sample
        (259, 3, 1), // no compression
        (262, 3, 1), // black is zero
        (273, 4, 8), // the strip's offset
        (278, 4, height),
        (279, 4, gray.len() as u32),
    ];
    file.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        file.extend(tag.to_le_bytes());
        file.extend(kind.to_le_bytes());
        file.extend(1u32.to_le_bytes());
        file.extend(value.to_le_bytes());
    }
    file.extend(0u32.to_le_bytes());
    file
}

#[test]
fn an_image_of_text_is_read_by_ocr() {
    let document = parser()
        .with_ocr(ocr(Duration::from_secs(60)))
        .parse(&scanned_tiff(), None)
        .unwrap();
    assert_has_the_scans_words(&document);
    assert_eq!(document.ocr_pages.len(), 1);
    assert_eq!(document.page_count, None);
}

#[test]
fn without_ocr_an_image_is_refused_with_how_to_read_it() {
    let error = parser().parse(&scanned_tiff(), None).unwrap_err();
    assert_eq!(error.code(), "unsupported_content");
    assert!(error.to_string().contains("parse.ocr = true"), "{error}");
}

#[test]
fn a_phone_photo_of_a_notice_is_read_by_ocr() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ocr");
    let photo = std::fs::read(fixtures.join("notice-photo.jpg")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("notice-photo.json")).unwrap())
            .unwrap();
    let document = parser()
        .with_ocr(ocr(Duration::from_secs(60)))
        .parse(&photo, None)
        .unwrap();
    for word in expected["must_contain"].as_array().unwrap() {
        let word = word.as_str().unwrap();
        assert!(document.text.contains(word), "{word} in {}", document.text);
    }
    assert_eq!(
        document.ocr_confidence(None),
        Some(document.ocr_pages[0].confidence)
    );
}
