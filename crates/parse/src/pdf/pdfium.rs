//! The PDFium engine: each page's characters with their boxes and fonts,
//! gathered into fragments (runs of text on one line), then put in reading
//! order by [`layout`](super::layout).

use super::layout::{Fragment, reading_order};
use super::{PageLines, ReadPdf, check_page_count};
use crate::ocr::{GrayImage, Ocr, OcrText};
use crate::{ParseError, collapse_whitespace};
use docpipe_core::document::OcrPage;
use pdfium_render::prelude::*;
use unicode_normalization::UnicodeNormalization as _;

pub(super) fn read(
    pdfium: &Pdfium,
    bytes: &[u8],
    max_pages: u32,
    ocr: Option<&Ocr>,
) -> Result<ReadPdf, ParseError> {
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(|error| match error {
            PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::PasswordError) => {
                ParseError::EncryptedPdf
            }
            other => ParseError::CorruptPdf(format!("PDFium cannot open it ({other})")),
        })?;
    let pages = document.pages();
    let count = pages.len().max(0) as usize;
    check_page_count(count, max_pages)?;
    let mut read = ReadPdf {
        info_title: document
            .metadata()
            .get(PdfDocumentMetadataTagType::Title)
            .map(|tag| collapse_whitespace(tag.value()))
            .filter(|title| !title.is_empty()),
        page_count: count as u32,
        ..ReadPdf::default()
    };
    for index in 0..pages.len() {
        let number = index as u32 + 1;
        let page = match pages.get(index) {
            Ok(page) => page,
            Err(error) => {
                read.failed.push((number, error.to_string()));
                continue;
            }
        };
        let fragments = match page.text() {
            Ok(text) => fragments(&text),
            Err(error) => {
                read.failed.push((number, error.to_string()));
                continue;
            }
        };
        let lines = match ocr {
            Some(ocr) if fragments.is_empty() && has_images(&page) => {
                match recognised(ocr, &page) {
                    Ok(OcrText { lines, confidence }) => {
                        read.ocr_pages.push(OcrPage {
                            page: number,
                            confidence,
                        });
                        lines
                    }
                    Err(reason) => {
                        read.failed.push((number, reason));
                        continue;
                    }
                }
            }
            _ => reading_order(fragments),
        };
        read.pages.push(PageLines { number, lines });
    }
    Ok(read)
}

/// Resolution pages are rendered at for OCR, in dots per inch.
const OCR_DPI: f32 = 300.0;
/// Longest side of a page rendered for OCR, in pixels (a poster-sized page
/// is rendered below 300 dpi rather than into gigabytes).
const OCR_MAX_PIXELS: i32 = 5000;

/// Whether a page draws images (or forms, which may hold them): a page
/// without text or images is blank, with nothing to recognise.
fn has_images(page: &PdfPage) -> bool {
    page.objects().iter().any(|object| {
        matches!(
            object.object_type(),
            PdfPageObjectType::Image | PdfPageObjectType::XObjectForm
        )
    })
}

/// A page without a text layer, rendered and read by OCR, or why it could
/// not be read.
fn recognised(ocr: &Ocr, page: &PdfPage) -> Result<OcrText, String> {
    let config = PdfRenderConfig::new()
        .scale_page_by_factor(OCR_DPI / 72.0)
        .set_maximum_width(OCR_MAX_PIXELS)
        .set_maximum_height(OCR_MAX_PIXELS);
    let bitmap = page
        .render_with_config(&config)
        .map_err(|error| format!("cannot render it for OCR ({error})"))?;
    let (width, height) = (bitmap.width() as usize, bitmap.height() as usize);
    let image = GrayImage {
        width,
        height,
        pixels: gray(&bitmap.as_rgba_bytes(), width * height),
    };
    ocr.read(&image).map_err(|error| error.to_string())
}

