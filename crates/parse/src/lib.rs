//! Parses documents into clean text with structure: title, heading paths
//! and page numbers. It reads PDF (by PDFium, loaded at run time, see
//! [`PdfEngine::load`], or pdf-extract), HTML, Markdown, plain text, RTF,
//! Word, PowerPoint and Excel files, their OpenDocument counterparts,
//! EPUB, and (with OCR) images of text.
//!
//! [`DocumentParser::parse`] is synchronous and CPU-bound; callers run it on a
//! blocking thread with a time limit. A panic inside a third-party parser is
//! caught and reported as [`ParseError::ParserPanicked`] so it fails one
//! document, never the worker.

#![warn(missing_docs)]

mod archive;
mod csv;
mod epub;
mod html;
mod markdown;
mod ocr;
mod office;
mod outline;
mod pdf;
mod rtf;
mod sniff;
mod text;
mod xml;

use docpipe_core::config::LimitsConfig;
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
    /// The bytes are no format docpipe reads, or an image without OCR.
    #[error(
        "content is not a document docpipe reads ({0}); docpipe parses PDF, HTML, Markdown, plain text, CSV, RTF, DOCX, PPTX, XLSX, ODT, ODS, ODP, EPUB and, with OCR, PNG, JPEG and TIFF images"
    )]
    UnsupportedContent(String),
    /// The declared content type contradicts the bytes.
    #[error("content_type declares {} but the content looks like {found}", declared.name())]
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
    /// A zip container or its XML is broken.
    #[error("corrupt document: {0}")]
    CorruptDocument(String),
    /// An Office, OpenDocument or EPUB file is encrypted.
    #[error("{0} is encrypted; publish a decrypted copy")]
    EncryptedDocument(&'static str),
    /// An XML part declares a DTD, the way entity-expansion attacks come.
    #[error(
        "XML part {0} declares a DTD, which docpipe refuses (entity expansion and external entities are attack vectors; Office, OpenDocument and EPUB files never need one)"
    )]
    XmlDtd(String),
    /// The document exceeds one of the pipeline's bounds.
    #[error("{}", limit.describe(*found, *allowed))]
    ExceedsLimit {
        /// Which bound.
        limit: Limit,
        /// What the document reached when reading stopped.
        found: u64,
        /// The bound.
        allowed: u64,
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
            Self::CorruptDocument(_) => "corrupt_document",
            Self::EncryptedDocument(_) => "encrypted_document",
            Self::XmlDtd(_) => "xml_dtd_refused",
            Self::ExceedsLimit { limit, .. } => limit.code(),
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

/// A bound on what one document may cost, besides pages and HTML depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Bytes unpacked from a zip container (`limits.max_unpacked_bytes`).
    UnpackedBytes,
    /// Entries in a zip container (`limits.max_archive_entries`).
    ArchiveEntries,
    /// An entry's unpacked:packed ratio (`limits.max_compression_ratio`).
    CompressionRatio,
    /// Cells of a spreadsheet (`limits.max_sheet_cells`).
    SheetCells,
    /// Nesting of RTF groups (fixed: word processors nest fewer than 20).
    RtfGroupDepth,
}

impl Limit {
    /// The dead-letter code of a document beyond this bound.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnpackedBytes => "unpacked_too_large",
            Self::ArchiveEntries => "too_many_entries",
            Self::CompressionRatio => "compression_ratio_too_high",
            Self::SheetCells => "too_many_cells",
            Self::RtfGroupDepth => "rtf_too_deep",
        }
    }

    fn describe(self, found: u64, allowed: u64) -> String {
        match self {
            Self::UnpackedBytes => format!(
                "the zip container unpacks to more than {found} bytes; the pipeline limit (limits.max_unpacked_bytes) is {allowed}"
            ),
            Self::ArchiveEntries => format!(
                "the zip container has {found} entries; the pipeline limit (limits.max_archive_entries) is {allowed}"
            ),
            Self::CompressionRatio => format!(
                "a zip entry unpacks at least {found} times larger than it is packed, as zip bombs do; the pipeline limit (limits.max_compression_ratio) is {allowed}"
            ),
            Self::SheetCells => format!(
                "the spreadsheet has more than {allowed} cells (reading stopped at {found}); the pipeline limit is limits.max_sheet_cells"
            ),
            Self::RtfGroupDepth => format!(
                "RTF groups nest at least {found} deep; docpipe reads at most {allowed} levels"
            ),
        }
    }
}

/// The bounds a parser keeps documents within.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Most PDF pages.
    pub max_pdf_pages: u32,
    /// Deepest HTML element nesting.
    pub max_html_depth: usize,
    /// Most bytes unpacked from a zip container.
    pub max_unpacked_bytes: u64,
    /// Most entries in a zip container.
    pub max_archive_entries: usize,
    /// Highest unpacked:packed ratio of a zip entry past its first MiB.
    pub max_compression_ratio: u64,
    /// Most spreadsheet cells.
    pub max_sheet_cells: usize,
}

