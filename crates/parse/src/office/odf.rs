//! OpenDocument text, spreadsheets and presentations: `content.xml` read
//! like their Office Open XML counterparts, the title from `meta.xml`.
//! Tracked deletions, comments and note citations are left out.

use super::{CellBudget, Flow, ParagraphKind, SheetRows, element_text, push_sheet};
use crate::ParseError;
use crate::archive::Archive;
use crate::outline::DocumentBuilder;
use crate::sniff::contains;
use crate::xml::{XmlEvent, XmlReader, attribute, end_name, local_name};
use docpipe_core::{DocumentFormat, ParsedDocument};

/// Elements whose content is not the document's text.
const SKIPPED: [&[u8]; 6] = [
    b"tracked-changes",
    b"annotation",
    b"note-citation",
    b"title",
    b"desc",
    b"sequence-decls",
];

/// The heading speaker notes sit under, below the slide's title.
const NOTES_HEADING: &str = "Speaker notes";

pub(crate) fn parse(
    archive: &mut Archive<'_>,
    format: DocumentFormat,
    max_cells: usize,
) -> Result<ParsedDocument, ParseError> {
    if let Some(manifest) = archive.read("META-INF/manifest.xml")?
        && contains(&manifest, b"encryption-data")
    {
        return Err(ParseError::EncryptedDocument(format.name()));
    }
    let content = archive.require("content.xml")?;
    let title = element_text(archive, "meta.xml", b"title")?;
    match format {
        DocumentFormat::Ods => {
            let mut builder = DocumentBuilder::default();
            read_sheets(&content, &mut builder, max_cells)?;
            Ok(builder.finish(title))
        }
        _ => read_flow(&content, title),
    }
}

/// Text and presentations: paragraphs, headings, lists, tables and notes;
/// each `draw:page` (a slide) a page.
fn read_flow(content: &[u8], title: Option<String>) -> Result<ParsedDocument, ParseError> {
    let mut reader = XmlReader::new(content, "content.xml").skipping(&SKIPPED);
    let mut flow = Flow::default();
    let mut lists = 0u8;
    let mut pages = 0u32;
    let mut note: Option<String> = None;
    let mut in_title_frame = false;
    let mut first_slide_title: Option<String> = None;
    let mut notes_heading_due = false;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => {
                let name = local_name(&element);
                match name {
                    b"page" => {
                        pages += 1;
                        flow.start_page(pages);
                    }
                    b"frame" => {
                        in_title_frame = attribute(&element, "class").as_deref() == Some("title");
                    }
                    b"notes" => notes_heading_due = true,
                    b"note-body" => note = Some(String::new()),
                    b"h" | b"p" if note.is_none() => {
                        if std::mem::take(&mut notes_heading_due) {
                            flow.heading(2, NOTES_HEADING);
                        }
                        flow.open_paragraph();
                        let level = attribute(&element, "outline-level")
                            .and_then(|level| level.parse::<u8>().ok())
                            .map(|level| level.clamp(1, 9));
                        let is_title =
                            attribute(&element, "style-name").as_deref() == Some("Title");
                        if name == b"h" || is_title || in_title_frame {
                            flow.set_kind(ParagraphKind::Heading(level.unwrap_or(1)));
                        } else if lists > 0 {
                            flow.set_kind(ParagraphKind::ListItem {
                                depth: lists - 1,
                                number: None,
                            });
                        }
                    }
                    b"list" => lists = lists.saturating_add(1),
                    b"s" => {
                        let count = attribute(&element, "c")
                            .and_then(|count| count.parse::<usize>().ok())
                            .unwrap_or(1);
                        push_text(&mut flow, &mut note, &" ".repeat(count.min(64)));
                    }
                    b"tab" | b"line-break" => push_text(&mut flow, &mut note, " "),
                    b"table" => flow.open_table(),
                    b"table-row" => flow.open_row(),
                    b"table-cell" => flow.open_cell(),
                    _ => {}
                }
            }
            XmlEvent::Close(element) => match end_name(&element) {
                b"h" | b"p" if note.is_none() => {
                    if in_title_frame && first_slide_title.is_none() {
                        first_slide_title = flow.open_text().map(crate::collapse_whitespace);
                    }
                    flow.close_paragraph();
                }
                b"h" | b"p" => push_text(&mut flow, &mut note, " "),
                b"note-body" => {
                    if let Some(text) = note.take() {
                        flow.note(&text);
                    }
                }
                b"frame" => in_title_frame = false,
                b"list" => lists = lists.saturating_sub(1),
                b"table" => flow.close_table(),
                b"table-cell" => flow.close_cell(),
                _ => {}
            },
            XmlEvent::Text(text) => push_text(&mut flow, &mut note, &text),
        }
    }
    let title = title
        .or(first_slide_title)
        .or_else(|| flow.builder.first_heading().map(str::to_owned));
    Ok(flow.finish(title))
}

