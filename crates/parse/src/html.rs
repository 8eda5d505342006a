//! HTML: decode the charset, drop page furniture, keep headings and text.

use crate::outline::DocumentBuilder;
use crate::{ParseError, collapse_whitespace};
use docpipe_core::ParsedDocument;
use encoding_rs::Encoding;
use scraper::{Html, Node};

/// Elements whose content is never document text.
const SKIPPED: [&str; 11] = [
    "script", "style", "nav", "footer", "noscript", "template", "svg", "head", "iframe", "button",
    "select",
];

/// Table cells: their texts are words apart, however the markup runs them
/// together (`<td>1</td><td>minor problems</td>`, `<td><a>Home</a></td><td><a>Up</a></td>`).
const CELLS: [&str; 2] = ["td", "th"];

/// Elements that end a run of inline text.
const BLOCKS: [&str; 32] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
];

pub(crate) fn parse(
    bytes: &[u8],
    declared_charset: Option<&str>,
    max_depth: usize,
) -> Result<ParsedDocument, ParseError> {
    let text = decode(bytes, declared_charset);
    // html5ever's tree building costs O(depth) per element, so deeply
    // nested hostile input would take hours; refuse it before parsing.
    if let Some(depth) = nesting_beyond(&text, max_depth) {
        return Err(ParseError::TooDeeplyNested {
            depth,
            limit: max_depth,
        });
    }
    let html = Html::parse_document(&text);
    let mut walker = Walker::default();
    // An explicit stack (via `traverse`) rather than recursion: deeply
    // nested hostile HTML must not overflow the thread's stack.
    let mut skip_depth = 0usize;
    let mut heading: Option<u8> = None;
    let mut preformatted = 0usize;
    for edge in html.root_element().traverse() {
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                Node::Element(element) => {
                    let name = element.name();
                    if skip_depth > 0 || SKIPPED.contains(&name) || element.attr("hidden").is_some()
                    {
                        skip_depth += 1;
                        continue;
                    }
                    if BLOCKS.contains(&name) {
                        walker.flush(heading);
                    }
                    if CELLS.contains(&name) {
                        walker.buffer.push(' ');
                    }
                    if let Some(level) = heading_level(name) {
                        heading = Some(level);
                    }
                    if name == "pre" {
                        preformatted += 1;
                    }
                }
                Node::Text(text) if skip_depth == 0 => {
                    walker.buffer.push_str(text);
                    walker.preformatted = preformatted > 0;
                }
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => {
                if let Node::Element(element) = node.value() {
                    let name = element.name();
                    if skip_depth > 0 {
                        skip_depth -= 1;
                        continue;
                    }
                    if BLOCKS.contains(&name) {
                        walker.flush(heading);
                    }
                    if CELLS.contains(&name) {
                        walker.buffer.push(' ');
                    }
                    if heading_level(name).is_some() {
                        heading = None;
                    }
                    if name == "pre" {
                        preformatted -= 1;
                    }
                }
            }
        }
    }
    walker.flush(heading);
    let title = html
        .select(&selector("title"))
        .next()
        .map(|title| collapse_whitespace(&title.text().collect::<String>()))
        .filter(|title| !title.is_empty())
        .or_else(|| walker.builder.first_heading().map(str::to_owned));
    Ok(walker.builder.finish(title))
}

/// Elements that never contain anything.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
/// Elements whose content is text up to their end tag.
const RAW_TEXT: [&str; 8] = [
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];
/// Start tags that implicitly close an open `<p>` (HTML's "closes a p
/// element in button scope").
const CLOSES_P: [&str; 30] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "ul",
];

/// The open elements a start tag implicitly closes, and the elements that
/// stop the search for them (HTML's scopes, simplified).
fn implied_ends(name: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match name {
        "li" => Some((&["li"], &["ul", "ol"])),
        "dt" | "dd" => Some((&["dt", "dd"], &["dl"])),
        "tr" => Some((&["tr"], &["table", "tbody", "thead", "tfoot"])),
        "td" | "th" => Some((&["td", "th"], &["tr", "table"])),
        "option" => Some((&["option"], &["select"])),
        _ => None,
    }
}

