//! Excel workbooks (SpreadsheetML): one page per sheet, headed by its
//! name, its cells as a table (values as stored: shared and inline
//! strings, numbers, booleans, cached formula results).

use super::{
    CellBudget, SheetRows, element_text, main_part, push_sheet, relationship_id, relationships,
};
use crate::ParseError;
use crate::archive::Archive;
use crate::outline::DocumentBuilder;
use crate::xml::{XmlEvent, XmlReader, attribute, end_name, local_name};
use docpipe_core::ParsedDocument;

pub(crate) fn parse(
    archive: &mut Archive<'_>,
    max_cells: usize,
) -> Result<ParsedDocument, ParseError> {
    let main = main_part(archive, "an Excel workbook (XLSX)")?;
    let targets = relationships(archive, &main)?;
    let shared = match targets.iter().find(|target| target.is("sharedStrings")) {
        Some(part) => match archive.read(&part.target)? {
            Some(bytes) => read_shared_strings(&bytes, &part.target)?,
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let workbook = archive.require(&main)?;
    let mut sheets = Vec::new();
    let mut reader = XmlReader::new(&workbook, &main);
    while let Some(event) = reader.next()? {
        if let XmlEvent::Open(element) = event
            && local_name(&element) == b"sheet"
            && let Some(name) = attribute(&element, "name")
            && let Some(id) = relationship_id(&element)
            && let Some(target) = targets.iter().find(|target| target.id == id)
        {
            sheets.push((name, target.target.clone()));
        }
    }
    let mut builder = DocumentBuilder::default();
    let mut budget = CellBudget::new(max_cells);
    for (index, (name, part)) in sheets.iter().enumerate() {
        let rows = match archive.read(part)? {
            Some(bytes) => read_sheet(&bytes, part, &shared, &mut budget)?,
            None => Vec::new(),
        };
        push_sheet(&mut builder, index as u32 + 1, name, rows);
    }
    let title = element_text(archive, "docProps/core.xml", b"title")?;
    Ok(builder.finish(title))
}

/// The shared strings table, phonetic readings (`rPh`) left out.
fn read_shared_strings(bytes: &[u8], part: &str) -> Result<Vec<String>, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut strings = Vec::new();
    let mut in_text = false;
    let mut phonetic = false;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                b"si" => strings.push(String::new()),
                b"t" => in_text = true,
                b"rPh" => phonetic = true,
                _ => {}
            },
            XmlEvent::Close(element) => match end_name(&element) {
                b"t" => in_text = false,
                b"rPh" => phonetic = false,
                _ => {}
            },
            XmlEvent::Text(text) if in_text && !phonetic => {
                if let Some(string) = strings.last_mut() {
                    string.push_str(&text);
                }
            }
            XmlEvent::Text(_) => {}
        }
    }
    Ok(strings)
}

/// A sheet's rows as (column, value) cells.
fn read_sheet(
    bytes: &[u8],
    part: &str,
    shared: &[String],
    budget: &mut CellBudget,
) -> Result<SheetRows, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut rows: SheetRows = Vec::new();
    let mut column = 0usize;
    let mut kind: Option<String> = None;
    let mut value: Option<String> = None;
    let mut in_value = false;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                b"row" => {
                    rows.push(Vec::new());
                    column = 0;
                }
                b"c" => {
                    if let Some(index) = attribute(&element, "r").and_then(|r| column_of(&r)) {
                        column = index;
                    }
                    kind = attribute(&element, "t");
                    value = None;
                }
                b"v" | b"t" => in_value = true,
                _ => {}
            },
            XmlEvent::Close(element) => match end_name(&element) {
                b"v" | b"t" => in_value = false,
                b"c" => {
                    if let Some(raw) = value.take().filter(|raw| !raw.is_empty()) {
                        budget.spend(1)?;
                        let text = match kind.as_deref() {
                            Some("s") => raw
                                .trim()
                                .parse::<usize>()
                                .ok()
                                .and_then(|index| shared.get(index).cloned())
                                .unwrap_or_default(),
                            Some("b") => (if raw.trim() == "1" { "TRUE" } else { "FALSE" }).into(),
                            _ => raw,
                        };
                        if let Some(row) = rows.last_mut() {
                            row.push((column, text));
                        }
                    }
                    column += 1;
                }
                _ => {}
            },
            XmlEvent::Text(text) if in_value => {
                value.get_or_insert_with(String::new).push_str(&text)
            }
            XmlEvent::Text(_) => {}
        }
    }
    Ok(rows)
}

/// The 0-based column of a cell reference (`C7` → 2, `AA1` → 26).
fn column_of(reference: &str) -> Option<usize> {
    let letters: Vec<u8> = reference
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    let number = letters.iter().fold(0usize, |number, letter| {
        number * 26 + usize::from(letter.to_ascii_uppercase() - b'A' + 1)
    });
    Some(number - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_references_name_columns() {
        assert_eq!(column_of("A1"), Some(0));
        assert_eq!(column_of("C7"), Some(2));
        assert_eq!(column_of("AA10"), Some(26));
        assert_eq!(column_of("7"), None);
    }

    #[test]
    fn shared_inline_and_boolean_cells_read_as_text() {
        let sheet = br#"<worksheet><sheetData>
            <row r="1"><c r="A1" t="s"><v>1</v></c><c r="C1" t="inlineStr"><is><t>Cost</t></is></c></row>
            <row r="2"><c r="A2"><v>12.5</v></c><c r="B2" t="b"><v>1</v></c><c r="C2"><f>A2*2</f><v>25</v></c></row>
            </sheetData></worksheet>"#;
        let shared = ["zero".to_owned(), "Month".to_owned()];
        let rows = read_sheet(sheet, "sheet1.xml", &shared, &mut CellBudget::new(10)).unwrap();
        let expected = [
            vec![(0, "Month"), (2, "Cost")],
            vec![(0, "12.5"), (1, "TRUE"), (2, "25")],
        ];
        let rows: Vec<Vec<(usize, &str)>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|(column, text)| (*column, text.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(rows, expected);
        let error = read_sheet(sheet, "sheet1.xml", &shared, &mut CellBudget::new(3)).unwrap_err();
        assert!(matches!(error, ParseError::ExceedsLimit { .. }), "{error}");
    }
}