/// Text goes to the note being read, if any, else to the paragraph.
fn push_text(flow: &mut Flow, note: &mut Option<String>, text: &str) {
    match note {
        Some(note) => note.push_str(text),
        None => flow.text(text),
    }
}

/// Spreadsheets: each `table:table` a sheet; repeated rows and columns
/// (how OpenDocument writes runs of equal cells) expanded within the cell
/// budget, trailing empty ones not at all.
fn read_sheets(
    content: &[u8],
    builder: &mut DocumentBuilder,
    max_cells: usize,
) -> Result<(), ParseError> {
    let mut reader = XmlReader::new(content, "content.xml").skipping(&SKIPPED);
    let mut budget = CellBudget::new(max_cells);
    let mut sheet: Option<(String, SheetRows)> = None;
    let mut sheets = 0u32;
    let mut row: Vec<(usize, String)> = Vec::new();
    let mut row_repeat = 1usize;
    let mut column = 0usize;
    let mut cell: Option<(String, usize)> = None;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => {
                let name = local_name(&element);
                let repeated = |key: &str| {
                    attribute(&element, key)
                        .and_then(|count| count.parse::<usize>().ok())
                        .unwrap_or(1)
                        .max(1)
                };
                match name {
                    b"table" => {
                        let name = attribute(&element, "name").unwrap_or_default();
                        sheet = Some((name, Vec::new()));
                    }
                    b"table-row" => {
                        row.clear();
                        column = 0;
                        row_repeat = repeated("number-rows-repeated");
                    }
                    b"table-cell" | b"covered-table-cell" => {
                        cell = Some((String::new(), repeated("number-columns-repeated")));
                    }
                    b"p" => {
                        if let Some((text, _)) = cell.as_mut()
                            && !text.is_empty()
                        {
                            text.push(' ');
                        }
                    }
                    b"s" | b"tab" | b"line-break" => {
                        if let Some((text, _)) = cell.as_mut() {
                            text.push(' ');
                        }
                    }
                    _ => {}
                }
            }
            XmlEvent::Close(element) => match end_name(&element) {
                b"table-cell" | b"covered-table-cell" => {
                    if let Some((text, repeat)) = cell.take() {
                        if !text.trim().is_empty() {
                            budget.spend(repeat)?;
                            for offset in 0..repeat {
                                row.push((column + offset, text.clone()));
                            }
                        }
                        column = column.saturating_add(repeat);
                    }
                }
                b"table-row" => {
                    if let Some((_, rows)) = sheet.as_mut()
                        && !row.is_empty()
                    {
                        budget.spend(row.len() * (row_repeat - 1))?;
                        for _ in 0..row_repeat {
                            rows.push(row.clone());
                        }
                    }
                }
                b"table" => {
                    if let Some((name, rows)) = sheet.take() {
                        sheets += 1;
                        push_sheet(builder, sheets, &name, rows);
                    }
                }
                _ => {}
            },
            XmlEvent::Text(text) => {
                if let Some((cell, _)) = cell.as_mut() {
                    cell.push_str(&text);
                }
            }
        }
    }
    Ok(())
}
