//! Content sniffing: what the bytes are, whatever anybody declared.

use docpipe_core::DocumentFormat;

/// How far into a file the `%PDF-` marker may appear (the PDF spec tolerates
/// leading junk; readers commonly scan the first kilobyte).
const PDF_MARKER_WINDOW: usize = 1024;

/// The signatures that open PNG, JPEG and TIFF files.
const IMAGE_SIGNATURES: [&[u8]; 4] = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\0", b"MM\0*"];

/// Sniffs PDF (`%PDF-` in the first KiB), an image (PNG, JPEG or TIFF
/// signature) or HTML (markup after an optional BOM and whitespace, and no
/// NUL bytes). Returns why otherwise.
pub fn sniff_format(bytes: &[u8]) -> Result<DocumentFormat, &'static str> {
    if bytes.is_empty() {
        return Err("the document is empty (0 bytes)");
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
    if looks_like_html(bytes) {
        return Ok(DocumentFormat::Html);
    }
    Err("no %PDF- marker, image signature or HTML markup at the start")
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

/// Whether bytes declared to be HTML may be: text (no NUL byte) with a tag
/// near the start, even if something else comes first.
pub(crate) fn plausibly_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    !head.contains(&0)
        && head
            .windows(2)
            .any(|pair| pair[0] == b'<' && (pair[1].is_ascii_alphabetic() || pair[1] == b'!'))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
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
    fn rejects_empty_and_binary() {
        assert!(sniff_format(b"").is_err());
        assert!(sniff_format(b"<html>\0\0\0").is_err());
        assert!(sniff_format(b"just some words").is_err());
    }
}
