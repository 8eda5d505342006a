//! PDF: an engine reads each page's lines in reading order, then one
//! assembly turns them into a document — running headers and footers
//! dropped, lines joined into paragraphs, headings and the title found.
//!
//! Two engines: PDFium (fonts and positions, so headings come from font size
//! and weight and the reading order from the layout) and pdf-extract (plain
//! text; headings guessed from line shapes). A page an engine cannot read is
//! skipped and reported; the document fails only when most pages fail.
//! With OCR on, PDFium renders pages that have no text but images, and
//! Tesseract reads them.

mod engine;
mod extract;
mod layout;
mod pdfium;

use crate::ocr::{Ocr, OcrText};
use crate::{ParseError, collapse_whitespace};
use docpipe_core::ParsedDocument;
use docpipe_core::document::OcrPage;
use std::collections::{HashMap, HashSet};

pub use engine::{PdfEngine, PdfEngineError};

/// One line of a page, in reading order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) text: String,
    /// Font size in points, when the engine knows it.
    pub(crate) size: Option<f32>,
    /// Whether the line is set in a bold face.
    pub(crate) bold: bool,
    /// Whether a paragraph starts at this line (a blank line, a vertical
    /// gap, a change of font or column).
    pub(crate) starts_paragraph: bool,
    /// Whether the line sits at the top or bottom edge of the page, where
    /// running headers and footers are.
    pub(crate) at_edge: bool,
}

/// A page's lines; `number` is 1-based.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageLines {
    pub(crate) number: u32,
    pub(crate) lines: Vec<Line>,
}

/// What an engine read from a PDF.
#[derive(Debug, Default)]
pub(crate) struct ReadPdf {
    /// The `/Title` of the document information dictionary.
    pub(crate) info_title: Option<String>,
    pub(crate) page_count: u32,
    /// The pages that could be read, in order.
    pub(crate) pages: Vec<PageLines>,
    /// The pages that could not, with the reason.
    pub(crate) failed: Vec<(u32, String)>,
    /// The pages read by OCR, with its mean confidence.
    pub(crate) ocr_pages: Vec<OcrPage>,
}

impl ReadPdf {
    /// The document, or an error when most pages could not be read.
    fn into_document(self) -> Result<ParsedDocument, ParseError> {
        if self.failed.len() * 2 > self.page_count as usize {
            let reasons: Vec<String> = self
                .failed
                .iter()
                .take(5)
                .map(|(page, reason)| format!("page {page}: {reason}"))
                .collect();
            return Err(ParseError::CorruptPdf(format!(
                "{} of {} pages could not be read ({})",
                self.failed.len(),
                self.page_count,
                reasons.join("; ")
            )));
        }
        Ok(assemble(self))
    }
}

/// Parses a PDF with `engine`, refusing more than `max_pages` pages.
pub(crate) fn parse(
    engine: &PdfEngine,
    bytes: &[u8],
    max_pages: u32,
    ocr: Option<&Ocr>,
) -> Result<ParsedDocument, ParseError> {
    let read = match engine {
        PdfEngine::Pdfium(library) => pdfium::read(library, bytes, max_pages, ocr)?,
        PdfEngine::PdfExtract => extract::read(bytes, max_pages)?,
    };
    read.into_document()
}

/// A photo or scan of text, as OCR read it: one page.
pub(crate) fn image_document(text: OcrText) -> ParsedDocument {
    let mut document = assemble(ReadPdf {
        page_count: 1,
        pages: vec![PageLines {
            number: 1,
            lines: text.lines,
        }],
        ocr_pages: vec![OcrPage {
            page: 1,
            confidence: text.confidence,
        }],
        ..ReadPdf::default()
    });
    // An image has no pages to speak of.
    document.page_count = None;
    for block in &mut document.blocks {
        block.page = None;
    }
    document
}

fn check_page_count(pages: usize, limit: u32) -> Result<(), ParseError> {
    if pages > limit as usize {
        return Err(ParseError::TooManyPages { pages, limit });
    }
    if pages == 0 {
        return Err(ParseError::CorruptPdf("the PDF has no pages".into()));
    }
    Ok(())
}

