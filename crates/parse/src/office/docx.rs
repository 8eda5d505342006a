//! Word documents (WordprocessingML): headings from paragraph styles and
//! outline levels, lists from numbering, tables, footnotes and endnotes
//! after the paragraph citing them; deleted revisions, hidden runs and
//! field codes left out.

use super::{Flow, ParagraphKind, element_text, main_part, relationships};
use crate::archive::Archive;
use crate::xml::{XmlEvent, XmlReader, attribute, end_name, local_name};
use crate::{ParseError, collapse_whitespace};
use docpipe_core::ParsedDocument;
use std::collections::HashMap;

const WHAT: &str = "a Word document (DOCX)";

/// Elements whose content is not the document's current text: deleted or
/// moved-away revisions, field instructions, and the fallback copy of
/// content that `mc:AlternateContent` also gives as its choice.
const SKIPPED: [&[u8]; 5] = [b"del", b"moveFrom", b"instrText", b"Fallback", b"delText"];

pub(crate) fn parse(archive: &mut Archive<'_>) -> Result<ParsedDocument, ParseError> {
    let main = main_part(archive, WHAT)?;
    let mut styles = HashMap::new();
    let mut numbering = Numbering::default();
    let mut notes = HashMap::new();
    for relationship in relationships(archive, &main)? {
        let Some(bytes) = archive.read(&relationship.target)? else {
            continue;
        };
        let part = &relationship.target;
        if relationship.is("styles") {
            styles = read_styles(&bytes, part)?;
        } else if relationship.is("numbering") {
            numbering = read_numbering(&bytes, part)?;
        } else if relationship.is("footnotes") {
            notes.extend(read_notes(&bytes, part, "footnote")?);
        } else if relationship.is("endnotes") {
            notes.extend(read_notes(&bytes, part, "endnote")?);
        }
    }
    let body = archive.require(&main)?;
    let mut reader = XmlReader::new(&body, &main).skipping(&SKIPPED);
    let mut flow = Flow::default();
    let mut in_text = false;
    let mut in_properties = false;
    let mut hidden_run = false;
    let mut properties = ParagraphProperties::default();
    let mut title_paragraph: Option<String> = None;
    let mut counters = Counters::default();
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => {
                let name = local_name(&element);
                let value = || attribute(&element, "val");
                match name {
                    b"p" => {
                        flow.open_paragraph();
                        properties = ParagraphProperties::default();
                    }
                    b"pPr" => in_properties = true,
                    b"pStyle" if in_properties => properties.style = value(),
                    b"numId" if in_properties => properties.num_id = value(),
                    b"ilvl" if in_properties => {
                        properties.level = value().and_then(|level| level.parse().ok());
                    }
                    b"outlineLvl" if in_properties => {
                        properties.outline = value().and_then(|level| level.parse().ok());
                    }
                    b"r" => hidden_run = false,
                    b"vanish" => hidden_run = true,
                    b"t" => in_text = true,
                    b"tab" if !in_properties => flow.text("\t"),
                    b"br" | b"cr" => flow.text(" "),
                    b"noBreakHyphen" => flow.text("-"),
                    b"footnoteReference" | b"endnoteReference" => {
                        let kind = if name == b"footnoteReference" {
                            "footnote"
                        } else {
                            "endnote"
                        };
                        if let Some(note) =
                            attribute(&element, "id").and_then(|id| notes.get(&(kind, id)))
                        {
                            flow.note(note);
                        }
                    }
                    b"tbl" => flow.open_table(),
                    b"tr" => flow.open_row(),
                    b"tc" => flow.open_cell(),
                    _ => {}
                }
            }
            XmlEvent::Close(element) => match end_name(&element) {
                b"pPr" => {
                    in_properties = false;
                    let kind = properties.kind(&styles, &numbering, &mut counters);
                    if properties.is_title(&styles) {
                        flow.set_kind(ParagraphKind::Heading(1));
                        properties.title = true;
                    } else {
                        flow.set_kind(kind);
                    }
                }
                b"p" => {
                    if properties.title && title_paragraph.is_none() {
                        title_paragraph = flow.open_text().map(collapse_whitespace);
                    }
                    flow.close_paragraph();
                }
                b"t" => in_text = false,
                b"tbl" => flow.close_table(),
                b"tc" => flow.close_cell(),
                _ => {}
            },
            XmlEvent::Text(text) if in_text && !hidden_run => flow.text(&text),
            XmlEvent::Text(_) => {}
        }
    }
    let title = element_text(archive, "docProps/core.xml", b"title")?
        .or(title_paragraph)
        .or_else(|| flow.builder.first_heading().map(str::to_owned));
    Ok(flow.finish(title))
}

