//! CSV and TSV: one table, its first row the header, rendered as rows
//! under it like a spreadsheet's; the delimiter (comma, semicolon or tab)
//! told from the first lines, quoted fields as RFC 4180 has them.

use crate::office::CellBudget;
use crate::outline::DocumentBuilder;
use crate::{ParseError, text};
use docpipe_core::ParsedDocument;

/// How many lines the delimiter is told from.
const SNIFFED_LINES: usize = 20;

pub(crate) fn parse(
    bytes: &[u8],
    charset: Option<&str>,
    max_cells: usize,
) -> Result<ParsedDocument, ParseError> {
    if !text::looks_like_text(bytes) {
        return Err(ParseError::UnsupportedContent(
            "binary data declared as CSV (NUL bytes or control characters)".into(),
        ));
    }
    let source = text::decode(bytes, charset);
    let source = source.trim_start_matches('\u{feff}');
    let rows = records(source, delimiter(source), &mut CellBudget::new(max_cells))?;
    let mut builder = DocumentBuilder::default();
    builder.table(&rows);
    Ok(builder.finish(None))
}

/// The delimiter most frequent, outside quotes, in the first lines:
/// comma, semicolon (spreadsheets of comma-decimal locales) or tab.
fn delimiter(source: &str) -> char {
    let head: String = source
        .lines()
        .take(SNIFFED_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    let mut quoted = false;
    let mut counts = [(',', 0usize), (';', 0), ('\t', 0)];
    for character in head.chars() {
        if character == '"' {
            quoted = !quoted;
        } else if !quoted && let Some(count) = counts.iter_mut().find(|(d, _)| *d == character) {
            count.1 += 1;
        }
    }
    // The first of the most frequent: a comma on a tie.
    counts
        .iter()
        .fold((',', 0), |best, &candidate| {
            if candidate.1 > best.1 {
                candidate
            } else {
                best
            }
        })
        .0
}

/// The records of `source`: fields split at `delimiter`, quoted fields
/// (with `""` for a quote, and line breaks) kept whole.
fn records(
    source: &str,
    delimiter: char,
    budget: &mut CellBudget,
) -> Result<Vec<Vec<String>>, ParseError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut characters = source.chars().peekable();
    while let Some(character) = characters.next() {
        match (quoted, character) {
            (true, '"') if characters.peek() == Some(&'"') => {
                characters.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, other) => field.push(other),
            (false, '"') if field.is_empty() => quoted = true,
            (false, character) if character == delimiter => {
                row.push(std::mem::take(&mut field));
            }
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                budget.spend(row.len())?;
                rows.push(std::mem::take(&mut row));
            }
            (false, other) => field.push(other),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        budget.spend(row.len())?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_their_delimiters_quotes_and_line_breaks() {
        let rows = records(
            "name,notes\r\n\"Smith, J\",\"said \"\"hi\"\"\nthen left\"\n",
            ',',
            &mut CellBudget::new(10),
        )
        .unwrap();
        assert_eq!(
            rows,
            [
                vec!["name", "notes"],
                vec!["Smith, J", "said \"hi\"\nthen left"]
            ]
        );
    }

    #[test]
    fn the_delimiter_is_told_from_the_first_lines() {
        assert_eq!(delimiter("a;b;c\n1,5;2,5;3\n"), ';');
        assert_eq!(delimiter("a\tb\n1\t2\n"), '\t');
        assert_eq!(delimiter("\"a;b\",c\n"), ',');
    }

    #[test]
    fn a_csv_is_one_table_under_its_header_within_the_cell_budget() {
        let document = parse(b"Month,Cost\nMay,12\nJune,9\n", None, 10).unwrap();
        assert_eq!(
            document.text,
            "| Month | Cost |\n| --- | --- |\n| May | 12 |\n| June | 9 |"
        );
        let error = parse(b"a,b\n1,2\n3,4\n", None, 5).unwrap_err();
        assert!(matches!(error, ParseError::ExceedsLimit { .. }), "{error}");
    }
}