/// Pops up to and including the nearest open element in `targets`, unless
/// an element in `boundaries` is nearer.
fn close_implied(open: &mut Vec<String>, targets: &[&str], boundaries: &[&str]) {
    let nearest = open.iter().rposition(|element| {
        targets.contains(&element.as_str()) || boundaries.contains(&element.as_str())
    });
    if let Some(index) = nearest.filter(|&index| targets.contains(&open[index].as_str())) {
        open.truncate(index);
    }
}

/// Estimates element nesting in one linear pass over the markup, the way a
/// browser would build it (void elements, raw text, implied end tags), and
/// returns the depth reached if it exceeds `limit`.
fn nesting_beyond(text: &str, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open: Vec<String> = Vec::new();
    let mut at = 0;
    while let Some(offset) = memchr(b'<', &bytes[at..]) {
        at += offset + 1;
        let rest = &text[at..];
        if rest.starts_with("!--") {
            at += rest.find("-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        if rest.starts_with(['!', '?']) {
            at += rest.find('>').map_or(rest.len(), |end| end + 1);
            continue;
        }
        let closing = rest.starts_with('/');
        let name: String = rest[usize::from(closing)..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let tag_end = rest.find('>').map_or(rest.len(), |end| end + 1);
        at += tag_end;
        if closing {
            if let Some(position) = open.iter().rposition(|element| *element == name) {
                open.truncate(position);
            }
            continue;
        }
        if RAW_TEXT.contains(&name.as_str()) {
            at += end_tag_offset(&bytes[at..], name.as_bytes());
            continue;
        }
        if VOID.contains(&name.as_str()) || rest[..tag_end].ends_with("/>") {
            continue;
        }
        if CLOSES_P.contains(&name.as_str()) {
            close_implied(&mut open, &["p"], &["button", "table", "td", "th", "html"]);
        }
        if let Some((targets, boundaries)) = implied_ends(&name) {
            close_implied(&mut open, targets, boundaries);
        }
        open.push(name);
        if open.len() > limit {
            return Some(open.len());
        }
    }
    None
}

/// Offset of the first `</name` (any case) in `bytes`, or its length.
fn end_tag_offset(bytes: &[u8], name: &[u8]) -> usize {
    let mut at = 0;
    while let Some(offset) = memchr(b'<', &bytes[at..]) {
        at += offset;
        let candidate = &bytes[at + 1..];
        if candidate.first() == Some(&b'/')
            && candidate.len() > name.len()
            && candidate[1..=name.len()].eq_ignore_ascii_case(name)
        {
            return at;
        }
        at += 1;
    }
    bytes.len()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

#[derive(Default)]
struct Walker {
    builder: DocumentBuilder,
    buffer: String,
    preformatted: bool,
}

impl Walker {
    /// Ends the current run of text: a heading updates the heading path, any
    /// other text becomes a block under it.
    fn flush(&mut self, heading: Option<u8>) {
        let raw = std::mem::take(&mut self.buffer);
        let text = if self.preformatted {
            raw.trim_matches('\n').to_owned()
        } else {
            collapse_whitespace(&raw)
        };
        if text.trim().is_empty() {
            return;
        }
        match heading {
            Some(level) => self.builder.heading(level, &text),
            None => self.builder.block(&text),
        }
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name.as_bytes() {
        [b'h', level @ b'1'..=b'6'] => Some(level - b'0'),
        _ => None,
    }
}

fn selector(css: &str) -> scraper::Selector {
    scraper::Selector::parse(css).expect("static selectors are valid")
}

/// Decodes by, in order: the declared charset, a BOM, a `<meta charset>` in
/// the first KiB, UTF-8 if valid, else windows-1252 (what browsers assume for
/// undeclared legacy pages).
fn decode(bytes: &[u8], declared_charset: Option<&str>) -> String {
    let declared = declared_charset.and_then(|label| Encoding::for_label(label.as_bytes()));
    let encoding = declared
        .or_else(|| Encoding::for_bom(bytes).map(|(encoding, _)| encoding))
        .or_else(|| meta_charset(bytes))
        .unwrap_or_else(|| {
            if std::str::from_utf8(bytes).is_ok() {
                encoding_rs::UTF_8
            } else {
                encoding_rs::WINDOWS_1252
            }
        });
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned()
}

fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let label: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    Encoding::for_label(label.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!DOCTYPE html><html><head><title>Bees  in Winter</title>
        <style>p { color: red }</style><script>var zzscriptnoise = 1;</script></head>
        <body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
        <h1>Beekeeping</h1><p>Bees   cluster
        for warmth.</p><h2>Feeding</h2><p>Give <b>fondant</b> in January.</p>
        <ul><li>Check weight</li><li>Keep mice out</li></ul>
        <h2>Ventilation</h2><div>Damp kills more colonies than cold.</div>
        <footer>Copyright 2024 zzfooternoise</footer></body></html>"#;

    #[test]
    fn keeps_text_and_headings_and_drops_furniture() {
        let document = parse(PAGE.as_bytes(), None, 64).unwrap();
        assert_eq!(document.title.as_deref(), Some("Bees in Winter"));
        assert!(document.text.contains("Bees cluster for warmth."));
        assert!(document.text.contains("Give fondant in January."));
        for noise in ["zzscriptnoise", "zzfooternoise", "Home", "color: red"] {
            assert!(
                !document.text.contains(noise),
                "{noise} leaked: {}",
                document.text
            );
        }
    }

    #[test]
    fn blocks_carry_their_heading_path() {
        let document = parse(PAGE.as_bytes(), None, 64).unwrap();
        let block = |needle: &str| {
            let offset = document.text.find(needle).unwrap();
            document.block_at(offset).unwrap().heading_path.clone()
        };
        assert_eq!(block("fondant"), ["Beekeeping", "Feeding"]);
        assert_eq!(block("Keep mice out"), ["Beekeeping", "Feeding"]);
        assert_eq!(block("Damp kills"), ["Beekeeping", "Ventilation"]);
    }

    #[test]
    fn decodes_legacy_charsets_from_meta() {
        let mut page = b"<html><head><meta charset=\"windows-1252\"></head><body><p>caf".to_vec();
        page.extend_from_slice(&[0xE9, b' ', 0x96, b' ', b'x']);
        page.extend_from_slice(b"</p></body></html>");
        let document = parse(&page, None, 64).unwrap();
        assert!(document.text.contains("café – x"), "{}", document.text);
    }

    #[test]
    fn nesting_within_the_limit_parses() {
        let page = format!(
            "<html><body>{}deep{}</body></html>",
            "<div>".repeat(500),
            "</div>".repeat(500)
        );
        assert!(
            parse(page.as_bytes(), None, 512)
                .unwrap()
                .text
                .contains("deep")
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let page = format!("<html><body>{}", "<div><span>".repeat(100_000));
        let started = std::time::Instant::now();
        let error = parse(page.as_bytes(), None, 512).unwrap_err();
        assert!(
            matches!(error, ParseError::TooDeeplyNested { limit: 512, .. }),
            "{error}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "refused quickly"
        );
    }

    #[test]
    fn ordinary_markup_does_not_look_deep() {
        // Unclosed <p> and <li>, void elements, self-closing tags, comments
        // and scripts with markup inside all keep the estimate shallow.
        let item = "<p>para<br><img src=x><li>item<li>item<hr/><!-- <div><div> --><script>if (a<b) { '<div>' }</script>";
        let page = format!("<html><body><ul>{}</ul></body></html>", item.repeat(2_000));
        assert_eq!(nesting_beyond(&page, 8), None);
    }
}
