//! One document per format in `fixtures/formats/` (Word, PowerPoint,
//! Excel, their OpenDocument counterparts, EPUB, Markdown, plain text in
//! a legacy charset, RTF, CSV), each read with its structure: title, headings
//! in order, heading paths, tables under their header, list items,
//! footnotes after their paragraph, speaker notes, sheets and slides as
//! pages, and none of the markup or hidden parts. What each must yield is
//! in `fixtures/formats/expected.json`, written by the generator.

use docpipe_core::{DocumentFormat, ParsedDocument};
use docpipe_parse::{DocumentParser, ParseLimits, PdfEngine, sniff_format};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/formats")
}

fn expectations() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parser() -> DocumentParser {
    // Formats other than PDF never touch the PDF engine.
    DocumentParser::new(PdfEngine::PdfExtract, ParseLimits::default())
}

fn declared(format: DocumentFormat) -> docpipe_core::message::DeclaredType {
    docpipe_core::message::DeclaredType {
        format,
        charset: None,
    }
}

/// The format named in `expected.json` ("docx", "markdown", ...).
fn format_named(name: &str) -> DocumentFormat {
    serde_json::from_value(Value::String(name.to_owned()))
        .unwrap_or_else(|_| panic!("expected.json names an unknown format {name:?}"))
}

fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Everything `expected` asks of `document`, as a list of what is wrong.
fn check(file: &str, expected: &Value, document: &ParsedDocument) -> Vec<String> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(format!("{file}: {what}"));
    let text = collapsed(&document.text);
    if let Some(title) = expected["title"].as_str()
        && document.title.as_deref() != Some(title)
    {
        fail(format!("title {:?}, not {title:?}", document.title));
    }
    for phrase in strings(&expected["must_contain"]) {
        if !text.contains(&collapsed(phrase)) {
            fail(format!("missing {phrase:?}"));
        }
    }
    for phrase in strings(&expected["must_not_contain"]) {
        if document.text.contains(phrase) {
            fail(format!("has {phrase:?}"));
        }
    }
    let order: Vec<Option<usize>> = strings(&expected["order"])
        .into_iter()
        .map(|phrase| text.find(&collapsed(phrase)))
        .collect();
    if !order.is_sorted() || order.contains(&None) {
        fail(format!("out of order: {order:?}"));
    }
    let headings: Vec<String> = document
        .blocks
        .iter()
        .filter(|block| block.is_heading)
        .map(|block| collapsed(&document.text[block.range.clone()]))
        .collect();
    let mut remaining = headings.iter();
    for heading in strings(&expected["headings"]) {
        if !remaining.any(|found| found == heading) {
            fail(format!(
                "heading {heading:?} missing or out of order in {headings:?}"
            ));
        }
    }
    for path in expected["heading_paths"].as_array().into_iter().flatten() {
        let path = strings(path);
        let found = document.blocks.iter().any(|block| {
            !block.is_heading
                && block
                    .heading_path
                    .iter()
                    .map(String::as_str)
                    .eq(path.iter().copied())
        });
        if !found {
            fail(format!("no text under the heading path {path:?}"));
        }
    }
    for header in expected["tables"].as_array().into_iter().flatten() {
        let row = format!("| {} |", strings(header).join(" | "));
        let rule = format!("{row}\n|{}", " --- |".repeat(strings(header).len()));
        if !document.text.contains(&rule) {
            fail(format!("no table headed {row}"));
        }
    }
    if let Some(pages) = expected["pages"].as_u64()
        && document.page_count != Some(pages as u32)
    {
        fail(format!("{:?} pages, not {pages}", document.page_count));
    }
    failures
}

#[test]
fn every_format_is_read_with_its_structure() {
    let mut failures = Vec::new();
    let expectations = expectations();
    assert!(expectations.len() >= 10, "one fixture per format");
    for expected in &expectations {
        let file = expected["file"].as_str().unwrap();
        let format = format_named(expected["format"].as_str().unwrap());
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        // Declared as an upload service would (Markdown cannot be told
        // from plain text by its bytes).
        match parser().parse(&bytes, Some(&declared(format))) {
            Ok(document) => failures.extend(check(file, expected, &document)),
            Err(error) => failures.push(format!("{file}: {error}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_format_but_markdown_and_csv_is_recognised_by_its_bytes() {
    for expected in expectations() {
        let file = expected["file"].as_str().unwrap();
        let format = format_named(expected["format"].as_str().unwrap());
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let sniffed = sniff_format(&bytes).unwrap_or_else(|error| panic!("{file}: {error}"));
        let expected = match format {
            DocumentFormat::Markdown | DocumentFormat::Csv => DocumentFormat::Text,
            other => other,
        };
        assert_eq!(sniffed, expected, "{file}");
    }
}

#[test]
fn a_declared_type_that_contradicts_the_bytes_is_refused() {
    let bytes = std::fs::read(fixtures().join("energy-budget.xlsx")).unwrap();
    let error = parser()
        .parse(&bytes, Some(&declared(DocumentFormat::Docx)))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "content_type declares a Word document (DOCX) but the content looks like an Excel workbook (XLSX)"
    );
}
