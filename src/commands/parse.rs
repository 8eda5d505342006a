//! `docpipe parse`: what the worker would read from a file.

use super::print_json;
use crate::cli::ParseArgs;
use anyhow::Context as _;
use docpipe_core::document::OcrPage;
use docpipe_core::{Classify as _, ParsedDocument, PipelineConfig};
use docpipe_parse::DocumentParser;
use std::process::ExitCode;

/// A parsed document as `--json` prints it.
#[derive(serde::Serialize)]
struct Parsed<'a> {
    title: Option<&'a str>,
    page_count: Option<u32>,
    skipped_pages: &'a [u32],
    furniture: &'a [String],
    ocr_pages: &'a [OcrPage],
    blocks: Vec<Block<'a>>,
}

#[derive(serde::Serialize)]
struct Block<'a> {
    text: &'a str,
    page: Option<u32>,
    heading: bool,
    heading_path: &'a [String],
}

/// A document that cannot be parsed, as `--json` prints it.
#[derive(serde::Serialize)]
struct Failure {
    error: FailureDetail,
}

#[derive(serde::Serialize)]
struct FailureDetail {
    code: &'static str,
    message: String,
}

/// Parses the file; a document the worker would dead-letter exits with 1.
pub fn run(config: &PipelineConfig, args: ParseArgs) -> anyhow::Result<ExitCode> {
    let parser = DocumentParser::for_pipeline(config)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let document = match parser.parse(&bytes, None) {
        Ok(document) => document,
        Err(error) if args.json => {
            print_json(&Failure {
                error: FailureDetail {
                    code: error.code(),
                    message: error.to_string(),
                },
            });
            return Ok(ExitCode::from(1));
        }
        Err(error) => {
            eprintln!("{}: {} ({})", args.file.display(), error, error.code());
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        print_json(&as_json(&document));
    } else {
        print_text(&document);
    }
    Ok(ExitCode::SUCCESS)
}

fn as_json(document: &ParsedDocument) -> Parsed<'_> {
    Parsed {
        title: document.title.as_deref(),
        page_count: document.page_count,
        skipped_pages: &document.skipped_pages,
        furniture: &document.furniture,
        ocr_pages: &document.ocr_pages,
        blocks: document
            .blocks
            .iter()
            .map(|block| Block {
                text: &document.text[block.range.clone()],
                page: block.page,
                heading: block.is_heading,
                heading_path: &block.heading_path,
            })
            .collect(),
    }
}

/// The title, then each block under its page and heading path when they change.
fn print_text(document: &ParsedDocument) {
    println!("title: {}", document.title.as_deref().unwrap_or("(none)"));
    if let Some(pages) = document.page_count {
        println!("pages: {pages}");
    }
    if !document.skipped_pages.is_empty() {
        println!("skipped pages (unreadable): {:?}", document.skipped_pages);
    }
    for page in &document.ocr_pages {
        println!(
            "read by OCR: page {} (mean confidence {:.0})",
            page.page, page.confidence
        );
    }
    for line in &document.furniture {
        println!("left out (running header or footer): {line}");
    }
    let mut place = (None, &[][..]);
    for block in &document.blocks {
        if (block.page, &block.heading_path[..]) != place {
            place = (block.page, &block.heading_path[..]);
            let page = block
                .page
                .map(|page| format!("p. {page}"))
                .unwrap_or_default();
            println!("\n── {page} {}", block.heading_path.join(" › "));
        }
        let marker = if block.is_heading { "# " } else { "" };
        println!("{marker}{}", &document.text[block.range.clone()]);
    }
}
