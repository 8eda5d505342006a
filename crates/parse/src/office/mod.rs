//! Office documents: Word, PowerPoint and Excel files (Office Open XML)
//! and their OpenDocument counterparts. All are zip containers of XML
//! parts; [`Flow`] turns their paragraphs, tables and notes into blocks.

pub(crate) mod docx;
pub(crate) mod odf;
pub(crate) mod pptx;
pub(crate) mod xlsx;

use crate::archive::{Archive, resolve};
use crate::outline::{DocumentBuilder, render_table};
use crate::xml::{self, XmlEvent, XmlReader, attribute, end_name, local_name};
use crate::{Limit, ParseError, collapse_whitespace};

/// What a paragraph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParagraphKind {
    /// Body text.
    Body,
    /// A heading at this level (1 outermost).
    Heading(u8),
    /// A list item, `depth` levels in, numbered or (`None`) bulleted.
    ListItem { depth: u8, number: Option<u64> },
}

struct OpenParagraph {
    kind: ParagraphKind,
    text: String,
    in_cell: bool,
    /// Footnotes and endnotes cited in it.
    notes: Vec<String>,
}

#[derive(Default)]
struct OpenTable {
    rows: Vec<Vec<String>>,
    cell: Option<String>,
}

/// Paragraphs, tables and notes of a word-processing flow, as they open
/// and close, turned into blocks: cells' paragraphs become cell text,
/// nested tables flatten into their cell, notes follow the paragraph (or
/// table) that cites them.
#[derive(Default)]
pub(crate) struct Flow {
    /// Where the blocks go.
    pub builder: DocumentBuilder,
    paragraphs: Vec<OpenParagraph>,
    tables: Vec<OpenTable>,
    /// Notes of closed list items and cells, placed after their list or
    /// table.
    notes: Vec<String>,
    /// Consecutive list items, one block when the list ends.
    list: Vec<String>,
}

impl Flow {
    /// A paragraph opens (inside the current one, for text boxes).
    pub fn open_paragraph(&mut self) {
        let in_cell = self.tables.last().is_some_and(|table| table.cell.is_some());
        self.paragraphs.push(OpenParagraph {
            kind: ParagraphKind::Body,
            text: String::new(),
            in_cell,
            notes: Vec::new(),
        });
    }

    /// What the open paragraph is.
    pub fn set_kind(&mut self, kind: ParagraphKind) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.kind = kind;
        }
    }

    /// Text of the open paragraph (dropped outside any).
    pub fn text(&mut self, text: &str) {
        if let Some(paragraph) = self.paragraphs.last_mut() {
            paragraph.text.push_str(text);
        }
    }

    /// The text of the open paragraph so far.
    pub fn open_text(&self) -> Option<&str> {
        self.paragraphs
            .last()
            .map(|paragraph| paragraph.text.as_str())
    }

    /// The open paragraph ends.
    pub fn close_paragraph(&mut self) {
        let Some(paragraph) = self.paragraphs.pop() else {
            return;
        };
        let text = collapse_whitespace(&paragraph.text);
        if paragraph.in_cell {
            self.append_to_cell(&text);
            self.notes.extend(paragraph.notes);
            return;
        }
        match paragraph.kind {
            ParagraphKind::ListItem { depth, number } => {
                if !text.is_empty() {
                    let marker =
                        number.map_or_else(|| "-".to_owned(), |number| format!("{number}."));
                    let indent = "  ".repeat(usize::from(depth));
                    self.list.push(format!("{indent}{marker} {text}"));
                }
                // A note cited in an item follows the list.
                self.notes.extend(paragraph.notes);
                return;
            }
            ParagraphKind::Body => {
                self.end_list();
                self.builder.paragraph(&text);
            }
            ParagraphKind::Heading(level) => self.heading(level, &text),
        }
        match self.paragraphs.last_mut() {
            // A text box's notes go with the paragraph holding it.
            Some(outer) => outer.notes.extend(paragraph.notes),
            None => {
                for note in paragraph.notes {
                    self.builder.paragraph(&note);
                }
            }
        }
    }

    /// A footnote or endnote cited here, placed after the paragraph.
    pub fn note(&mut self, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        match self.paragraphs.last_mut() {
            Some(paragraph) => paragraph.notes.push(text),
            None => self.notes.push(text),
        }
    }

    /// A heading outside any paragraph's flow (a slide's notes heading):
    /// an open list ends first.
    pub fn heading(&mut self, level: u8, text: &str) {
        self.end_list();
        self.builder.heading(level, text);
    }

    /// Blocks from now on are on `page` (a slide): an open list ends on
    /// the previous one.
    pub fn start_page(&mut self, page: u32) {
        self.end_list();
        self.emit_notes();
        self.builder.start_page(page);
    }

    /// A table opens.
    pub fn open_table(&mut self) {
        if self.tables.is_empty() {
            self.end_list();
        }
        self.tables.push(OpenTable::default());
    }

    /// A row of the innermost table opens.
    pub fn open_row(&mut self) {
        if let Some(table) = self.tables.last_mut() {
            table.rows.push(Vec::new());
        }
    }

    /// A cell of the current row opens.
    pub fn open_cell(&mut self) {
        if let Some(table) = self.tables.last_mut() {
            table.cell = Some(String::new());
        }
    }

    /// The open cell ends.
    pub fn close_cell(&mut self) {
        if let Some(table) = self.tables.last_mut()
            && let Some(cell) = table.cell.take()
        {
            match table.rows.last_mut() {
                Some(row) => row.push(cell),
                None => table.rows.push(vec![cell]),
            }
        }
    }

    /// The innermost table ends: a block, or text of the cell it sits in.
    pub fn close_table(&mut self) {
        let Some(table) = self.tables.pop() else {
            return;
        };
        if self.tables.last().is_some_and(|outer| outer.cell.is_some()) {
            let flattened: Vec<String> = table.rows.iter().map(|row| row.join(" ")).collect();
            self.append_to_cell(&flattened.join(" "));
            return;
        }
        self.builder.table(&table.rows);
        self.emit_notes();
    }

    fn append_to_cell(&mut self, text: &str) {
        if let Some(cell) = self.tables.last_mut().and_then(|table| table.cell.as_mut())
            && !text.is_empty()
        {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(text);
        }
    }

    fn end_list(&mut self) {
        if !self.list.is_empty() {
            let lines = std::mem::take(&mut self.list);
            self.builder.block(&lines.join("\n"));
            self.emit_notes();
        }
    }

    fn emit_notes(&mut self) {
        if self.paragraphs.is_empty() && self.tables.is_empty() {
            for note in std::mem::take(&mut self.notes) {
                self.builder.paragraph(&note);
            }
        }
    }

    /// The document, titled `title`.
    pub fn finish(mut self, title: Option<String>) -> docpipe_core::ParsedDocument {
        while !self.paragraphs.is_empty() {
            self.close_paragraph();
        }
        while !self.tables.is_empty() {
            self.close_table();
        }
        self.end_list();
        self.emit_notes();
        self.builder.finish(title)
    }
}

