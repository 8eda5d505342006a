//! Rich Text Format: paragraphs, headings (outline levels and "heading N"
//! styles), tables and footnotes; fonts, colours, pictures, objects,
//! headers, field instructions and hidden text left out.

use crate::office::{Flow, ParagraphKind};
use crate::{Limit, ParseError};
use docpipe_core::ParsedDocument;
use encoding_rs::Encoding;
use std::collections::HashMap;

/// How deep groups may nest: word processors write fewer than twenty
/// levels; each level costs a copy of the group state.
pub(crate) const MAX_GROUP_DEPTH: usize = 1000;

/// Destinations whose content is never document text.
const SKIPPED_DESTINATIONS: [&str; 27] = [
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "fldinst",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "xmlnstbl",
    "bkmkstart",
    "bkmkend",
    "nonshppict",
];

/// What a group sets, restored when it closes.
#[derive(Debug, Clone, Default)]
struct GroupState {
    /// Text here is not document text.
    skipped: bool,
    /// Text here belongs to a footnote.
    footnote: bool,
    /// Text here is the title (`{\info{\title ...}}`).
    title: bool,
    /// Inside `{\info ...}`.
    info: bool,
    /// Inside `{\stylesheet ...}`.
    stylesheet: bool,
    /// Text here names a style (`{\stylesheet{\s1 heading 1;}}`).
    style: Option<i32>,
    hidden: bool,
    /// The paragraph's properties (`\pard` resets them).
    paragraph: ParagraphState,
    /// Characters to skip after each `\uN` (`\ucN`).
    unicode_skip: usize,
}

/// What the current paragraph is (`\pard` resets it).
#[derive(Debug, Clone, Copy, Default)]
struct ParagraphState {
    style: i32,
    outline: Option<u8>,
    in_table: bool,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    encoding: &'static Encoding,
    flow: Flow,
    groups: Vec<GroupState>,
    group: GroupState,
    /// A destination group was just opened with `\*`.
    ignorable: bool,
    /// `\'hh` bytes waiting to be decoded together (multi-byte charsets).
    pending: Vec<u8>,
    /// Characters of `\uN` fallback still to skip.
    skipping: usize,
    note: String,
    title: String,
    style_names: HashMap<i32, String>,
    style_outlines: HashMap<i32, u8>,
    paragraph_open: bool,
    table_open: bool,
    row_open: bool,
    cell_open: bool,
}

pub(crate) fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    let mut reader = Reader {
        bytes,
        at: 0,
        encoding: encoding_rs::WINDOWS_1252,
        flow: Flow::default(),
        groups: Vec::new(),
        group: GroupState {
            unicode_skip: 1,
            ..GroupState::default()
        },
        ignorable: false,
        pending: Vec::new(),
        skipping: 0,
        note: String::new(),
        title: String::new(),
        style_names: HashMap::new(),
        style_outlines: HashMap::new(),
        paragraph_open: false,
        table_open: false,
        row_open: false,
        cell_open: false,
    };
    reader.run()?;
    reader.end_paragraph();
    reader.end_table();
    let title = crate::collapse_whitespace(&reader.title);
    let title = (!title.is_empty())
        .then_some(title)
        .or_else(|| reader.flow.builder.first_heading().map(str::to_owned));
    Ok(reader.flow.finish(title))
}

