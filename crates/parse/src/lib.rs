//! Parses PDF and HTML documents into clean text with structure: title,
//! heading paths and page numbers. PDFs are read by PDFium (loaded at run
//! time, see [`PdfEngine::load`]) or pdf-extract.
//!
//! [`DocumentParser::parse`] is synchronous and CPU-bound; callers run it on a
//! blocking thread with a time limit. A panic inside a third-party parser is
//! caught and reported as [`ParseError::ParserPanicked`] so it fails one
//! document, never the worker.

#![warn(missing_docs)]

mod html;
mod ocr;
mod pdf;
mod sniff;

use docpipe_core::message::{DeclaredType, DocumentFormat};
use docpipe_core::{Classify, ErrorClass, ParsedDocument, PipelineConfig};
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use ocr::{Ocr, OcrError};
pub use pdf::{PdfEngine, PdfEngineError};
pub use sniff::sniff_format;

/// Why a document could not be parsed. Every variant is permanent: the same
/// bytes will fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are neither PDF nor HTML, or an image without OCR.
    #[error(
        "content is not a document docpipe reads ({0}); docpipe parses PDF, HTML and, with OCR, PNG, JPEG and TIFF images"
    )]
    UnsupportedContent(String),
    /// The declared content type contradicts the bytes.
    #[error("content_type declares {declared:?} but the content looks like {found}")]
    ContentTypeMismatch {
        /// The declared format.
        declared: DocumentFormat,
        /// What the bytes look like.
        found: &'static str,
    },
    /// The PDF structure could not be read.
    #[error("corrupt or unreadable PDF: {0}")]
    CorruptPdf(String),
    /// The PDF is encrypted with a password.
    #[error("PDF is encrypted with a password; publish a decrypted copy")]
    EncryptedPdf,
    /// The PDF has more pages than the pipeline allows.
    #[error("PDF has {pages} pages; the pipeline limit (limits.max_pdf_pages) is {limit}")]
    TooManyPages {
        /// Pages in the document.
        pages: usize,
        /// The configured limit.
        limit: u32,
    },
    /// The HTML nests elements deeper than the pipeline allows.
    #[error(
        "HTML nests elements at least {depth} deep; the pipeline limit (limits.max_html_depth) is {limit}"
    )]
    TooDeeplyNested {
        /// The depth reached when the scan stopped.
        depth: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Nothing indexable was found.
    #[error("document has no extractable text ({0})")]
    NoText(&'static str),
    /// OCR could not read an image.
    #[error("OCR could not read the image: {0}")]
    Ocr(OcrError),
    /// A parser library panicked on this input.
    #[error("parser crashed on this document: {0}")]
    ParserPanicked(String),
}

impl Classify for ParseError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }

    fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedContent(_) => "unsupported_content",
            Self::ContentTypeMismatch { .. } => "content_type_mismatch",
            Self::CorruptPdf(_) => "corrupt_pdf",
            Self::EncryptedPdf => "encrypted_pdf",
            Self::TooManyPages { .. } => "too_many_pages",
            Self::TooDeeplyNested { .. } => "html_too_deep",
            Self::NoText(_) => "no_text",
            Self::Ocr(_) => "ocr_failed",
            Self::ParserPanicked(_) => "parser_crashed",
        }
    }
}