/// Luma of RGBA pixels.
fn gray(rgba: &[u8], pixels: usize) -> Vec<u8> {
    rgba.chunks_exact(4)
        .take(pixels)
        .map(|pixel| {
            let [r, g, b] = [pixel[0], pixel[1], pixel[2]].map(u32::from);
            ((299 * r + 587 * g + 114 * b) / 1000) as u8
        })
        .collect()
}

/// A horizontal gap wider than this many font sizes ends a fragment: it is
/// a gutter or a table's column, which layout places on its own.
const FRAGMENT_GAP_EMS: f32 = 1.0;
/// A gap at least this many font sizes wide between two characters is a
/// space, whether or not the PDF draws one.
const SPACE_GAP_EMS: f32 = 0.15;
/// Two characters whose baselines are further apart than this many font
/// sizes are on different lines; a superscript or subscript is nearer.
const SAME_LINE_EMS: f32 = 0.5;

/// One character as the page draws it.
struct Glyph {
    unicode: char,
    /// Its box from the font's ascent and descent.
    bounds: PdfRect,
    /// Its baseline, in points up the page.
    baseline: f32,
    /// Its font size in points (0 when the engine does not know it).
    size: f32,
    bold: bool,
}

/// The page's characters gathered into fragments, in the order the page
/// draws them.
fn fragments(text: &PdfPageText) -> Vec<Fragment> {
    let mut builder = FragmentBuilder::default();
    for character in text.chars().iter() {
        let Some(unicode) = character.unicode_char() else {
            continue;
        };
        if unicode == '\r' || unicode == '\n' {
            builder.finish();
            continue;
        }
        if unicode.is_whitespace() {
            builder.space = true;
            continue;
        }
        // PDFium reports a hyphen ending a line as U+0002: a hyphen the
        // paragraph joiner mends. Other control characters mark unmapped glyphs.
        let unicode = match unicode {
            '\u{2}' | '\u{ad}' => '-',
            other => other,
        };
        if unicode.is_control() || unicode == '\u{fffe}' {
            continue;
        }
        let (Ok(bounds), Ok(baseline)) = (character.loose_bounds(), character.origin_y()) else {
            continue;
        };
        let size = character.scaled_font_size().value;
        // Standard fonts have no weight of their own ("Times-Bold"): their
        // name says it.
        let bold = character
            .font_weight()
            .is_some_and(|weight| weight_of(weight) >= 600)
            || bold_name(&character.font_name());
        let glyph = Glyph {
            unicode,
            bounds,
            baseline: baseline.value,
            size,
            bold,
        };
        builder.push(&glyph, || {
            character
                .angle_radians()
                .is_ok_and(|angle| angle.sin().abs() > 0.1)
        });
    }
    builder.finish();
    builder.done
}

fn weight_of(weight: PdfFontWeight) -> u32 {
    match weight {
        PdfFontWeight::Weight100 => 100,
        PdfFontWeight::Weight200 => 200,
        PdfFontWeight::Weight300 => 300,
        PdfFontWeight::Weight400Normal => 400,
        PdfFontWeight::Weight500 => 500,
        PdfFontWeight::Weight600 => 600,
        PdfFontWeight::Weight700Bold => 700,
        PdfFontWeight::Weight800 => 800,
        PdfFontWeight::Weight900 => 900,
        PdfFontWeight::Custom(weight) => weight,
    }
}

/// Whether a font's name says bold ("Helvetica-Bold", "CMBX10", "NimbusSans-Black").
fn bold_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["bold", "black", "heavy", "semibold", "cmbx", "demi"]
        .iter()
        .any(|marker| name.contains(marker))
}

#[derive(Default)]
struct FragmentBuilder {
    current: Option<Fragment>,
    /// Characters in the current fragment, and how many are bold.
    chars: usize,
    bold_chars: usize,
    /// Whether the current fragment runs at an angle (rotated text).
    rotated: bool,
    /// Whether a space came since the last character.
    space: bool,
    /// The horizontal extent of the last character pushed.
    last_char: (f32, f32),
    /// The baseline and font size of the last character pushed.
    last_baseline: (f32, f32),
    /// A spacing accent that may sit over the letter drawn next (TeX's
    /// `\accent` draws it first): where it starts in the current
    /// fragment's text, its combining mark and its centre.
    pending_accent: Option<(usize, char, f32)>,
    /// Whether the current fragment holds combining marks to compose.
    composed: bool,
    done: Vec<Fragment>,
}

