//! XML parts of containers, read as events with entity expansion off.
//!
//! A DTD is refused outright: Office, OpenDocument and EPUB parts never
//! need one, and it is how billion-laughs and external-entity attacks
//! arrive. Only the five predefined entities and character references are
//! expanded.

use crate::ParseError;
use quick_xml::Reader;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use std::borrow::Cow;

/// What a part holds next.
pub(crate) enum XmlEvent<'a> {
    /// An element opens (empty elements open and then close).
    Open(BytesStart<'a>),
    /// An element closes.
    Close(BytesEnd<'a>),
    /// Character data, entities expanded.
    Text(Cow<'a, str>),
}

/// Reads one XML part of a container.
pub(crate) struct XmlReader<'a> {
    reader: Reader<&'a [u8]>,
    part: String,
    /// Elements whose whole content is passed over.
    skipped: &'static [&'static [u8]],
    /// How deep inside a skipped element the reader is.
    skipping: usize,
}

impl<'a> XmlReader<'a> {
    /// A reader of `bytes`, the part named `part` (for messages).
    pub fn new(bytes: &'a [u8], part: &str) -> Self {
        let mut reader = Reader::from_reader(bytes);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = false;
        Self {
            reader,
            part: part.to_owned(),
            skipped: &[],
            skipping: 0,
        }
    }

    /// The same reader, passing over elements with these local names and
    /// everything inside them (deleted revisions, comments, ...).
    pub fn skipping(self, skipped: &'static [&'static [u8]]) -> Self {
        Self { skipped, ..self }
    }

    /// The next event outside skipped elements, or `None` at the end of
    /// the part.
    pub fn next(&mut self) -> Result<Option<XmlEvent<'a>>, ParseError> {
        loop {
            let Some(event) = self.next_event()? else {
                return Ok(None);
            };
            match &event {
                XmlEvent::Open(element)
                    if self.skipping > 0 || self.skipped.contains(&local_name(element)) =>
                {
                    self.skipping += 1;
                }
                XmlEvent::Close(_) if self.skipping > 0 => self.skipping -= 1,
                _ if self.skipping > 0 => {}
                _ => return Ok(Some(event)),
            }
        }
    }

    fn next_event(&mut self) -> Result<Option<XmlEvent<'a>>, ParseError> {
        loop {
            let event = self
                .reader
                .read_event()
                .map_err(|error| self.corrupt(error))?;
            return Ok(Some(match event {
                Event::Start(start) => XmlEvent::Open(start),
                Event::End(end) => XmlEvent::Close(end),
                Event::Text(text) => {
                    XmlEvent::Text(text.decode().map_err(|error| self.corrupt(error))?)
                }
                Event::CData(data) => {
                    XmlEvent::Text(data.decode().map_err(|error| self.corrupt(error))?)
                }
                Event::GeneralRef(reference) => {
                    let expanded = match reference.resolve_char_ref() {
                        Ok(Some(character)) => character.to_string(),
                        Ok(None) => predefined(&reference.decode().unwrap_or_default())
                            .ok_or_else(|| {
                                self.corrupt(format!(
                                    "undeclared entity &{};",
                                    String::from_utf8_lossy(&reference)
                                ))
                            })?
                            .to_string(),
                        Err(error) => return Err(self.corrupt(error)),
                    };
                    XmlEvent::Text(Cow::Owned(expanded))
                }
                Event::DocType(_) => {
                    return Err(ParseError::XmlDtd(self.part.clone()));
                }
                Event::Eof => return Ok(None),
                Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => continue,
            }));
        }
    }

    fn corrupt(&self, error: impl std::fmt::Display) -> ParseError {
        ParseError::CorruptDocument(format!(
            "XML part {} is malformed at byte {}: {error}",
            self.part,
            self.reader.buffer_position()
        ))
    }
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

/// The value of the attribute whose local name (prefix ignored) is
/// `local`, entities expanded.
pub(crate) fn attribute(element: &BytesStart<'_>, local: &str) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|attribute| attribute.key.local_name().as_ref() == local.as_bytes())
        .and_then(|attribute| value(&attribute))
}

/// An attribute's value, entities expanded and whitespace normalised.
pub(crate) fn value(attribute: &quick_xml::events::attributes::Attribute<'_>) -> Option<String> {
    attribute
        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()
        .map(Cow::into_owned)
}

/// The local name of an element (`w:p` → `p`).
pub(crate) fn local_name<'e>(element: &'e BytesStart<'_>) -> &'e [u8] {
    element.local_name().into_inner()
}

/// The local name of a closing tag.
pub(crate) fn end_name<'e>(element: &'e BytesEnd<'_>) -> &'e [u8] {
    element.local_name().into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(xml: &str) -> Result<String, ParseError> {
        let mut reader = XmlReader::new(xml.as_bytes(), "part.xml");
        let mut text = String::new();
        while let Some(event) = reader.next()? {
            if let XmlEvent::Text(chunk) = event {
                text.push_str(&chunk);
            }
        }
        Ok(text)
    }

    #[test]
    fn skipped_elements_pass_over_everything_inside_them() {
        let mut reader = XmlReader::new(
            b"<p>kept <del>gone <del>deeper</del> still gone</del>kept too</p>",
            "part.xml",
        )
        .skipping(&[b"del"]);
        let mut text = String::new();
        while let Some(event) = reader.next().unwrap() {
            if let XmlEvent::Text(chunk) = event {
                text.push_str(&chunk);
            }
        }
        assert_eq!(text, "kept kept too");
    }

    #[test]
    fn predefined_and_character_entities_expand() {
        assert_eq!(
            texts("<a>x &amp; y &#233;&#x2014;</a>").unwrap(),
            "x & y é—"
        );
    }

    #[test]
    fn a_dtd_is_refused_before_any_entity_is_declared() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(
            texts(laughs).unwrap_err(),
            ParseError::XmlDtd("part.xml".into())
        );
    }

    #[test]
    fn an_undeclared_entity_is_malformed() {
        let error = texts("<a>&xxe;</a>").unwrap_err();
        assert!(matches!(error, ParseError::CorruptDocument(_)), "{error}");
    }
}