/// A paragraph style: its name, what it is based on, its outline level
/// and list numbering.
#[derive(Debug, Default)]
struct Style {
    name: String,
    based_on: Option<String>,
    outline: Option<u8>,
    num_id: Option<String>,
}

fn read_styles(bytes: &[u8], part: &str) -> Result<HashMap<String, Style>, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut styles = HashMap::new();
    let mut current: Option<(String, Style)> = None;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => {
                let value = || attribute(&element, "val");
                match (local_name(&element), current.as_mut()) {
                    (b"style", _) => {
                        current = attribute(&element, "styleId").map(|id| (id, Style::default()));
                    }
                    (b"name", Some((_, style))) => style.name = value().unwrap_or_default(),
                    (b"basedOn", Some((_, style))) => style.based_on = value(),
                    (b"outlineLvl", Some((_, style))) => {
                        style.outline = value().and_then(|level| level.parse().ok());
                    }
                    (b"numId", Some((_, style))) => style.num_id = value(),
                    _ => {}
                }
            }
            XmlEvent::Close(element) if end_name(&element) == b"style" => {
                if let Some((id, style)) = current.take() {
                    styles.insert(id, style);
                }
            }
            _ => {}
        }
    }
    Ok(styles)
}

/// Number formats by numbering instance and level: `bullet`, `decimal`, ...
#[derive(Debug, Default)]
struct Numbering {
    formats: HashMap<(String, u8), String>,
}

impl Numbering {
    fn is_bullet(&self, num_id: &str, level: u8) -> bool {
        self.formats
            .get(&(num_id.to_owned(), level))
            .is_none_or(|format| format == "bullet" || format == "none")
    }
}

fn read_numbering(bytes: &[u8], part: &str) -> Result<Numbering, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut abstract_formats: HashMap<(String, u8), String> = HashMap::new();
    let mut instances: Vec<(String, String)> = Vec::new();
    let mut abstract_id: Option<String> = None;
    let mut level: Option<u8> = None;
    let mut num_id: Option<String> = None;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                b"abstractNum" => abstract_id = attribute(&element, "abstractNumId"),
                b"lvl" => level = attribute(&element, "ilvl").and_then(|l| l.parse().ok()),
                b"numFmt" => {
                    if let (Some(id), Some(level), Some(format)) =
                        (&abstract_id, level, attribute(&element, "val"))
                    {
                        abstract_formats.insert((id.clone(), level), format);
                    }
                }
                b"num" => num_id = attribute(&element, "numId"),
                b"abstractNumId" => {
                    if let (Some(num), Some(id)) = (num_id.take(), attribute(&element, "val")) {
                        instances.push((num, id));
                    }
                }
                _ => {}
            },
            XmlEvent::Close(element) if end_name(&element) == b"abstractNum" => {
                abstract_id = None;
            }
            _ => {}
        }
    }
    let mut formats = HashMap::new();
    for (num, abstract_id) in instances {
        for ((id, level), format) in &abstract_formats {
            if *id == abstract_id {
                formats.insert((num.clone(), *level), format.clone());
            }
        }
    }
    Ok(Numbering { formats })
}