impl Default for ParseLimits {
    /// The limits of `pipelines/default.toml`.
    fn default() -> Self {
        Self {
            max_pdf_pages: 2000,
            max_html_depth: 512,
            max_unpacked_bytes: 256 << 20,
            max_archive_entries: 10_000,
            max_compression_ratio: 100,
            max_sheet_cells: 1_000_000,
        }
    }
}

impl From<&LimitsConfig> for ParseLimits {
    fn from(limits: &LimitsConfig) -> Self {
        Self {
            max_pdf_pages: limits.max_pdf_pages,
            max_html_depth: limits.max_html_depth,
            max_unpacked_bytes: limits.max_unpacked_bytes,
            max_archive_entries: limits.max_archive_entries,
            max_compression_ratio: limits.max_compression_ratio,
            max_sheet_cells: limits.max_sheet_cells,
        }
    }
}

/// Parses documents within the pipeline's limits.
#[derive(Debug, Clone)]
pub struct DocumentParser {
    pdf_engine: PdfEngine,
    ocr: Option<Ocr>,
    limits: ParseLimits,
}

impl DocumentParser {
    /// A parser reading PDFs with `pdf_engine`, refusing documents beyond
    /// `limits`.
    pub fn new(pdf_engine: PdfEngine, limits: ParseLimits) -> Self {
        Self {
            pdf_engine,
            ocr: None,
            limits,
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
            ParseLimits::from(&config.limits),
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
        let limits = &self.limits;
        let parsed = catch_unwind(AssertUnwindSafe(|| match format {
            DocumentFormat::Pdf => pdf::parse(
                &self.pdf_engine,
                bytes,
                limits.max_pdf_pages,
                self.ocr.as_ref(),
            ),
            DocumentFormat::Html => html::parse(bytes, charset, limits.max_html_depth),
            DocumentFormat::Image => self.image(bytes),
            DocumentFormat::Markdown => markdown::parse(bytes, charset),
            DocumentFormat::Text => text::parse(bytes, charset),
            DocumentFormat::Rtf => rtf::parse(bytes),
            DocumentFormat::Csv => csv::parse(bytes, charset, limits.max_sheet_cells),
            DocumentFormat::Docx
            | DocumentFormat::Pptx
            | DocumentFormat::Xlsx
            | DocumentFormat::Odt
            | DocumentFormat::Ods
            | DocumentFormat::Odp
            | DocumentFormat::Epub => self.container(bytes, format),
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
                _ => "the document holds no text",
            }));
        }
        Ok(parsed)
    }

    /// A zip container: Office Open XML, OpenDocument or EPUB.
    fn container(
        &self,
        bytes: &[u8],
        format: DocumentFormat,
    ) -> Result<ParsedDocument, ParseError> {
        let limits = archive::ArchiveLimits {
            unpacked_bytes: self.limits.max_unpacked_bytes,
            entries: self.limits.max_archive_entries,
            compression_ratio: self.limits.max_compression_ratio,
        };
        let mut archive = archive::Archive::open(bytes, limits, format.name())?;
        let cells = self.limits.max_sheet_cells;
        match format {
            DocumentFormat::Docx => office::docx::parse(&mut archive),
            DocumentFormat::Pptx => office::pptx::parse(&mut archive),
            DocumentFormat::Xlsx => office::xlsx::parse(&mut archive, cells),
            DocumentFormat::Epub => epub::parse(&mut archive, self.limits.max_html_depth),
            _ => office::odf::parse(&mut archive, format, cells),
        }
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
        // Bytes cannot tell Markdown from plain text (or from HTML that
        // a text file quotes): for text, the declaration says which.
        (Some(declared), Ok(found))
            if declared.is_plain_text_family() && found.is_plain_text_family() =>
        {
            Ok(declared)
        }
        (_, Err(error)) => Err(error),
        (Some(declared), Ok(found)) if declared != found => Err(ParseError::ContentTypeMismatch {
            declared,
            found: found.name(),
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
        let error = DocumentParser::new(PdfEngine::PdfExtract, ParseLimits::default())
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
        let error = DocumentParser::new(PdfEngine::PdfExtract, ParseLimits::default())
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
        let error = DocumentParser::new(PdfEngine::PdfExtract, ParseLimits::default())
            .parse(
                b"<html><body>\n  \t <script>var x = 1;</script></body></html>",
                None,
            )
            .unwrap_err();
        assert!(matches!(error, ParseError::NoText(_)), "{error}");
        assert_eq!(error.class(), ErrorClass::Permanent);
    }
}
