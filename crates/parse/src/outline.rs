//! Builds a [`ParsedDocument`] block by block for the formats that say
//! what is a heading (HTML, Markdown, Office, OpenDocument, EPUB, RTF),
//! keeping the path of headings above each block.

use crate::collapse_whitespace;
use docpipe_core::ParsedDocument;

/// A document under construction.
#[derive(Debug, Default)]
pub(crate) struct DocumentBuilder {
    document: ParsedDocument,
    headings: Vec<(u8, String)>,
    page: Option<u32>,
    first_heading: Option<String>,
}

impl DocumentBuilder {
    /// A heading at `level` (1 outermost): it closes the headings at its
    /// level and below, and blocks after it sit under it.
    pub fn heading(&mut self, level: u8, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        if level == 1 && self.first_heading.is_none() {
            self.first_heading = Some(text.clone());
        }
        self.headings.retain(|(outer, _)| *outer < level);
        self.headings.push((level, text.clone()));
        let path = self.path();
        self.document.push_block(&text, self.page, &path, true);
    }

    /// A block of text under the current headings, whitespace kept as is
    /// (callers collapse what is not preformatted).
    pub fn block(&mut self, text: &str) {
        let path = self.path();
        self.document.push_block(text, self.page, &path, false);
    }

    /// A paragraph: whitespace collapsed.
    pub fn paragraph(&mut self, text: &str) {
        self.block(&collapse_whitespace(text));
    }

    /// A table as Markdown-like rows, the first row its header, so that a
    /// chunk of it reads as a table and rows stay together where they fit.
    pub fn table(&mut self, rows: &[Vec<String>]) {
        let rendered = render_table(rows);
        if !rendered.is_empty() {
            self.block(&rendered);
        }
    }

    /// The blocks of another document (a chapter), under their own
    /// headings.
    pub fn append(&mut self, chapter: &ParsedDocument) {
        for block in &chapter.blocks {
            let text = &chapter.text[block.range.clone()];
            if block.is_heading && block.heading_path.len() == 1 && self.first_heading.is_none() {
                self.first_heading = Some(text.to_owned());
            }
            self.document
                .push_block(text, self.page, &block.heading_path, block.is_heading);
        }
    }

    /// Blocks from now on are on `page` (a page, slide or sheet, 1-based);
    /// the headings of the previous one close.
    pub fn start_page(&mut self, page: u32) {
        self.page = Some(page);
        self.headings.clear();
    }

    /// The first level-1 heading, a title when the format names none.
    pub fn first_heading(&self) -> Option<&str> {
        self.first_heading.as_deref()
    }

    /// The document, titled `title`.
    pub fn finish(self, title: Option<String>) -> ParsedDocument {
        let title = title
            .map(|title| collapse_whitespace(&title))
            .filter(|title| !title.is_empty());
        ParsedDocument {
            title,
            page_count: self.page,
            ..self.document
        }
    }

    fn path(&self) -> Vec<String> {
        self.headings.iter().map(|(_, text)| text.clone()).collect()
    }
}

/// `| a | b |` rows with a `| --- |` rule under the first; cells'
/// whitespace collapsed and `|` escaped, rows padded to the widest, empty
/// rows and trailing empty columns dropped.
pub(crate) fn render_table(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| collapse_whitespace(cell).replace('|', "\\|"))
                .collect::<Vec<_>>()
        })
        .filter(|row| row.iter().any(|cell| !cell.is_empty()))
        .collect();
    let width = rows
        .iter()
        .filter_map(|row| row.iter().rposition(|cell| !cell.is_empty()))
        .max()
        .map_or(0, |last| last + 1);
    if width == 0 {
        return String::new();
    }
    let mut lines = Vec::with_capacity(rows.len() + 1);
    for (index, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = (0..width)
            .map(|column| row.get(column).map_or("", String::as_str))
            .collect();
        lines.push(format!("| {} |", cells.join(" | ")));
        if index == 0 {
            lines.push(format!("|{}", " --- |".repeat(width)));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|cell| (*cell).to_owned()).collect()
    }

    #[test]
    fn tables_render_as_rows_under_their_header() {
        let table = render_table(&[
            row(&["Vaccine", "Storage  range", ""]),
            row(&["", "", ""]),
            row(&["MMR", "2–8 °C"]),
            row(&["a|b", "", ""]),
        ]);
        assert_eq!(
            table,
            "| Vaccine | Storage range |\n| --- | --- |\n| MMR | 2–8 °C |\n| a\\|b |  |"
        );
        assert_eq!(render_table(&[row(&["", ""])]), "");
    }

    #[test]
    fn headings_nest_and_pages_close_them() {
        let mut builder = DocumentBuilder::default();
        builder.heading(1, "Storage");
        builder.heading(2, "Freezers");
        builder.paragraph("Keep  at -20.");
        builder.heading(2, "Fridges");
        builder.paragraph("Keep at 5.");
        builder.start_page(2);
        builder.paragraph("Slide two.");
        assert_eq!(builder.first_heading(), Some("Storage"));
        let document = builder.finish(None);
        let path = |needle: &str| {
            let at = document.text.find(needle).unwrap();
            let block = document.block_at(at).unwrap();
            (block.heading_path.clone(), block.page)
        };
        assert_eq!(path("Keep at -20."), (row(&["Storage", "Freezers"]), None));
        assert_eq!(path("Keep at 5."), (row(&["Storage", "Fridges"]), None));
        assert_eq!(path("Slide two."), (vec![], Some(2)));
        assert_eq!(document.page_count, Some(2));
    }
}
