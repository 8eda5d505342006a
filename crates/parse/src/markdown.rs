//! Markdown (CommonMark with tables, footnotes and YAML front matter):
//! headings, paragraphs, lists, code blocks and tables, without markup.

use crate::outline::DocumentBuilder;
use crate::{ParseError, text};
use docpipe_core::ParsedDocument;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

pub(crate) fn parse(bytes: &[u8], charset: Option<&str>) -> Result<ParsedDocument, ParseError> {
    if !text::looks_like_text(bytes) {
        return Err(ParseError::UnsupportedContent(
            "binary data declared as Markdown (NUL bytes or control characters)".into(),
        ));
    }
    let source = text::decode(bytes, charset);
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut walker = Walker::default();
    for event in Parser::new_ext(&source, options) {
        walker.event(event);
    }
    let title = walker
        .title
        .or_else(|| walker.builder.first_heading().map(str::to_owned));
    Ok(walker.builder.finish(title))
}

/// Where text goes while the events of one block arrive.
#[derive(Default)]
struct Walker {
    builder: DocumentBuilder,
    title: Option<String>,
    /// Inline text of the current paragraph, heading, item or cell.
    buffer: String,
    in_front_matter: bool,
    in_code: bool,
    /// Open lists: the next number of each ordered one.
    lists: Vec<Option<u64>>,
    /// Lines of the outermost open list.
    list_lines: Vec<String>,
    table: Vec<Vec<String>>,
}

impl Walker {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) if self.in_front_matter => self.front_matter(&text),
            Event::Text(text) | Event::Code(text) => self.buffer.push_str(&text),
            Event::InlineMath(text) | Event::DisplayMath(text) => self.buffer.push_str(&text),
            Event::SoftBreak | Event::HardBreak => {
                self.buffer.push(if self.in_code { '\n' } else { ' ' })
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                self.buffer.push_str(&html_text(&html));
            }
            Event::TaskListMarker(done) => self.buffer.push_str(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(_) | Event::Rule => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::MetadataBlock(_) => self.in_front_matter = true,
            Tag::CodeBlock(_) => {
                self.flush_paragraph();
                self.in_code = true;
            }
            Tag::List(first) => {
                self.flush_item();
                self.lists.push(first);
            }
            Tag::Item => self.flush_item(),
            Tag::Table(_) => self.table.clear(),
            Tag::TableHead | Tag::TableRow => self.table.push(Vec::new()),
            Tag::Heading { .. } | Tag::Paragraph | Tag::BlockQuote(_) if self.lists.is_empty() => {
                self.flush_paragraph();
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::MetadataBlock(_) => self.in_front_matter = false,
            TagEnd::Heading(level) => {
                let text = std::mem::take(&mut self.buffer);
                self.builder.heading(level as u8, &text);
            }
            TagEnd::Paragraph if self.lists.is_empty() => self.flush_paragraph(),
            TagEnd::Paragraph => self.buffer.push(' '),
            TagEnd::CodeBlock => {
                let code = std::mem::take(&mut self.buffer);
                self.builder.block(code.trim_matches('\n'));
                self.in_code = false;
            }
            TagEnd::Item => self.flush_item(),
            TagEnd::List(_) => {
                self.flush_item();
                self.lists.pop();
                if self.lists.is_empty() {
                    let lines = std::mem::take(&mut self.list_lines);
                    self.builder.block(&lines.join("\n"));
                }
            }
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.buffer);
                if let Some(row) = self.table.last_mut() {
                    row.push(cell);
                }
            }
            TagEnd::Table => {
                let rows = std::mem::take(&mut self.table);
                self.builder.table(&rows);
            }
            TagEnd::FootnoteDefinition | TagEnd::BlockQuote(_) => self.flush_paragraph(),
            _ => {}
        }
    }

    fn flush_paragraph(&mut self) {
        let text = std::mem::take(&mut self.buffer);
        self.builder.paragraph(&text);
    }

    /// Ends the text of the current list item as a line of the list,
    /// indented by depth and marked `-` or with its number.
    fn flush_item(&mut self) {
        let text = crate::collapse_whitespace(&std::mem::take(&mut self.buffer));
        let Some(depth) = self.lists.len().checked_sub(1) else {
            self.builder.paragraph(&text);
            return;
        };
        if text.is_empty() {
            return;
        }
        let marker = match self.lists.last_mut().expect("a list is open") {
            Some(number) => {
                *number += 1;
                format!("{}.", *number - 1)
            }
            None => "-".to_owned(),
        };
        self.list_lines
            .push(format!("{}{marker} {text}", "  ".repeat(depth)));
    }

    /// YAML front matter is not text; its `title:` is the title.
    fn front_matter(&mut self, yaml: &str) {
        self.title = yaml.lines().find_map(|line| {
            let value = line.strip_prefix("title:")?.trim();
            let value = value.trim_matches(['"', '\'']).trim();
            (!value.is_empty()).then(|| value.to_owned())
        });
    }
}

/// The text inside raw HTML, without its tags.
fn html_text(html: &str) -> String {
    let fragment = scraper::Html::parse_fragment(html);
    fragment.root_element().text().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "---\ntitle: Handling Errors\nauthor: zzfrontmatter\n---\n\n\
        # Exit codes\n\nA **tool** should exit with `2` on bad usage.\n\n\
        ## Messages\n\n- say what failed\n- say what to do\n  1. retry\n  2. report\n\n\
        | Code | Meaning |\n|---|---|\n| 0 | success |\n| 2 | usage |\n\n\
        ```sh\nfoo --bar\necho $?\n```\n\nSetext heading\n--------------\n\nLast <em>words</em>.\n";

    #[test]
    fn structure_is_kept_and_markup_dropped() {
        let document = parse(NOTE.as_bytes(), None).unwrap();
        assert_eq!(document.title.as_deref(), Some("Handling Errors"));
        let text = &document.text;
        assert!(
            text.contains("A tool should exit with 2 on bad usage."),
            "{text}"
        );
        assert!(
            text.contains("- say what failed\n- say what to do\n  1. retry\n  2. report"),
            "{text}"
        );
        assert!(
            text.contains("| Code | Meaning |\n| --- | --- |\n| 0 | success |"),
            "{text}"
        );
        assert!(text.contains("foo --bar\necho $?"), "{text}");
        assert!(text.contains("Last words."), "{text}");
        assert!(
            !text.contains("zzfrontmatter") && !text.contains("**"),
            "{text}"
        );
        let path = |needle: &str| {
            let at = text.find(needle).unwrap();
            document.block_at(at).unwrap().heading_path.clone()
        };
        assert_eq!(path("say what failed"), ["Exit codes", "Messages"]);
        assert_eq!(path("Last words"), ["Exit codes", "Setext heading"]);
    }
}
