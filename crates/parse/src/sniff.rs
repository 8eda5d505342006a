//! Content sniffing: what the bytes are, whatever anybody declared.

use crate::{ParseError, text};
use docpipe_core::DocumentFormat;
use std::io::{Cursor, Read as _};

/// How far into a file the `%PDF-` marker may appear (the PDF spec tolerates
/// leading junk; readers commonly scan the first kilobyte).
const PDF_MARKER_WINDOW: usize = 1024;

/// The signatures that open PNG, JPEG and TIFF files.
const IMAGE_SIGNATURES: [&[u8]; 4] = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\0", b"MM\0*"];

/// The signature of OLE compound files: legacy binary Office files, and
/// Office files encrypted with a password.
const COMPOUND_FILE_SIGNATURE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

/// How much of `[Content_Types].xml` or `mimetype` sniffing reads.
const CONTAINER_HINT_BYTES: u64 = 1 << 20;

/// Sniffs what the bytes are: PDF (`%PDF-` in the first KiB), an image
/// (PNG, JPEG or TIFF signature), RTF (`{\rtf`), a zip container by its
/// `mimetype` entry (OpenDocument, EPUB) or content types (Office Open
/// XML), HTML (markup at the start), else text (no NUL byte, hardly any
/// control characters). Says why otherwise: an encrypted Office file, a
/// legacy binary one, a broken zip, or bytes of no format docpipe reads.
pub fn sniff_format(bytes: &[u8]) -> Result<DocumentFormat, ParseError> {
    let unsupported = |reason: &str| Err(ParseError::UnsupportedContent(reason.into()));
    if bytes.is_empty() {
        return unsupported("the document is empty (0 bytes)");
    }
    if IMAGE_SIGNATURES
        .iter()
        .any(|signature| bytes.starts_with(signature))
    {
        return Ok(DocumentFormat::Image);
    }
    let window = &bytes[..bytes.len().min(PDF_MARKER_WINDOW)];
    if window.windows(5).any(|candidate| candidate == b"%PDF-") {
        return Ok(DocumentFormat::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return container_format(bytes);
    }
    if bytes.starts_with(COMPOUND_FILE_SIGNATURE) {
        return Err(compound_file(bytes));
    }
    if bytes.trim_ascii_start().starts_with(b"{\\rtf") {
        return Ok(DocumentFormat::Rtf);
    }
    // Real pages start with a stray header line (`Content-type: ...`)
    // or a bare fragment; HTML elements near the start say what it is.
    if looks_like_html(bytes) || (text::looks_like_text(bytes) && has_html_elements(bytes)) {
        return Ok(DocumentFormat::Html);
    }
    if text::looks_like_text(bytes) {
        return Ok(DocumentFormat::Text);
    }
    unsupported("binary data with no signature of a format docpipe reads, and not text")
}

/// The format of a zip container: what its `mimetype` entry says
/// (OpenDocument, EPUB), else the main part its content types name
/// (Office Open XML).
fn container_format(bytes: &[u8]) -> Result<DocumentFormat, ParseError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| {
        ParseError::CorruptDocument(format!("a zip file whose directory is unreadable: {error}"))
    })?;
    let mut hint = |name: &str| -> Option<String> {
        let entry = zip.by_name(name).ok()?;
        let mut text = String::new();
        entry
            .take(CONTAINER_HINT_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    };
    if let Some(mimetype) = hint("mimetype") {
        return match mimetype.trim() {
            "application/epub+zip" => Ok(DocumentFormat::Epub),
            media_type => DocumentFormat::from_media_type(media_type)
                .filter(|format| matches!(format, DocumentFormat::Odt | DocumentFormat::Ods | DocumentFormat::Odp))
                .ok_or_else(|| {
                    ParseError::UnsupportedContent(format!(
                        "a zip container of type {media_type:?}; docpipe reads OpenDocument text, spreadsheets and presentations, and EPUB"
                    ))
                }),
        };
    }
    if let Some(types) = hint("[Content_Types].xml") {
        const MAIN_PARTS: [(&str, DocumentFormat); 3] = [
            ("wordprocessingml.document.main+xml", DocumentFormat::Docx),
            ("presentationml.presentation.main+xml", DocumentFormat::Pptx),
            ("spreadsheetml.sheet.main+xml", DocumentFormat::Xlsx),
        ];
        // Templates and macro-enabled variants name their main parts
        // differently (`...template.main+xml`, `ms-word.document.macroEnabled`).
        const VARIANTS: [(&str, DocumentFormat); 6] = [
            ("wordprocessingml.template.main+xml", DocumentFormat::Docx),
            (
                "ms-word.document.macroEnabled.main+xml",
                DocumentFormat::Docx,
            ),
            ("presentationml.slideshow.main+xml", DocumentFormat::Pptx),
            (
                "ms-powerpoint.presentation.macroEnabled.main+xml",
                DocumentFormat::Pptx,
            ),
            ("spreadsheetml.template.main+xml", DocumentFormat::Xlsx),
            ("ms-excel.sheet.macroEnabled.main+xml", DocumentFormat::Xlsx),
        ];
        if let Some((_, format)) = MAIN_PARTS
            .iter()
            .chain(&VARIANTS)
            .find(|(main, _)| types.contains(main))
        {
            return Ok(*format);
        }
        return Err(ParseError::UnsupportedContent(
            "an Office Open XML package that is not a Word, PowerPoint or Excel file".into(),
        ));
    }
    Err(ParseError::UnsupportedContent(
        "a zip archive that is not an Office, OpenDocument or EPUB file".into(),
    ))
}