/// The parser a pipeline asks for cannot be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParserSetupError {
    /// PDFium cannot be loaded.
    #[error(transparent)]
    PdfEngine(#[from] PdfEngineError),
    /// OCR is on and Tesseract cannot run.
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

/// Parses documents within the pipeline's limits.
#[derive(Debug, Clone)]
pub struct DocumentParser {
    pdf_engine: PdfEngine,
    ocr: Option<Ocr>,
    max_pdf_pages: u32,
    max_html_depth: usize,
}

impl DocumentParser {
    /// A parser reading PDFs with `pdf_engine`, refusing PDFs with more than
    /// `max_pdf_pages` pages and HTML nesting elements deeper than
    /// `max_html_depth`.
    pub fn new(pdf_engine: PdfEngine, max_pdf_pages: u32, max_html_depth: usize) -> Self {
        Self {
            pdf_engine,
            ocr: None,
            max_pdf_pages,
            max_html_depth,
        }
    }

    /// The same parser, reading PDF pages without a text layer with `ocr`
    /// (PDFium engine only: it renders the pages).
    pub fn with_ocr(self, ocr: Ocr) -> Self {
        Self {
            ocr: Some(ocr),
            ..self
        }
    }

    /// A parser with the pipeline's PDF engine, OCR and limits; with OCR
    /// on, Tesseract must run and have the languages.
    pub fn for_pipeline(config: &PipelineConfig) -> Result<Self, ParserSetupError> {
        let parser = Self::new(
            PdfEngine::load(config.parse.pdf_engine)?,
            config.limits.max_pdf_pages,
            config.limits.max_html_depth,
        );
        if !config.parse.ocr {
            return Ok(parser);
        }
        let ocr = Ocr::new(
            &config.parse.ocr_languages,
            std::time::Duration::from_secs(config.parse.ocr_page_timeout_secs),
        );
        ocr.check()?;
        Ok(parser.with_ocr(ocr))
    }

    /// Parses `bytes`, trusting the sniffed format over nothing and checking
    /// it against the declared one.
    pub fn parse(
        &self,
        bytes: &[u8],
        declared: Option<&DeclaredType>,
    ) -> Result<ParsedDocument, ParseError> {
        let format = resolve_format(bytes, declared)?;
        let charset = declared.and_then(|declared| declared.charset.as_deref());
        let parsed = catch_unwind(AssertUnwindSafe(|| match format {
            DocumentFormat::Pdf => pdf::parse(
                &self.pdf_engine,
                bytes,
                self.max_pdf_pages,
                self.ocr.as_ref(),
            ),
            DocumentFormat::Html => html::parse(bytes, charset, self.max_html_depth),
            DocumentFormat::Image => self.image(bytes),
        }))
        .map_err(|panic| ParseError::ParserPanicked(panic_message(&panic)))??;
        if !parsed.has_text() {
            return Err(ParseError::NoText(match format {
                DocumentFormat::Pdf => {
                    if self.ocr.is_some() {
                        "the PDF has no text layer, and OCR found none in its images"
                    } else {
                        "the PDF has no text layer; scanned PDFs need OCR (parse.ocr = true)"
                    }
                }
                DocumentFormat::Html => "the page has no visible text",
                DocumentFormat::Image => "OCR found no text in the image",
            }));
        }
        Ok(parsed)
    }

    /// An image of text, read by OCR as one page.
    fn image(&self, bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
        let ocr = self.ocr.as_ref().ok_or_else(|| {
            ParseError::UnsupportedContent(
                "an image; images are read by OCR, which this pipeline leaves off (parse.ocr = true turns it on)".into(),
            )
        })?;
        let text = ocr.read_encoded(bytes).map_err(ParseError::Ocr)?;
        Ok(pdf::image_document(text))
    }
}

fn resolve_format(
    bytes: &[u8],
    declared: Option<&DeclaredType>,
) -> Result<DocumentFormat, ParseError> {
    let sniffed = sniff_format(bytes);
    match (declared.map(|declared| declared.format), sniffed) {
        // Real pages start with a stray header line or a bare fragment
        // (`<table>...`); when HTML is declared and the bytes are markup
        // somewhere near the start, the declaration wins.
        (Some(DocumentFormat::Html), Err(_)) if sniff::plausibly_html(bytes) => {
            Ok(DocumentFormat::Html)
        }
        (_, Err(reason)) => Err(ParseError::UnsupportedContent(reason.into())),
        (Some(declared), Ok(found)) if declared != found => Err(ParseError::ContentTypeMismatch {
            declared,
            found: match found {
                DocumentFormat::Pdf => "PDF",
                DocumentFormat::Html => "HTML",
                DocumentFormat::Image => "an image",
            },
        }),
        (_, Ok(found)) => Ok(found),
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Collapses runs of whitespace into single spaces and trims the ends.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_unsupported() {
        let error = DocumentParser::new(PdfEngine::PdfExtract, 10, 64)
            .parse(&[0, 159, 146, 150, 1, 2, 3], None)
            .unwrap_err();
        assert!(
            matches!(error, ParseError::UnsupportedContent(_)),
            "{error}"
        );
    }

    #[test]
    fn declared_type_must_match_content() {
        let declared = DeclaredType {
            format: DocumentFormat::Pdf,
            charset: None,
        };
        let error = DocumentParser::new(PdfEngine::PdfExtract, 10, 64)
            .parse(b"<html><body><p>hi</p></body></html>", Some(&declared))
            .unwrap_err();
        assert_eq!(
            error,
            ParseError::ContentTypeMismatch {
                declared: DocumentFormat::Pdf,
                found: "HTML"
            }
        );
    }

    #[test]
    fn whitespace_only_html_has_no_text() {
        let error = DocumentParser::new(PdfEngine::PdfExtract, 10, 64)
            .parse(
                b"<html><body>\n  \t <script>var x = 1;</script></body></html>",
                None,
            )
            .unwrap_err();
        assert!(matches!(error, ParseError::NoText(_)), "{error}");
        assert_eq!(error.class(), ErrorClass::Permanent);
    }
}