/// Longest running header or footer, in bytes.
const FURNITURE_MAX_LEN: usize = 80;
/// Fewest pages on which running headers and footers are looked for: on
/// fewer, a table continued across pages looks like one.
const FURNITURE_MIN_PAGES: usize = 4;
/// How much larger than the body text a heading's font is.
const HEADING_SIZE_RATIO: f32 = 1.12;

fn assemble(read: ReadPdf) -> ParsedDocument {
    let furniture = running_furniture(&read.pages);
    let body = BodyFont::of(&read.pages);
    let mut document = ParsedDocument {
        title: read.info_title.filter(|title| !is_junk_title(title)),
        page_count: Some(read.page_count),
        skipped_pages: read.failed.iter().map(|(page, _)| *page).collect(),
        furniture: furniture.iter().cloned().collect(),
        ocr_pages: read.ocr_pages,
        ..ParsedDocument::default()
    };
    document.furniture.sort();
    let pages: Vec<(u32, Vec<Paragraph>)> = read
        .pages
        .iter()
        .map(|page| {
            let lines = page
                .lines
                .iter()
                .filter(|line| !is_furniture(line, &furniture));
            (page.number, paragraphs(lines))
        })
        .collect();
    if document.title.is_none() {
        document.title = pages
            .first()
            .and_then(|(_, paragraphs)| body.title_among(paragraphs));
    }
    let mut outline = Outline::default();
    for (page, paragraphs) in pages {
        for paragraph in paragraphs {
            let level = body.heading_level(&paragraph);
            if let Some(level) = level
                && document.title.as_deref() != Some(&paragraph.text)
            {
                outline.enter(level, &paragraph.text);
            }
            document.push_block(&paragraph.text, Some(page), outline.path(), level.is_some());
        }
    }
    document
}

/// A paragraph: lines joined, with the font of its first line.
#[derive(Debug, Clone, PartialEq)]
struct Paragraph {
    text: String,
    size: Option<f32>,
    bold: bool,
    lines: usize,
}

/// Joins lines into paragraphs, mending words hyphenated across a line break.
fn paragraphs<'a>(lines: impl Iterator<Item = &'a Line>) -> Vec<Paragraph> {
    let mut paragraphs: Vec<Paragraph> = Vec::new();
    for line in lines {
        let text = collapse_whitespace(&line.text);
        if text.is_empty() {
            continue;
        }
        match paragraphs.last_mut() {
            Some(current) if !line.starts_paragraph => {
                if current.text.ends_with('-') && text.starts_with(char::is_lowercase) {
                    current.text.pop();
                } else {
                    current.text.push(' ');
                }
                current.text.push_str(&text);
                current.lines += 1;
            }
            _ => paragraphs.push(Paragraph {
                text,
                size: line.size,
                bold: line.bold,
                lines: 1,
            }),
        }
    }
    paragraphs
}

/// The font most of the text is set in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct BodyFont {
    /// Absent when the engine gives no sizes.
    size: Option<f32>,
    bold: bool,
}

impl BodyFont {
    /// The size and weight carrying the most characters.
    fn of(pages: &[PageLines]) -> Self {
        let mut weights: HashMap<(u32, bool), usize> = HashMap::new();
        for line in pages.iter().flat_map(|page| &page.lines) {
            if let Some(size) = line.size {
                // Half points: sizes computed from matrices differ in noise.
                let key = ((size * 2.0).round() as u32, line.bold);
                *weights.entry(key).or_default() += line.text.len();
            }
        }
        weights
            .into_iter()
            .max_by_key(|&((size, bold), count)| (count, size, bold))
            .map_or(
                Self {
                    size: None,
                    bold: false,
                },
                |((size, bold), _)| Self {
                    size: Some(size as f32 / 2.0),
                    bold,
                },
            )
    }

