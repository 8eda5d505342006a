//! Plain text: decode its charset (declared, a BOM, UTF-8, else detected),
//! refuse binary, and keep paragraphs, form-feed pages and a title line.

use crate::ParseError;
use crate::outline::DocumentBuilder;
use docpipe_core::ParsedDocument;
use encoding_rs::Encoding;

/// How much of a file sniffing looks at.
const SNIFF_WINDOW: usize = 8192;
/// The most control characters (besides tab, line feed, carriage return
/// and form feed) text may have per thousand characters.
const MAX_CONTROLS_PER_MILLE: usize = 5;
/// The longest first line taken for a title.
const MAX_TITLE_CHARS: usize = 120;

/// Decodes text by, in order: the declared charset, a BOM, UTF-8 if the
/// bytes are valid UTF-8, else the charset chardetng guesses.
pub(crate) fn decode(bytes: &[u8], declared_charset: Option<&str>) -> String {
    let encoding = declared_charset
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| Encoding::for_bom(bytes).map(|(encoding, _)| encoding))
        .unwrap_or_else(|| {
            if std::str::from_utf8(bytes).is_ok() {
                encoding_rs::UTF_8
            } else {
                let mut detector =
                    chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
                detector.feed(bytes, true);
                detector.guess(None, chardetng::Utf8Detection::Allow)
            }
        });
    encoding.decode(bytes).0.into_owned()
}

/// Whether the bytes are text a person could read: UTF-16 with a BOM, or
/// no NUL byte and hardly any control characters in the first 8 KiB.
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    if matches!(Encoding::for_bom(bytes), Some((encoding, _)) if encoding != encoding_rs::UTF_8) {
        return true;
    }
    let head = &bytes[..bytes.len().min(SNIFF_WINDOW)];
    if head.contains(&0) {
        return false;
    }
    let controls = head
        .iter()
        .filter(|&&byte| byte < 0x20 && !matches!(byte, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    controls * 1000 <= head.len() * MAX_CONTROLS_PER_MILLE
}

pub(crate) fn parse(bytes: &[u8], charset: Option<&str>) -> Result<ParsedDocument, ParseError> {
    if !looks_like_text(bytes) {
        return Err(ParseError::UnsupportedContent(
            "binary data declared as text (NUL bytes or control characters)".into(),
        ));
    }
    let text = decode(bytes, charset)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let text = text.trim_start_matches('\u{feff}');
    let mut builder = DocumentBuilder::default();
    let paged = text.contains('\x0c');
    let mut title = None;
    let mut first = true;
    for (index, page) in text.split('\x0c').enumerate() {
        if paged {
            builder.start_page(index as u32 + 1);
        }
        let paragraphs = page.split("\n\n").map(str::trim);
        for paragraph in paragraphs.filter(|paragraph| !paragraph.is_empty()) {
            if std::mem::take(&mut first) && is_title_line(paragraph) {
                title = Some(paragraph.to_owned());
                builder.heading(1, paragraph);
            } else {
                builder.paragraph(paragraph);
            }
        }
    }
    Ok(builder.finish(title))
}

/// A first paragraph of one short line that does not end a sentence.
fn is_title_line(paragraph: &str) -> bool {
    !paragraph.contains('\n')
        && paragraph.chars().count() <= MAX_TITLE_CHARS
        && !paragraph.ends_with(['.', ',', ';', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeclared_legacy_text_is_detected_and_decoded() {
        let mut bytes = b"Caf\xe9 Menu\n\nOur cr\xe8me br\xfbl\xe9e costs 4 \x80 \x96 ".to_vec();
        bytes.extend_from_slice(b"made fresh each morning with vanilla from the market.\n");
        let document = parse(&bytes, None).unwrap();
        assert_eq!(document.title.as_deref(), Some("Café Menu"));
        assert!(
            document.text.contains("Our crème brûlée costs 4 € – made"),
            "{}",
            document.text
        );
    }

    #[test]
    fn paragraphs_join_their_lines_and_form_feeds_turn_pages() {
        let document = parse(
            b"A plain note that is a sentence.\nIt wraps here.\n\nSecond.\x0cThird page.",
            None,
        )
        .unwrap();
        assert_eq!(document.title, None);
        assert!(
            document
                .text
                .starts_with("A plain note that is a sentence. It wraps here.")
        );
        let third = document.text.find("Third").unwrap();
        assert_eq!(document.block_at(third).unwrap().page, Some(2));
        assert_eq!(document.page_count, Some(2));
    }

    #[test]
    fn binary_is_not_text_but_utf16_is() {
        assert!(!looks_like_text(b"\x00\x01\x02binary"));
        assert!(!looks_like_text(&[0x01; 100]));
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("hello".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert!(looks_like_text(&utf16));
        assert_eq!(parse(&utf16, None).unwrap().text, "hello");
    }
}