/// A relationship of an Office Open XML part.
pub(crate) struct Relationship {
    /// `rId7`.
    pub id: String,
    /// The relationship type URI.
    pub kind: String,
    /// The target part, resolved to a name in the zip.
    pub target: String,
}

impl Relationship {
    /// Whether the relationship type ends with `/suffix` (`officeDocument`).
    pub fn is(&self, suffix: &str) -> bool {
        self.kind
            .rsplit('/')
            .next()
            .is_some_and(|kind| kind == suffix)
    }
}

/// The relationships of `part` (from `dir/_rels/name.rels`); none when
/// the part has none. External targets (links) are left out.
pub(crate) fn relationships(
    archive: &mut Archive<'_>,
    part: &str,
) -> Result<Vec<Relationship>, ParseError> {
    let (directory, name) = part.rsplit_once('/').unwrap_or(("", part));
    let rels = if directory.is_empty() {
        format!("_rels/{name}.rels")
    } else {
        format!("{directory}/_rels/{name}.rels")
    };
    let Some(bytes) = archive.read(&rels)? else {
        return Ok(Vec::new());
    };
    let mut reader = XmlReader::new(&bytes, &rels);
    let mut found = Vec::new();
    while let Some(event) = reader.next()? {
        if let XmlEvent::Open(element) = event
            && local_name(&element) == b"Relationship"
            && attribute(&element, "TargetMode").as_deref() != Some("External")
            && let (Some(id), Some(kind), Some(target)) = (
                attribute(&element, "Id"),
                attribute(&element, "Type"),
                attribute(&element, "Target"),
            )
        {
            found.push(Relationship {
                id,
                kind,
                target: resolve(part, &target),
            });
        }
    }
    Ok(found)
}

/// The `r:id` of an element: the relationship naming the part it refers
/// to (an `id` attribute with a namespace prefix, unlike a plain `id`).
pub(crate) fn relationship_id(element: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| {
            attribute.key.prefix().is_some() && attribute.key.local_name().as_ref() == b"id"
        })
        .and_then(|attribute| xml::value(&attribute))
}

/// The target of `part`'s first relationship of type `suffix`.
pub(crate) fn related(
    archive: &mut Archive<'_>,
    part: &str,
    suffix: &str,
) -> Result<Option<String>, ParseError> {
    Ok(relationships(archive, part)?
        .into_iter()
        .find(|relationship| relationship.is(suffix))
        .map(|relationship| relationship.target))
}