impl Reader<'_> {
    fn run(&mut self) -> Result<(), ParseError> {
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            match byte {
                b'{' => {
                    self.flush_pending();
                    if self.groups.len() >= MAX_GROUP_DEPTH {
                        return Err(ParseError::ExceedsLimit {
                            limit: Limit::RtfGroupDepth,
                            found: self.groups.len() as u64 + 1,
                            allowed: MAX_GROUP_DEPTH as u64,
                        });
                    }
                    self.groups.push(self.group.clone());
                }
                b'}' => {
                    self.flush_pending();
                    self.close_group();
                }
                b'\\' => self.control()?,
                b'\r' | b'\n' => {}
                _ => self.byte(byte),
            }
        }
        self.flush_pending();
        Ok(())
    }

    fn close_group(&mut self) {
        let closing = std::mem::replace(&mut self.group, self.groups.pop().unwrap_or_default());
        if closing.footnote && !self.group.footnote {
            let note = std::mem::take(&mut self.note);
            self.flow.note(&note);
        }
        if let Some(number) = closing.style
            && self.group.style.is_none()
        {
            let name = self.style_names.entry(number).or_default();
            *name = name.trim().trim_end_matches(';').trim().to_owned();
        }
    }

    fn control(&mut self) -> Result<(), ParseError> {
        let Some(&next) = self.bytes.get(self.at) else {
            return Ok(());
        };
        if !next.is_ascii_alphabetic() {
            self.at += 1;
            match next {
                b'\'' => {
                    let hex = self.bytes.get(self.at..self.at + 2).unwrap_or_default();
                    self.at += hex.len();
                    if let Some(byte) = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    {
                        if self.skipping > 0 {
                            self.skipping -= 1;
                        } else {
                            self.pending.push(byte);
                        }
                    }
                }
                b'*' => self.ignorable = true,
                b'~' => self.text("\u{a0}"),
                b'_' => self.text("\u{2011}"),
                b'\n' | b'\r' => self.end_paragraph(),
                b'\\' | b'{' | b'}' => self.byte(next),
                _ => {}
            }
            return Ok(());
        }
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_alphabetic) {
            self.at += 1;
        }
        let word = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        let number_start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let parameter = std::str::from_utf8(&self.bytes[number_start..self.at])
            .ok()
            .and_then(|digits| digits.parse::<i32>().ok());
        if self.bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        self.flush_pending();
        self.word(&word, parameter);
        Ok(())
    }

    fn word(&mut self, word: &str, parameter: Option<i32>) {
        let ignorable = std::mem::take(&mut self.ignorable);
        if self.skipping > 0 && word != "u" {
            // A control word stands for one fallback character of \uN.
            self.skipping -= 1;
            return;
        }
        match word {
            "ansicpg" => {
                if let Some(encoding) =
                    parameter.and_then(|page| codepage::to_encoding(page as u16))
                {
                    self.encoding = encoding;
                }
            }
            "u" => {
                if let Some(code) = parameter {
                    let code = if code < 0 { code + 65536 } else { code } as u32;
                    if let Some(character) = char::from_u32(code) {
                        self.text(&character.to_string());
                    }
                    self.skipping = self.group.unicode_skip;
                }
            }
            "uc" => self.group.unicode_skip = parameter.unwrap_or(1).max(0) as usize,
            "bin" => {
                self.at = self
                    .at
                    .saturating_add(parameter.unwrap_or(0).max(0) as usize)
            }
            "footnote" => self.group.footnote = true,
            "info" => {
                self.group.info = true;
                self.group.skipped = true;
            }
            "title" if self.group.info => self.group.title = true,
            "stylesheet" => {
                self.group.stylesheet = true;
                self.group.skipped = true;
            }
            "s" if self.group.stylesheet => {
                let number = parameter.unwrap_or(0);
                self.group.style = Some(number);
                self.style_names.insert(number, String::new());
            }
            "cs" | "ds" | "ts" if self.group.stylesheet => self.group.style = None,
            "outlinelevel" if self.group.stylesheet => {
                if let (Some(style), Some(level)) = (self.group.style, parameter) {
                    self.style_outlines
                        .insert(style, level.clamp(0, 8) as u8 + 1);
                }
            }
            destination if SKIPPED_DESTINATIONS.contains(&destination) => {
                self.group.skipped = true;
            }
            _ if ignorable => self.group.skipped = true,
            "par" | "page" | "sect" if self.group.footnote => self.note.push(' '),
            "par" | "page" | "sect" => self.end_paragraph(),
            "pard" => self.group.paragraph = ParagraphState::default(),
            "s" => self.group.paragraph.style = parameter.unwrap_or(0),
            "outlinelevel" => {
                self.group.paragraph.outline = parameter.map(|level| level.clamp(0, 8) as u8 + 1);
            }
            "intbl" => self.group.paragraph.in_table = true,
            "cell" if !self.group.footnote => self.end_cell(),
            "row" if !self.group.footnote => {
                self.end_paragraph();
                if std::mem::take(&mut self.cell_open) {
                    self.flow.close_cell();
                }
                self.row_open = false;
            }
            "v" => self.group.hidden = parameter != Some(0),
            "line" => self.text(" "),
            "tab" => self.text("\t"),
            "emdash" => self.text("\u{2014}"),
            "endash" => self.text("\u{2013}"),
            "lquote" => self.text("\u{2018}"),
            "rquote" => self.text("\u{2019}"),
            "ldblquote" => self.text("\u{201c}"),
            "rdblquote" => self.text("\u{201d}"),
            "bullet" => self.text("\u{2022}"),
            _ => {}
        }
    }

    fn byte(&mut self, byte: u8) {
        if self.skipping > 0 {
            self.skipping -= 1;
            return;
        }
        self.pending.push(byte);
    }

    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.pending);
        let (text, _) = self.encoding.decode_without_bom_handling(&bytes);
        let text = text.into_owned();
        self.text(&text);
    }

    /// Text in the current destination.
    fn text(&mut self, text: &str) {
        if self.group.title {
            self.title.push_str(text);
        } else if let Some(style) = self.group.style {
            self.style_names.entry(style).or_default().push_str(text);
        } else if self.group.skipped || self.group.hidden {
        } else if self.group.footnote {
            self.note.push_str(text);
        } else {
            self.open_paragraph();
            self.flow.text(text);
        }
    }

    fn open_paragraph(&mut self) {
        if self.paragraph_open {
            return;
        }
        if self.group.paragraph.in_table {
            self.ensure_cell();
        } else {
            self.end_table();
        }
        self.flow.open_paragraph();
        self.flow.set_kind(self.paragraph_kind());
        self.paragraph_open = true;
    }

    fn paragraph_kind(&self) -> ParagraphKind {
        let style = self.group.paragraph.style;
        let level = self.group.paragraph.outline.or_else(|| {
            self.style_outlines.get(&style).copied().or_else(|| {
                let name = self.style_names.get(&style)?.to_ascii_lowercase();
                let level: u8 = name.strip_prefix("heading")?.trim().parse().ok()?;
                (1..=9).contains(&level).then_some(level)
            })
        });
        level.map_or(ParagraphKind::Body, ParagraphKind::Heading)
    }

    fn end_paragraph(&mut self) {
        self.flush_pending();
        if self.paragraph_open {
            self.flow.close_paragraph();
            self.paragraph_open = false;
        }
    }

    /// Opens the table, row and cell that text with `\intbl` goes to.
    fn ensure_cell(&mut self) {
        if !std::mem::replace(&mut self.table_open, true) {
            self.flow.open_table();
        }
        if !std::mem::replace(&mut self.row_open, true) {
            self.flow.open_row();
        }
        if !std::mem::replace(&mut self.cell_open, true) {
            self.flow.open_cell();
        }
    }

    fn end_cell(&mut self) {
        self.end_paragraph();
        self.ensure_cell();
        self.flow.close_cell();
        self.cell_open = false;
    }

    fn end_table(&mut self) {
        if std::mem::take(&mut self.table_open) {
            self.flow.close_table();
            self.row_open = false;
            self.cell_open = false;
        }
    }
}