    /// The heading level of a paragraph (larger fonts are outer levels,
    /// given as the size in hundredths of a point), or `None` for body text.
    fn heading_level(&self, paragraph: &Paragraph) -> Option<u32> {
        if !heading_shaped(&paragraph.text) {
            return None;
        }
        let Some(body) = self.size else {
            // No sizes: a short unpunctuated paragraph of its own is a heading.
            return Some(0);
        };
        let size = paragraph.size.unwrap_or(body);
        let larger = size >= body * HEADING_SIZE_RATIO;
        let bolder = paragraph.bold && !self.bold && paragraph.lines == 1 && size >= body * 0.95;
        (larger || bolder).then_some((size * 100.0) as u32)
    }

    /// The title on a first page: its largest heading set larger than the
    /// body text ("NAME" in bold body type is a section, not a title), or
    /// without font sizes its first heading.
    fn title_among(&self, first_page: &[Paragraph]) -> Option<String> {
        let headings = first_page
            .iter()
            .filter(|paragraph| self.heading_level(paragraph).is_some());
        let Some(body) = self.size else {
            return headings.map(|paragraph| paragraph.text.clone()).next();
        };
        headings
            .filter_map(|paragraph| Some((paragraph.size?, paragraph)))
            .filter(|(size, _)| *size >= body * HEADING_SIZE_RATIO)
            .fold(
                None::<(f32, &Paragraph)>,
                |largest, (size, paragraph)| match largest {
                    Some((largest_size, _)) if largest_size >= size => largest,
                    _ => Some((size, paragraph)),
                },
            )
            .map(|(_, paragraph)| paragraph.text.clone())
    }
}

fn heading_shaped(paragraph: &str) -> bool {
    let words = paragraph.split_whitespace().count();
    (1..=12).contains(&words)
        && paragraph.len() <= 90
        && paragraph.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit())
        && !paragraph.ends_with(['.', ',', ';', ':', '!', '?'])
}

/// The headings above the current block: a heading closes every open one
/// set in the same or a smaller font.
#[derive(Debug, Default)]
struct Outline {
    open: Vec<(u32, String)>,
    path: Vec<String>,
}

impl Outline {
    fn enter(&mut self, level: u32, heading: &str) {
        while self.open.last().is_some_and(|(open, _)| *open <= level) {
            self.open.pop();
        }
        self.open.push((level, heading.to_owned()));
        self.path = self.open.iter().map(|(_, text)| text.clone()).collect();
    }

    fn path(&self) -> &[String] {
        &self.path
    }
}

/// Whether a metadata title is a file name or path left by the authoring
/// tool ("amsclass.dvi", "C:/Documents and Settings/…", "Microsoft Word -
/// report.doc") rather than the document's title.
fn is_junk_title(title: &str) -> bool {
    const FILE_EXTENSIONS: [&str; 16] = [
        "dvi", "tex", "doc", "docx", "indd", "pdf", "ps", "eps", "qxd", "qxp", "rtf", "txt", "odt",
        "fm", "wpd", "pmd",
    ];
    let lower = title.trim().to_lowercase();
    let has_extension = lower
        .rsplit_once('.')
        .is_some_and(|(stem, extension)| !stem.is_empty() && FILE_EXTENSIONS.contains(&extension));
    lower.is_empty()
        || has_extension
        || lower.contains(":/")
        || lower.contains('\\')
        || (lower.starts_with('/') && !lower.contains(' '))
        || lower.starts_with("untitled")
        || lower.starts_with("microsoft word - ")
}

/// Running headers and footers ("Page 3 of 12", a repeated document title):
/// short lines at the edges of pages that, numbers masked, recur on more
/// than half of the pages. Returned trimmed and digit-masked.
fn running_furniture(pages: &[PageLines]) -> HashSet<String> {
    if pages.len() < FURNITURE_MIN_PAGES {
        return HashSet::new();
    }
    let mut pages_with: HashMap<String, usize> = HashMap::new();
    for page in pages {
        let shapes: HashSet<String> = page
            .lines
            .iter()
            .filter(|line| line.at_edge && line.text.trim().len() <= FURNITURE_MAX_LEN)
            .map(|line| digits_masked(line.text.trim()))
            .collect();
        for shape in shapes {
            *pages_with.entry(shape).or_default() += 1;
        }
    }
    pages_with
        .into_iter()
        .filter(|(_, count)| count * 2 > pages.len())
        .map(|(shape, _)| shape)
        .collect()
}

