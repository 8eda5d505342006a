//! PowerPoint presentations (PresentationML): one page per slide in the
//! presentation's order, the slide title as its heading, the text of its
//! shapes and tables, then its speaker notes.

use super::{element_text, main_part, relationship_id, relationships};
use crate::archive::Archive;
use crate::outline::DocumentBuilder;
use crate::xml::{XmlEvent, XmlReader, attribute, end_name, local_name};
use crate::{ParseError, collapse_whitespace};
use docpipe_core::ParsedDocument;

/// The heading speaker notes sit under, below the slide's title.
const NOTES_HEADING: &str = "Speaker notes";

pub(crate) fn parse(archive: &mut Archive<'_>) -> Result<ParsedDocument, ParseError> {
    let main = main_part(archive, "a PowerPoint presentation (PPTX)")?;
    let targets = relationships(archive, &main)?;
    let presentation = archive.require(&main)?;
    let mut slides = Vec::new();
    let mut reader = XmlReader::new(&presentation, &main);
    while let Some(event) = reader.next()? {
        if let XmlEvent::Open(element) = event
            && local_name(&element) == b"sldId"
            && let Some(id) = relationship_id(&element)
            && let Some(target) = targets.iter().find(|target| target.id == id)
        {
            slides.push(target.target.clone());
        }
    }
    let mut builder = DocumentBuilder::default();
    let mut first_title = None;
    for (index, slide) in slides.iter().enumerate() {
        builder.start_page(index as u32 + 1);
        let Some(bytes) = archive.read(slide)? else {
            continue;
        };
        let shapes = read_shapes(&bytes, slide)?;
        let title = shapes
            .iter()
            .filter(|shape| shape.is_title)
            .map(|shape| shape.paragraphs.join(" "))
            .next();
        if let Some(title) = &title {
            builder.heading(1, title);
            first_title.get_or_insert_with(|| title.clone());
        }
        for shape in shapes.iter().filter(|shape| !shape.is_title) {
            match &shape.table {
                Some(rows) => builder.table(rows),
                None => builder.block(&shape.paragraphs.join("\n")),
            }
        }
        let notes_part = relationships(archive, slide)?
            .into_iter()
            .find(|relationship| relationship.is("notesSlide"));
        if let Some(notes_part) = notes_part
            && let Some(bytes) = archive.read(&notes_part.target)?
        {
            let notes: Vec<String> = read_shapes(&bytes, &notes_part.target)?
                .into_iter()
                .filter(|shape| shape.is_notes_body)
                .flat_map(|shape| shape.paragraphs)
                .collect();
            if !notes.is_empty() {
                builder.heading(2, NOTES_HEADING);
                builder.block(&notes.join("\n"));
            }
        }
    }
    let title = element_text(archive, "docProps/core.xml", b"title")?.or(first_title);
    Ok(builder.finish(title))
}

/// The text of one shape or graphic frame of a slide.
#[derive(Debug, Default)]
struct Shape {
    is_title: bool,
    is_notes_body: bool,
    paragraphs: Vec<String>,
    table: Option<Vec<Vec<String>>>,
}

/// The shapes of a slide (or notes slide) in drawing order.
fn read_shapes(bytes: &[u8], part: &str) -> Result<Vec<Shape>, ParseError> {
    let mut reader = XmlReader::new(bytes, part);
    let mut shapes = Vec::new();
    let mut shape: Option<Shape> = None;
    let mut paragraph = String::new();
    let mut in_text = false;
    let mut cell: Option<String> = None;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                b"sp" | b"graphicFrame" => shape = Some(Shape::default()),
                b"ph" => {
                    if let Some(shape) = shape.as_mut() {
                        let kind = attribute(&element, "type");
                        shape.is_title = matches!(kind.as_deref(), Some("title" | "ctrTitle"));
                        shape.is_notes_body = kind.as_deref() == Some("body");
                    }
                }
                b"tbl" => {
                    if let Some(shape) = shape.as_mut() {
                        shape.table = Some(Vec::new());
                    }
                }
                b"tr" => {
                    if let Some(rows) = shape.as_mut().and_then(|shape| shape.table.as_mut()) {
                        rows.push(Vec::new());
                    }
                }
                b"tc" => cell = Some(String::new()),
                b"p" => paragraph.clear(),
                b"t" => in_text = true,
                b"br" => paragraph.push(' '),
                _ => {}
            },
            XmlEvent::Close(element) => match end_name(&element) {
                b"t" => in_text = false,
                b"p" => {
                    let text = collapse_whitespace(&paragraph);
                    match (cell.as_mut(), shape.as_mut()) {
                        (Some(cell), _) => {
                            cell.push(' ');
                            cell.push_str(&text);
                        }
                        (None, Some(shape)) if !text.is_empty() => shape.paragraphs.push(text),
                        _ => {}
                    }
                }
                b"tc" => {
                    if let (Some(text), Some(rows)) = (
                        cell.take(),
                        shape
                            .as_mut()
                            .and_then(|shape| shape.table.as_mut())
                            .and_then(|rows| rows.last_mut()),
                    ) {
                        rows.push(text);
                    }
                }
                b"sp" | b"graphicFrame" => shapes.extend(shape.take()),
                _ => {}
            },
            XmlEvent::Text(text) if in_text => paragraph.push_str(&text),
            XmlEvent::Text(_) => {}
        }
    }
    Ok(shapes)
}