/// Windows code pages named by `\ansicpg`.
mod codepage {
    use encoding_rs::Encoding;

    pub(super) fn to_encoding(page: u16) -> Option<&'static Encoding> {
        let label = match page {
            65001 => "utf-8",
            932 => "shift_jis",
            936 => "gbk",
            949 => "euc-kr",
            950 => "big5",
            874 => "windows-874",
            1250..=1258 => return Encoding::for_label(format!("windows-{page}").as_bytes()),
            _ => return None,
        };
        Encoding::for_label(label.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LETTER: &str = r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times New Roman;}}
{\colortbl;\red0\green0\blue0;}{\stylesheet{\s0 Normal;}{\s1\outlinelevel0 heading 1;}{\s2 heading 2;}}
{\info{\title Looking After Your Bicycle}{\author Sam}}{\*\generator Writer 1.0;}
\pard\s1 Chains\par
\pard\s2 Cleaning\par
\pard A caf\'e9 rider\rquote s chain needs oil{\footnote \pard Use a dry lube in summer.} weekly.\par
{\pict\pngblip 89504e470d0a}\pard\uc1\u8217?ok \b bold\b0  done\par
\trowd\cellx1000\cellx2000\pard\intbl Part\cell Interval\cell\row
\trowd\cellx1000\cellx2000\pard\intbl Chain\cell 300 km\cell\row
\pard After the table.{\v hidden zzhidden}\par}";

    #[test]
    fn paragraphs_headings_tables_and_notes_without_control_words() {
        let document = parse(LETTER.as_bytes()).unwrap();
        assert_eq!(
            document.title.as_deref(),
            Some("Looking After Your Bicycle")
        );
        let text = &document.text;
        assert!(
            text.contains("A café rider’s chain needs oil weekly.\n\nUse a dry lube in summer."),
            "{text}"
        );
        assert!(text.contains("’ok bold done"), "{text}");
        assert!(
            text.contains("| Part | Interval |\n| --- | --- |\n| Chain | 300 km |"),
            "{text}"
        );
        assert!(text.contains("After the table."), "{text}");
        for noise in [
            "Times New Roman",
            "89504e",
            "Writer",
            "zzhidden",
            "Sam",
            "\\",
        ] {
            assert!(!text.contains(noise), "{noise} leaked: {text}");
        }
        let at = text.find("A café").unwrap();
        assert_eq!(
            document.block_at(at).unwrap().heading_path,
            ["Chains", "Cleaning"]
        );
    }

    #[test]
    fn groups_nested_too_deep_are_refused() {
        let deep = format!("{{\\rtf1 {}x", "{".repeat(MAX_GROUP_DEPTH + 5));
        let error = parse(deep.as_bytes()).unwrap_err();
        assert!(
            matches!(
                error,
                ParseError::ExceedsLimit {
                    limit: Limit::RtfGroupDepth,
                    ..
                }
            ),
            "{error}"
        );
    }
}