/// Whether a line is a running header or footer: one of the page's edge
/// lines with a furniture shape. The same shape inside the page is content
/// (a footer that is only a page number has the shape of a table's numbers).
fn is_furniture(line: &Line, furniture: &HashSet<String>) -> bool {
    line.at_edge && furniture.contains(&digits_masked(line.text.trim()))
}

/// `text` with each run of digits masked as one `#`: page 9 and page 10
/// of a running footer have the same shape.
fn digits_masked(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            masked.push(c);
        } else if !masked.ends_with('#') {
            masked.push('#');
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, size: Option<f32>, bold: bool, starts_paragraph: bool) -> Line {
        Line {
            text: text.to_owned(),
            size,
            bold,
            starts_paragraph,
            at_edge: false,
        }
    }

    fn edge(text: &str) -> Line {
        Line {
            at_edge: true,
            ..line(text, None, false, true)
        }
    }

    fn page(number: u32, lines: Vec<Line>) -> PageLines {
        PageLines { number, lines }
    }

    #[test]
    fn paragraphs_join_lines_and_mend_hyphenation() {
        let lines = [
            line("Tides", None, false, true),
            line("The moon pulls the ocean, rais-", None, false, true),
            line("ing a bulge.", None, false, false),
            line("It moves.", None, false, false),
            line("Next one", None, false, true),
        ];
        let texts: Vec<String> = paragraphs(lines.iter())
            .into_iter()
            .map(|p| p.text)
            .collect();
        assert_eq!(
            texts,
            [
                "Tides",
                "The moon pulls the ocean, raising a bulge. It moves.",
                "Next one"
            ]
        );
    }

    #[test]
    fn without_font_sizes_headings_are_short_unpunctuated_paragraphs() {
        let body = BodyFont {
            size: None,
            bold: false,
        };
        let heading = |text: &str| {
            body.heading_level(&Paragraph {
                text: text.into(),
                size: None,
                bold: false,
                lines: 1,
            })
            .is_some()
        };
        assert!(heading("2. Dead-letter exchanges"));
        assert!(heading("Publisher Confirms"));
        assert!(!heading("The queue is durable."));
        assert!(!heading("lowercase start"));
    }

    #[test]
    fn with_font_sizes_headings_are_larger_or_bolder_than_the_body() {
        let body = BodyFont {
            size: Some(10.0),
            bold: false,
        };
        let level = |size: f32, bold: bool| {
            body.heading_level(&Paragraph {
                text: "Quorum Queues".into(),
                size: Some(size),
                bold,
                lines: 1,
            })
        };
        assert!(
            level(10.0, false).is_none(),
            "body-sized text is not a heading"
        );
        assert!(level(10.0, true).is_some(), "a bold line of its own is");
        assert!(level(14.0, false).unwrap() > level(12.0, false).unwrap());
    }

    #[test]
    fn heading_paths_nest_by_font_size() {
        let pages = [page(
            1,
            vec![
                line("Operating RabbitMQ", Some(20.0), true, true),
                line("Queues", Some(14.0), true, true),
                line("Quorum queues replicate.", Some(10.0), false, true),
                line("Prefetch", Some(12.0), true, true),
                line("Set it with basic.qos.", Some(10.0), false, true),
                line("Monitoring", Some(14.0), true, true),
                line("Watch queue depth.", Some(10.0), false, true),
            ],
        )];
        let document = assemble(ReadPdf {
            page_count: 1,
            pages: pages.to_vec(),
            ..ReadPdf::default()
        });
        assert_eq!(document.title.as_deref(), Some("Operating RabbitMQ"));
        let path_of = |text: &str| {
            let at = document.text.find(text).unwrap();
            document.block_at(at).unwrap().heading_path.clone()
        };
        assert_eq!(path_of("Quorum queues"), ["Queues"]);
        assert_eq!(path_of("Set it with"), ["Queues", "Prefetch"]);
        assert_eq!(path_of("Watch queue"), ["Monitoring"]);
    }

    #[test]
    fn a_bold_section_heading_in_body_type_is_not_a_title() {
        let document = assemble(ReadPdf {
            page_count: 1,
            pages: vec![page(
                1,
                vec![
                    line("NAME", Some(10.0), true, true),
                    line("ls - list directory contents", Some(10.0), false, true),
                ],
            )],
            ..ReadPdf::default()
        });
        assert_eq!(document.title, None);
        assert!(document.blocks[0].is_heading);
        assert_eq!(document.blocks[1].heading_path, ["NAME"]);
    }

    #[test]
    fn file_names_and_paths_are_not_titles() {
        for junk in [
            "amsclass.dvi",
            "wari.indd",
            "C:/Documents and Settings/user/report.doc",
            "C:\\Temp\\x",
            "Microsoft Word - notes",
            "Untitled-1",
            "  ",
        ] {
            assert!(is_junk_title(junk), "{junk}");
        }
        for title in ["The LaTeX Companion", "GNU Make 4.3", "Version 2.0 notes"] {
            assert!(!is_junk_title(title), "{title}");
        }
    }

    #[test]
    fn a_junk_metadata_title_gives_way_to_the_first_heading() {
        let document = assemble(ReadPdf {
            info_title: Some("report-final.indd".into()),
            page_count: 1,
            pages: vec![page(
                1,
                vec![
                    line("Annual Report", Some(18.0), true, true),
                    line(
                        "Revenue grew by a tenth this year.",
                        Some(10.0),
                        false,
                        true,
                    ),
                ],
            )],
            ..ReadPdf::default()
        });
        assert_eq!(document.title.as_deref(), Some("Annual Report"));
    }

    #[test]
    fn running_headers_and_footers_are_recognised_on_most_pages() {
        let numbered = |number: u32, body: &str| {
            page(
                number,
                vec![
                    edge("Field Guide"),
                    line(body, None, false, true),
                    line(&format!("still {body}"), None, false, false),
                    line("Shared words", None, false, true),
                    edge(&format!("Page {number} of 4")),
                ],
            )
        };
        let pages = [
            numbered(8, "one"),
            numbered(9, "two"),
            numbered(10, "three"),
            numbered(11, "four"),
        ];
        let furniture = running_furniture(&pages);
        assert!(furniture.contains("Page # of #"));
        assert!(furniture.contains("Field Guide"));
        assert!(!furniture.contains("two"));
        assert!(
            !furniture.contains("Shared words"),
            "recurring text away from the edges is content"
        );
        assert!(
            running_furniture(&pages[..3]).is_empty(),
            "a table continued over three pages is not furniture"
        );
    }

    #[test]
    fn a_page_number_footer_leaves_numbers_inside_the_page() {
        let numbered = |number: u32| {
            page(
                number,
                vec![
                    line("Port", None, true, true),
                    line("5672", None, false, true),
                    line("15672", None, false, true),
                    edge(&number.to_string()),
                ],
            )
        };
        let document = assemble(ReadPdf {
            page_count: 4,
            pages: (1..=4).map(numbered).collect(),
            ..ReadPdf::default()
        });
        assert_eq!(document.furniture, ["#"]);
        assert_eq!(
            document.text.matches("15672").count(),
            4,
            "{}",
            document.text
        );
        let page_numbers = document.blocks.iter().filter(|block| {
            let text = &document.text[block.range.clone()];
            ["1", "2", "3", "4"].contains(&text)
        });
        assert_eq!(page_numbers.count(), 0, "the footers stay out");
    }

    #[test]
    fn most_pages_failing_fails_the_document() {
        let read = |failed: u32| ReadPdf {
            page_count: 4,
            pages: (failed + 1..=4)
                .map(|number| page(number, vec![line("Some text", None, false, true)]))
                .collect(),
            failed: (1..=failed).map(|page| (page, "broken".into())).collect(),
            ..ReadPdf::default()
        };
        let document = read(1).into_document().unwrap();
        assert_eq!(document.skipped_pages, [1]);
        assert!(read(2).into_document().is_ok(), "half is not most");
        let error = read(3).into_document().unwrap_err();
        assert!(error.to_string().contains("3 of 4 pages"), "{error}");
    }
}