/// Why an OLE compound file is refused: Office encrypts password-protected
/// DOCX/XLSX/PPTX into one; otherwise it is a legacy binary file.
fn compound_file(bytes: &[u8]) -> ParseError {
    match cfb::CompoundFile::open(Cursor::new(bytes)) {
        Ok(file) if file.exists("/EncryptedPackage") || file.exists("/EncryptionInfo") => {
            ParseError::EncryptedDocument("an Office document protected by a password")
        }
        Ok(_) => ParseError::UnsupportedContent(
            "a legacy binary Office file (.doc, .xls, .ppt); save it as DOCX, XLSX or PPTX".into(),
        ),
        Err(error) => ParseError::CorruptDocument(format!(
            "an OLE compound file (legacy or encrypted Office) that is unreadable: {error}"
        )),
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    if head.contains(&0) {
        return false;
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = head[start..].to_ascii_lowercase();
    const OPENINGS: [&[u8]; 7] = [
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<!--",
        b"<?xml",
        b"<meta",
    ];
    OPENINGS.iter().any(|opening| head.starts_with(opening))
        || (head.starts_with(b"<") && (contains(&head, b"<p") || contains(&head, b"<div")))
}

/// Whether the first 4 KiB open an element only HTML has (`<html`,
/// `<body`, `<table`, `<div`, `<p>`, a doctype).
fn has_html_elements(bytes: &[u8]) -> bool {
    let head = bytes[..bytes.len().min(4096)].to_ascii_lowercase();
    const ELEMENTS: [&[u8]; 8] = [
        b"<!doctype html",
        b"<html",
        b"<head>",
        b"<body",
        b"<table",
        b"<div",
        b"<p>",
        b"<p ",
    ];
    ELEMENTS.iter().any(|element| contains(&head, element))
}

/// Whether bytes declared to be HTML may be: text (no NUL byte) with a tag
/// near the start, even if something else comes first.
pub(crate) fn plausibly_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    !head.contains(&0)
        && head
            .windows(2)
            .any(|pair| pair[0] == b'<' && (pair[1].is_ascii_alphabetic() || pair[1] == b'!'))
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_pdf_even_after_leading_junk() {
        assert_eq!(sniff_format(b"%PDF-1.7\n..."), Ok(DocumentFormat::Pdf));
        assert_eq!(sniff_format(b"\r\n\r\n%PDF-1.4"), Ok(DocumentFormat::Pdf));
    }

    #[test]
    fn sniffs_html_with_bom_and_whitespace() {
        assert_eq!(
            sniff_format(b"\xEF\xBB\xBF  \n<!DOCTYPE html><html></html>"),
            Ok(DocumentFormat::Html)
        );
        assert_eq!(sniff_format(b"<p>fragment</p>"), Ok(DocumentFormat::Html));
    }

    #[test]
    fn markup_after_a_header_line_or_a_bare_fragment_may_be_html() {
        assert!(plausibly_html(
            b"Content-type: text/html\n\n<html><p>x</p></html>"
        ));
        assert!(plausibly_html(b"<table><tr><td>x</td></tr></table>"));
        assert!(!plausibly_html(b"just some words"));
        assert!(!plausibly_html(b"<html>\0\0"));
    }

    #[test]
    fn rejects_empty_and_binary_but_reads_text() {
        assert!(sniff_format(b"").is_err());
        assert!(sniff_format(b"<html>\0\0\0").is_err());
        assert_eq!(sniff_format(b"just some words"), Ok(DocumentFormat::Text));
        assert_eq!(
            sniff_format(b"  {\\rtf1\\ansi hi}"),
            Ok(DocumentFormat::Rtf)
        );
    }

    #[test]
    fn a_broken_zip_is_corrupt_and_a_plain_one_unsupported() {
        let error = sniff_format(b"PK\x03\x04 truncated").unwrap_err();
        assert!(matches!(error, ParseError::CorruptDocument(_)), "{error}");
        let error = sniff_format(COMPOUND_FILE_SIGNATURE).unwrap_err();
        assert!(matches!(error, ParseError::CorruptDocument(_)), "{error}");
    }
}