/// The combining form of a spacing accent that TeX and others draw over a
/// letter as a glyph of its own ("f¨ur" for "für").
fn combining_form(accent: char) -> Option<char> {
    Some(match accent {
        '\u{a8}' => '\u{308}',
        '\u{b4}' => '\u{301}',
        '\u{2c6}' => '\u{302}',
        '\u{2c7}' => '\u{30c}',
        '\u{2dc}' => '\u{303}',
        '\u{af}' => '\u{304}',
        '\u{2d8}' => '\u{306}',
        '\u{2d9}' => '\u{307}',
        '\u{2da}' => '\u{30a}',
        '\u{2dd}' => '\u{30b}',
        '\u{b8}' => '\u{327}',
        '\u{2db}' => '\u{328}',
        _ => return None,
    })
}

impl FragmentBuilder {
    fn push(&mut self, glyph: &Glyph, rotated: impl Fn() -> bool) {
        let Glyph {
            unicode,
            bounds,
            baseline,
            bold,
            ..
        } = *glyph;
        let (left, right) = (bounds.left().value, bounds.right().value);
        let (bottom, top) = (bounds.bottom().value, bounds.top().value);
        let size = if glyph.size > 0.0 {
            glyph.size
        } else {
            top - bottom
        };
        let centre = (left + right) / 2.0;
        let mark = combining_form(unicode);
        if let (Some(mark), Some(current)) = (mark, &mut self.current) {
            let (last_left, last_right) = self.last_char;
            if (last_left..=last_right).contains(&centre) {
                current.text.push(mark);
                self.composed = true;
                return;
            }
        }
        if let Some(current) = &self.current {
            // Baselines, not boxes: one tall glyph (a music symbol, a
            // Myanmar letter) has a box reaching the lines around it.
            let (last_baseline, last_size) = self.last_baseline;
            let same_line = (baseline - last_baseline).abs() <= SAME_LINE_EMS * size.max(last_size);
            let gap = left - current.right;
            let continues = if same_line {
                gap <= FRAGMENT_GAP_EMS * size && left >= current.left - size
            } else {
                // Rotated text runs across the page's lines: it stays one
                // fragment while its characters are rotated too.
                self.rotated && rotated()
            };
            if !continues {
                self.finish();
            } else if self.space || (same_line && gap >= SPACE_GAP_EMS * size) {
                let current = self.current.as_mut().expect("checked above");
                if !current.text.ends_with(' ') {
                    current.text.push(' ');
                }
            }
        }
        self.space = false;
        if self.current.is_none() {
            self.rotated = rotated();
        }
        let fragment = self.current.get_or_insert_with(|| Fragment {
            text: String::new(),
            left,
            right,
            bottom,
            top,
            size,
            bold,
            upright: true,
        });
        match self.pending_accent.take() {
            // The accent and whatever space followed it give way to the
            // letter it sits over, with its combining mark.
            Some((at, mark, accent_centre)) if (left..=right).contains(&accent_centre) => {
                fragment.text.truncate(at);
                fragment.text.push(unicode);
                fragment.text.push(mark);
                self.composed = true;
            }
            _ => {
                if let Some(mark) = mark {
                    self.pending_accent = Some((fragment.text.len(), mark, centre));
                }
                fragment.text.push(unicode);
            }
        }
        self.last_char = (left, right);
        self.last_baseline = (baseline, size);
        fragment.left = fragment.left.min(left);
        fragment.right = fragment.right.max(right);
        fragment.bottom = fragment.bottom.min(bottom);
        fragment.top = fragment.top.max(top);
        fragment.size = fragment.size.max(size);
        self.chars += 1;
        self.bold_chars += usize::from(bold);
    }

