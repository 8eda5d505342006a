//! EPUB books: the chapters of the spine in reading order, each read as
//! XHTML with its headings; the title from the package metadata. Files
//! the spine does not list (stylesheets, unlisted pages) are not read.

use crate::archive::{Archive, resolve};
use crate::outline::DocumentBuilder;
use crate::xml::{XmlEvent, XmlReader, attribute, local_name};
use crate::{ParseError, html};
use docpipe_core::ParsedDocument;
use std::collections::HashMap;

const WHAT: &str = "an EPUB book";

pub(crate) fn parse(
    archive: &mut Archive<'_>,
    max_html_depth: usize,
) -> Result<ParsedDocument, ParseError> {
    let package = package_path(archive)?;
    if let Some(encryption) = archive.read("META-INF/encryption.xml")?
        && encrypts_content(&encryption)?
    {
        return Err(ParseError::EncryptedDocument("an EPUB book under DRM"));
    }
    let opf = archive.require(&package)?;
    let mut reader = XmlReader::new(&opf, &package);
    let mut manifest = HashMap::new();
    let mut spine = Vec::new();
    let mut title: Option<String> = None;
    let mut in_title = false;
    while let Some(event) = reader.next()? {
        match event {
            XmlEvent::Open(element) => match local_name(&element) {
                b"item" => {
                    if let (Some(id), Some(href)) =
                        (attribute(&element, "id"), attribute(&element, "href"))
                    {
                        manifest.insert(id, resolve(&package, &percent_decoded(&href)));
                    }
                }
                b"itemref" if attribute(&element, "linear").as_deref() != Some("no") => {
                    spine.extend(attribute(&element, "idref"));
                }
                b"title" if title.is_none() => in_title = true,
                _ => {}
            },
            XmlEvent::Close(_) => in_title = false,
            XmlEvent::Text(text) if in_title => {
                title.get_or_insert_with(String::new).push_str(&text);
            }
            XmlEvent::Text(_) => {}
        }
    }
    let mut builder = DocumentBuilder::default();
    for id in spine {
        let Some(path) = manifest.get(&id) else {
            continue;
        };
        let Some(chapter) = archive.read(path)? else {
            continue;
        };
        match html::parse(&chapter, None, max_html_depth) {
            Ok(chapter) => builder.append(&chapter),
            Err(ParseError::NoText(_)) => {}
            Err(error) => return Err(error),
        }
    }
    let title = title.or_else(|| builder.first_heading().map(str::to_owned));
    Ok(builder.finish(title))
}

/// Where `META-INF/container.xml` says the package document is.
fn package_path(archive: &mut Archive<'_>) -> Result<String, ParseError> {
    let container = archive.require("META-INF/container.xml")?;
    let mut reader = XmlReader::new(&container, "META-INF/container.xml");
    while let Some(event) = reader.next()? {
        if let XmlEvent::Open(element) = event
            && local_name(&element) == b"rootfile"
            && let Some(path) = attribute(&element, "full-path")
        {
            return Ok(path);
        }
    }
    Err(ParseError::CorruptDocument(format!(
        "{WHAT} whose META-INF/container.xml names no package document"
    )))
}

/// Whether `META-INF/encryption.xml` encrypts more than fonts (which
/// EPUB obfuscates routinely): DRM.
fn encrypts_content(encryption: &[u8]) -> Result<bool, ParseError> {
    let mut reader = XmlReader::new(encryption, "META-INF/encryption.xml");
    while let Some(event) = reader.next()? {
        if let XmlEvent::Open(element) = event
            && local_name(&element) == b"CipherReference"
            && let Some(uri) = attribute(&element, "URI")
        {
            let uri = uri.to_ascii_lowercase();
            if [".xhtml", ".html", ".htm", ".opf"]
                .iter()
                .any(|extension| uri.ends_with(extension))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `%20` and friends in manifest hrefs, as the zip names them.
fn percent_decoded(href: &str) -> String {
    let href = href.split('#').next().unwrap_or(href);
    let bytes = href.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_are_percent_decoded_without_fragments() {
        assert_eq!(
            percent_decoded("text/chapter%201.xhtml#p3"),
            "text/chapter 1.xhtml"
        );
        assert_eq!(percent_decoded("a%2"), "a%2");
    }
}