/// The text of each footnote (or endnote) by (`kind`, id).
fn read_notes(
    bytes: &[u8],
    part: &str,
    kind: &'static str,
) -> Result<HashMap<(&'static str, String), String>, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut notes = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut in_text = false;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                name if name == kind.as_bytes() => {
                    current = attribute(&element, "id").map(|id| (id, String::new()));
                }
                b"t" => in_text = true,
                b"p" | b"tab" | b"br" => {
                    if let Some((_, text)) = current.as_mut() {
                        text.push(' ');
                    }
                }
                _ => {}
            },
            XmlEvent::Close(element) => match end_name(&element) {
                name if name == kind.as_bytes() => {
                    if let Some((id, text)) = current.take() {
                        notes.insert((kind, id), collapse_whitespace(&text));
                    }
                }
                b"t" => in_text = false,
                _ => {}
            },
            XmlEvent::Text(chunk) if in_text => {
                if let Some((_, text)) = current.as_mut() {
                    text.push_str(&chunk);
                }
            }
            XmlEvent::Text(_) => {}
        }
    }
    Ok(notes)
}

/// What `w:pPr` says about a paragraph.
#[derive(Debug, Default)]
struct ParagraphProperties {
    style: Option<String>,
    num_id: Option<String>,
    level: Option<u8>,
    outline: Option<u8>,
    title: bool,
}

/// The last number given at each level of each list.
#[derive(Debug, Default)]
struct Counters {
    numbers: HashMap<String, Vec<u64>>,
}

impl ParagraphProperties {
    /// The styles this paragraph's style is based on, itself first (at
    /// most 16 deep: a cycle must not loop).
    fn style_chain<'s>(&self, styles: &'s HashMap<String, Style>) -> Vec<&'s Style> {
        let mut chain = Vec::new();
        let mut next = self.style.as_deref();
        while let Some(id) = next
            && chain.len() < 16
        {
            let Some(style) = styles.get(id) else { break };
            chain.push(style);
            next = style.based_on.as_deref();
        }
        chain
    }

    fn is_title(&self, styles: &HashMap<String, Style>) -> bool {
        self.style_chain(styles)
            .first()
            .is_some_and(|style| style.name.eq_ignore_ascii_case("title"))
            || self.style.as_deref() == Some("Title")
    }

    fn kind(
        &self,
        styles: &HashMap<String, Style>,
        numbering: &Numbering,
        counters: &mut Counters,
    ) -> ParagraphKind {
        let chain = self.style_chain(styles);
        let heading = self
            .outline
            .or_else(|| chain.iter().find_map(|style| style.outline))
            .filter(|level| *level < 9)
            .map(|level| level + 1)
            .or_else(|| chain.iter().find_map(|style| heading_level(&style.name)))
            .or_else(|| self.style.as_deref().and_then(heading_level));
        if let Some(level) = heading {
            return ParagraphKind::Heading(level);
        }
        let num_id = self
            .num_id
            .clone()
            .or_else(|| chain.iter().find_map(|style| style.num_id.clone()));
        let Some(num_id) = num_id.filter(|id| id != "0") else {
            return ParagraphKind::Body;
        };
        let depth = self.level.unwrap_or(0).min(8);
        let numbers = counters.numbers.entry(num_id.clone()).or_default();
        numbers.resize(usize::from(depth) + 1, 0);
        numbers[usize::from(depth)] += 1;
        let number = numbers[usize::from(depth)];
        ParagraphKind::ListItem {
            depth,
            number: (!numbering.is_bullet(&num_id, depth)).then_some(number),
        }
    }
}

/// `heading 2` (a style name) or `Heading2` (a style id) → 2.
fn heading_level(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    let digits = lower.strip_prefix("heading")?.trim();
    digits.parse().ok().filter(|level| (1..=9).contains(level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_levels_come_from_style_names_and_ids() {
        assert_eq!(heading_level("heading 2"), Some(2));
        assert_eq!(heading_level("Heading1"), Some(1));
        assert_eq!(heading_level("Heading Char"), None);
        assert_eq!(heading_level("Normal"), None);
    }
}