    fn finish(&mut self) {
        if let Some(mut fragment) = self.current.take() {
            fragment.bold = self.bold_chars * 2 > self.chars;
            fragment.upright = !self.rotated;
            if self.composed {
                fragment.text = fragment.text.nfc().collect();
            }
            let text = fragment.text.trim_end();
            if !text.is_empty() {
                fragment.text.truncate(text.len());
                self.done.push(fragment);
            }
        }
        self.pending_accent = None;
        self.chars = 0;
        self.bold_chars = 0;
        self.rotated = false;
        self.space = false;
        self.composed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes a 10 pt character whose baseline is at `baseline`.
    fn glyph_at(
        builder: &mut FragmentBuilder,
        unicode: char,
        (left, right): (f32, f32),
        baseline: f32,
    ) {
        let glyph = Glyph {
            unicode,
            bounds: PdfRect::new_from_values(baseline - 2.0, left, baseline + 8.0, right),
            baseline,
            size: 10.0,
            bold: false,
        };
        builder.push(&glyph, || false);
    }

    fn char_at(builder: &mut FragmentBuilder, unicode: char, left: f32, right: f32) {
        glyph_at(builder, unicode, (left, right), 700.0);
    }

    fn text_of(builder: &mut FragmentBuilder) -> Vec<String> {
        builder.finish();
        builder
            .done
            .iter()
            .map(|fragment| fragment.text.clone())
            .collect()
    }

    #[test]
    fn an_accent_over_no_letter_stays_a_character() {
        let mut builder = FragmentBuilder::default();
        char_at(&mut builder, '\u{2c6}', 72.0, 76.0); // a glyph table's cell
        char_at(&mut builder, '9', 80.0, 85.0);
        char_at(&mut builder, '4', 85.0, 90.0);
        assert_eq!(text_of(&mut builder), ["\u{2c6} 94"]);
    }

    #[test]
    fn lines_are_told_apart_by_baseline_whatever_their_glyphs_reach() {
        let mut builder = FragmentBuilder::default();
        for (index, unicode) in "true".chars().enumerate() {
            let left = 72.0 + 5.0 * index as f32;
            let glyph = Glyph {
                unicode,
                // A font with a tall ascent and descent (Myanmar, music).
                bounds: PdfRect::new_from_values(680.0, left, 730.0, left + 5.0),
                baseline: 700.0,
                size: 10.0,
                bold: false,
            };
            builder.push(&glyph, || false);
        }
        glyph_at(&mut builder, 'X', (94.0, 100.0), 688.0); // the next line
        glyph_at(&mut builder, 'e', (100.0, 105.0), 688.0);
        assert_eq!(text_of(&mut builder), ["true", "Xe"]);
    }

    #[test]
    fn a_superscript_stays_on_its_line() {
        let mut builder = FragmentBuilder::default();
        char_at(&mut builder, 'x', 72.0, 77.0);
        glyph_at(&mut builder, '2', (77.0, 81.0), 703.5);
        char_at(&mut builder, '+', 83.0, 88.0);
        assert_eq!(text_of(&mut builder), ["x2 +"]);
    }

    #[test]
    fn accents_drawn_as_glyphs_of_their_own_join_their_letter() {
        let mut builder = FragmentBuilder::default();
        char_at(&mut builder, 'f', 72.0, 75.0);
        char_at(&mut builder, '\u{a8}', 75.5, 79.5); // before its letter, as TeX draws it
        char_at(&mut builder, 'u', 75.0, 80.0);
        char_at(&mut builder, 'r', 80.0, 83.0);
        char_at(&mut builder, 'e', 90.0, 95.0);
        char_at(&mut builder, '\u{b4}', 91.0, 94.0); // after it
        assert_eq!(text_of(&mut builder), ["für é"]);
    }

    #[test]
    fn bold_faces_are_recognised_by_name() {
        assert!(bold_name("Helvetica-Bold"));
        assert!(bold_name("ABCDEF+CMBX12"));
        assert!(!bold_name("Times-Roman"));
        assert!(!bold_name("CMR10"));
    }
}
