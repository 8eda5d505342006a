//! The pdf-extract engine: plain text per page, in content-stream order.
//! It gives no font sizes, so paragraphs start at blank lines and headings
//! are guessed from their shape.

use super::{Line, PageLines, ReadPdf, check_page_count};
use crate::{ParseError, collapse_whitespace};
use pdf_extract::{Document, Object, PlainTextOutput, output_doc_page};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub(super) fn read(bytes: &[u8], max_pages: u32) -> Result<ReadPdf, ParseError> {
    let mut pdf =
        Document::load_mem(bytes).map_err(|error| ParseError::CorruptPdf(error.to_string()))?;
    if pdf.is_encrypted() && pdf.decrypt("").is_err() {
        return Err(ParseError::EncryptedPdf);
    }
    let pages = pdf.get_pages();
    check_page_count(pages.len(), max_pages)?;
    let mut read = ReadPdf {
        info_title: info_title(&pdf),
        page_count: pages.len() as u32,
        ..ReadPdf::default()
    };
    for &number in pages.keys() {
        let mut text = String::new();
        // pdf-extract panics on some fonts and strings: one page is lost, not the document.
        let page = catch_unwind(AssertUnwindSafe(|| {
            output_doc_page(&pdf, &mut PlainTextOutput::new(&mut text), number)
        }));
        match page {
            Ok(Ok(())) => read.pages.push(PageLines {
                number,
                lines: lines(&text),
            }),
            Ok(Err(error)) => read.failed.push((number, error.to_string())),
            Err(panic) => read.failed.push((number, crate::panic_message(&panic))),
        }
    }
    Ok(read)
}

/// Lines at the top or bottom of a page that may be running headers or
/// footers (pdf-extract gives no positions).
const EDGE_LINES: usize = 2;

/// A page's lines; a blank line starts a paragraph.
fn lines(page: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut after_blank = true;
    for text in page.lines().map(str::trim) {
        if text.is_empty() {
            after_blank = true;
            continue;
        }
        lines.push(Line {
            text: text.to_owned(),
            size: None,
            bold: false,
            starts_paragraph: after_blank,
            at_edge: false,
        });
        after_blank = false;
    }
    let count = lines.len();
    for (index, line) in lines.iter_mut().enumerate() {
        line.at_edge = index < EDGE_LINES || index + EDGE_LINES >= count;
    }
    lines
}

/// The `/Title` of the document information dictionary, if present and non-empty.
fn info_title(pdf: &Document) -> Option<String> {
    let info = match pdf.trailer.get(b"Info").ok()? {
        Object::Reference(id) => pdf.get_dictionary(*id).ok()?,
        Object::Dictionary(dictionary) => dictionary,
        _ => return None,
    };
    let title = pdf_extract::decode_text_string(info.get(b"Title").ok()?).ok()?;
    let title = collapse_whitespace(&title);
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_start_paragraphs() {
        let lines = lines("Tides\n\nThe moon pulls\nthe ocean.\n\n\nNext");
        let starts: Vec<(&str, bool)> = lines
            .iter()
            .map(|line| (line.text.as_str(), line.starts_paragraph))
            .collect();
        assert_eq!(
            starts,
            [
                ("Tides", true),
                ("The moon pulls", true),
                ("the ocean.", false),
                ("Next", true)
            ]
        );
    }

    #[test]
    fn corrupt_bytes_are_a_corrupt_pdf() {
        let error = read(b"%PDF-1.4\n1 0 obj <<", 10).unwrap_err();
        assert!(matches!(error, ParseError::CorruptPdf(_)), "{error}");
    }
}
