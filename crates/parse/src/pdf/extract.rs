//! PDF: text per page with pdf-extract, headings recovered from layout.
//!
//! pdf-extract yields plain text without font sizes, so headings are
//! recognised by shape: a short line standing alone between blank lines,
//! without closing punctuation.

use crate::{ParseError, collapse_whitespace};
use docpipe_core::ParsedDocument;
use pdf_extract::{Document, Object, PlainTextOutput, output_doc_page};
use std::collections::{HashMap, HashSet};

pub(crate) fn parse(bytes: &[u8], max_pages: u32) -> Result<ParsedDocument, ParseError> {
    let mut pdf =
        Document::load_mem(bytes).map_err(|error| ParseError::CorruptPdf(error.to_string()))?;
    if pdf.is_encrypted() && pdf.decrypt("").is_err() {
        return Err(ParseError::EncryptedPdf);
    }
    let pages = pdf.get_pages();
    if pages.len() > max_pages as usize {
        return Err(ParseError::TooManyPages {
            pages: pages.len(),
            limit: max_pages,
        });
    }
    if pages.is_empty() {
        return Err(ParseError::CorruptPdf("the PDF has no pages".into()));
    }
    let mut document = ParsedDocument {
        title: info_title(&pdf),
        page_count: Some(pages.len() as u32),
        ..ParsedDocument::default()
    };
    let mut failed_pages = Vec::new();
    let mut page_texts = Vec::new();
    for &page in pages.keys() {
        let mut text = String::new();
        match output_doc_page(&pdf, &mut PlainTextOutput::new(&mut text), page) {
            Ok(()) => page_texts.push((page, text)),
            Err(error) => failed_pages.push(format!("page {page}: {error}")),
        }
    }
    if failed_pages.len() == pages.len() {
        return Err(ParseError::CorruptPdf(failed_pages.join("; ")));
    }
    let furniture = running_furniture(&page_texts);
    let mut headings: Vec<String> = Vec::new();
    for (page, text) in page_texts {
        let content: Vec<&str> = text
            .lines()
            .filter(|line| !furniture.contains(&digits_masked(line.trim())))
            .collect();
        for paragraph in paragraphs(&content.join("\n")) {
            if is_heading(&paragraph) {
                if document.title.is_none() {
                    document.title = Some(paragraph.clone());
                } else if document.title.as_deref() != Some(paragraph.as_str()) {
                    headings = vec![paragraph.clone()];
                }
                document.push_block(&paragraph, Some(page), &headings, true);
            } else {
                document.push_block(&paragraph, Some(page), &headings, false);
            }
        }
    }
    Ok(document)
}

/// Lines at the top or bottom of a page considered as running headers or
/// footers.
const EDGE_LINES: usize = 2;
/// Longest running header or footer, in bytes.
const FURNITURE_MAX_LEN: usize = 80;

/// Running headers and footers ("Page 3 of 12", a repeated document title):
/// short lines at the edges of pages that, with digits masked, recur on more
/// than half of the pages. Returned trimmed and digit-masked.
fn running_furniture(pages: &[(u32, String)]) -> HashSet<String> {
    if pages.len() < 3 {
        return HashSet::new();
    }
    let mut pages_with: HashMap<String, usize> = HashMap::new();
    for (_, text) in pages {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let edge_count = EDGE_LINES.min(lines.len());
        let shapes: HashSet<String> = lines[..edge_count]
            .iter()
            .chain(&lines[lines.len() - edge_count..])
            .filter(|line| line.len() <= FURNITURE_MAX_LEN)
            .map(|line| digits_masked(line))
            .collect();
        for shape in shapes {
            *pages_with.entry(shape).or_default() += 1;
        }
    }
    pages_with
        .into_iter()
        .filter(|(_, count)| count * 2 > pages.len())
        .map(|(shape, _)| shape)
        .collect()
}

fn digits_masked(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

/// Splits a page's text at blank lines and joins each paragraph's lines,
/// mending words hyphenated across a line break.
fn paragraphs(page: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for line in page.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(collapse_whitespace(&std::mem::take(&mut current)));
            }
            continue;
        }
        if current.ends_with('-') && line.starts_with(char::is_lowercase) {
            current.pop();
        } else if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        paragraphs.push(collapse_whitespace(&current));
    }
    paragraphs
}

fn is_heading(paragraph: &str) -> bool {
    let words = paragraph.split_whitespace().count();
    (1..=12).contains(&words)
        && paragraph.len() <= 90
        && paragraph.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit())
        && !paragraph.ends_with(['.', ',', ';', ':', '!', '?'])
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
    fn paragraphs_join_lines_and_mend_hyphenation() {
        let page =
            "Tides\n\nThe moon pulls the ocean, rais-\ning a bulge.\nIt moves.\n\n\nNext one";
        assert_eq!(
            paragraphs(page),
            [
                "Tides",
                "The moon pulls the ocean, raising a bulge. It moves.",
                "Next one"
            ]
        );
    }

    #[test]
    fn headings_are_short_unpunctuated_lines() {
        assert!(is_heading("2. Dead-letter exchanges"));
        assert!(is_heading("Publisher Confirms"));
        assert!(!is_heading("The queue is durable."));
        assert!(!is_heading("lowercase start"));
    }

    #[test]
    fn running_headers_and_footers_are_recognised_on_most_pages() {
        let page = |number: u32, body: &str| {
            (
                number,
                format!("Field Guide\n\n{body}\nstill {body}\nPage {number} of 4\n"),
            )
        };
        let pages = [
            page(1, "one"),
            page(2, "two"),
            page(3, "three"),
            page(4, "four"),
        ];
        let furniture = running_furniture(&pages);
        assert!(furniture.contains("Page # of #"));
        assert!(furniture.contains("Field Guide"));
        assert!(!furniture.contains("two"));
        assert!(
            running_furniture(&pages[..2]).is_empty(),
            "too few pages to tell"
        );
    }

    #[test]
    fn corrupt_bytes_are_a_corrupt_pdf() {
        let error = parse(b"%PDF-1.4\n1 0 obj <<", 10).unwrap_err();
        assert!(matches!(error, ParseError::CorruptPdf(_)), "{error}");
    }
}