/// The main part of an Office Open XML package (`word/document.xml`).
pub(crate) fn main_part(archive: &mut Archive<'_>, what: &str) -> Result<String, ParseError> {
    related(archive, "", "officeDocument")?.ok_or_else(|| {
        ParseError::CorruptDocument(format!(
            "{what} whose package names no main part (_rels/.rels has no officeDocument)"
        ))
    })
}

/// The text of the first element with local name `local` in `part` (the
/// `dc:title` of `docProps/core.xml` or an OpenDocument's `meta.xml`).
pub(crate) fn element_text(
    archive: &mut Archive<'_>,
    part: &str,
    local: &[u8],
) -> Result<Option<String>, ParseError> {
    let Some(bytes) = archive.read(part)? else {
        return Ok(None);
    };
    let mut reader = XmlReader::new(&bytes, part);
    let mut inside = false;
    let mut text = String::new();
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) if local_name(&element) == local => inside = true,
            XmlEvent::Close(element) if inside && end_name(&element) == local => break,
            XmlEvent::Text(chunk) if inside => text.push_str(&chunk),
            _ => {}
        }
    }
    let text = collapse_whitespace(&text);
    Ok((!text.is_empty()).then_some(text))
}

/// Counts spreadsheet cells against the pipeline's limit.
pub(crate) struct CellBudget {
    used: usize,
    allowed: usize,
}

impl CellBudget {
    /// A budget of `allowed` cells.
    pub fn new(allowed: usize) -> Self {
        Self { used: 0, allowed }
    }

    /// Spends `cells`; fails past the limit.
    pub fn spend(&mut self, cells: usize) -> Result<(), ParseError> {
        self.used = self.used.saturating_add(cells);
        if self.used > self.allowed {
            return Err(ParseError::ExceedsLimit {
                limit: Limit::SheetCells,
                found: self.used as u64,
                allowed: self.allowed as u64,
            });
        }
        Ok(())
    }
}

/// A sheet's rows, each cell with its 0-based column.
pub(crate) type SheetRows = Vec<Vec<(usize, String)>>;

/// A sheet as rows of cells, keyed by column; empty columns dropped.
pub(crate) fn sheet_rows(rows: SheetRows) -> Vec<Vec<String>> {
    let mut used: Vec<usize> = rows
        .iter()
        .flatten()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(column, _)| *column)
        .collect();
    used.sort_unstable();
    used.dedup();
    rows.into_iter()
        .map(|row| {
            let mut dense = vec![String::new(); used.len()];
            for (column, value) in row {
                if let Ok(index) = used.binary_search(&column) {
                    dense[index] = value;
                }
            }
            dense
        })
        .collect()
}

/// Renders a sheet under a heading with its name, on its own page.
pub(crate) fn push_sheet(builder: &mut DocumentBuilder, page: u32, name: &str, rows: SheetRows) {
    builder.start_page(page);
    builder.heading(1, name);
    let rendered = render_table(&sheet_rows(rows));
    if !rendered.is_empty() {
        builder.block(&rendered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_paragraphs_become_cell_text_and_notes_follow_their_paragraph() {
        let mut flow = Flow::default();
        flow.open_paragraph();
        flow.text("Keep vaccines cold.");
        flow.note("WHO guidance, 2015.");
        flow.close_paragraph();
        flow.open_table();
        for row in [["Vaccine", "Range"], ["MMR", "2 to 8"]] {
            flow.open_row();
            for cell in row {
                flow.open_cell();
                flow.open_paragraph();
                flow.text(cell);
                flow.close_paragraph();
                flow.close_cell();
            }
        }
        flow.close_table();
        for (depth, number, text) in [(0, None, "first"), (1, Some(1), "second")] {
            flow.open_paragraph();
            flow.set_kind(ParagraphKind::ListItem { depth, number });
            flow.text(text);
            flow.close_paragraph();
        }
        let document = flow.finish(None);
        assert_eq!(
            document.text,
            "Keep vaccines cold.\n\nWHO guidance, 2015.\n\n| Vaccine | Range |\n| --- | --- |\n| MMR | 2 to 8 |\n\n- first\n  1. second"
        );
    }

    #[test]
    fn empty_sheet_columns_are_dropped() {
        let rows = vec![
            vec![(0, "Month".to_owned()), (5, "Cost".to_owned())],
            vec![
                (0, "May".to_owned()),
                (3, " ".to_owned()),
                (5, "12".to_owned()),
            ],
        ];
        assert_eq!(
            sheet_rows(rows),
            [["Month", "Cost"], ["May", "12"]].map(|row| row.map(str::to_owned).to_vec())
        );
    }
}
