//! Parsing throughput per format, on the generated documents of
//! `fixtures/formats/` (and a PDF and an HTML page of the corpus for
//! comparison), compiled into the bench so that it runs anywhere; and OCR
//! pages per second on the scanned page of `fixtures/pdf/`.

use crate::{BenchError, failed};
use docpipe_core::PipelineConfig;
use docpipe_parse::{DocumentParser, Ocr, ParseLimits, PdfEngine};
use std::time::{Duration, Instant};

/// How long each format is parsed over and over.
const MEASURE_FOR: Duration = Duration::from_millis(500);

/// One document per format: (format, file, bytes).
const SAMPLES: [(&str, &str, &[u8]); 13] = [
    (
        "PDF",
        "sourdough-bread.pdf",
        include_bytes!("../../../fixtures/corpus/sourdough-bread.pdf"),
    ),
    (
        "HTML",
        "man-ls.1.html",
        include_bytes!("../../../fixtures/corpus/man-ls.1.html"),
    ),
    (
        "DOCX",
        "cold-chain.docx",
        include_bytes!("../../../fixtures/formats/cold-chain.docx"),
    ),
    (
        "PPTX",
        "tide-pools.pptx",
        include_bytes!("../../../fixtures/formats/tide-pools.pptx"),
    ),
    (
        "XLSX",
        "energy-budget.xlsx",
        include_bytes!("../../../fixtures/formats/energy-budget.xlsx"),
    ),
    (
        "ODT",
        "lighthouse-lenses.odt",
        include_bytes!("../../../fixtures/formats/lighthouse-lenses.odt"),
    ),
    (
        "ODS",
        "marathon-log.ods",
        include_bytes!("../../../fixtures/formats/marathon-log.ods"),
    ),
    (
        "ODP",
        "composting.odp",
        include_bytes!("../../../fixtures/formats/composting.odp"),
    ),
    (
        "EPUB",
        "lichens.epub",
        include_bytes!("../../../fixtures/formats/lichens.epub"),
    ),
    (
        "Markdown",
        "error-handling.md",
        include_bytes!("../../../fixtures/formats/error-handling.md"),
    ),
    (
        "text",
        "cafe-menu.txt",
        include_bytes!("../../../fixtures/formats/cafe-menu.txt"),
    ),
    (
        "RTF",
        "bicycle-care.rtf",
        include_bytes!("../../../fixtures/formats/bicycle-care.rtf"),
    ),
    (
        "CSV",
        "seed-library.csv",
        include_bytes!("../../../fixtures/formats/seed-library.csv"),
    ),
];

/// A page of text with no text layer: what OCR reads.
const SCANNED_PAGE: &[u8] = include_bytes!("../../../fixtures/pdf/scanned.pdf");

/// How fast one format parses.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FormatThroughput {
    /// The format.
    pub format: &'static str,
    /// The sample document.
    pub file: &'static str,
    /// Its size.
    pub bytes: usize,
    /// Its pages, slides or sheets (none for unpaginated formats).
    pub pages: Option<u32>,
    /// Source megabytes parsed per second.
    pub mb_per_s: f64,
    /// Pages, slides or sheets per second.
    pub pages_per_s: Option<f64>,
}

/// Parses each sample for about half a second with the pipeline's PDF
/// engine and limits.
pub(crate) fn parse_throughput(
    config: &PipelineConfig,
) -> Result<Vec<FormatThroughput>, BenchError> {
    let engine =
        PdfEngine::load(config.parse.pdf_engine).map_err(failed("loading the PDF engine"))?;
    let parser = DocumentParser::new(engine, ParseLimits::from(&config.limits));
    let mut results = Vec::new();
    for (format, file, bytes) in SAMPLES {
        let (pages, seconds_each) = time_parses(&parser, bytes, MEASURE_FOR)?;
        results.push(FormatThroughput {
            format,
            file,
            bytes: bytes.len(),
            pages,
            mb_per_s: bytes.len() as f64 / 1e6 / seconds_each,
            pages_per_s: pages.map(|pages| f64::from(pages) / seconds_each),
        });
    }
    Ok(results)
}

/// OCR pages per second on one scanned page, when Tesseract runs here
/// (`None` otherwise: OCR is opt-in and may not be installed).
pub(crate) fn ocr_pages_per_s(config: &PipelineConfig) -> Result<Option<f64>, BenchError> {
    let ocr = Ocr::new(
        &config.parse.ocr_languages,
        Duration::from_secs(config.parse.ocr_page_timeout_secs),
    );
    let Ok(engine) = PdfEngine::load(docpipe_core::config::PdfEngineKind::Pdfium) else {
        return Ok(None);
    };
    if ocr.check().is_err() {
        return Ok(None);
    }
    let parser = DocumentParser::new(engine, ParseLimits::from(&config.limits)).with_ocr(ocr);
    let (_, seconds_each) = time_parses(&parser, SCANNED_PAGE, Duration::from_secs(2))?;
    Ok(Some(1.0 / seconds_each))
}

/// Parses `bytes` at least three times and for at least `at_least`;
/// returns the document's pages and the seconds one parse takes.
fn time_parses(
    parser: &DocumentParser,
    bytes: &[u8],
    at_least: Duration,
) -> Result<(Option<u32>, f64), BenchError> {
    let started = Instant::now();
    let mut parses = 0u32;
    let mut pages = None;
    while parses < 3 || started.elapsed() < at_least {
        let document = parser
            .parse(bytes, None)
            .map_err(failed("parsing a format sample"))?;
        pages = document.page_count;
        parses += 1;
    }
    Ok((pages, started.elapsed().as_secs_f64() / f64::from(parses)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_parses_without_declaring_its_type() {
        let parser = DocumentParser::new(PdfEngine::PdfExtract, ParseLimits::default());
        for (format, file, bytes) in SAMPLES {
            let document = parser
                .parse(bytes, None)
                .unwrap_or_else(|error| panic!("{format} {file}: {error}"));
            assert!(document.has_text(), "{file}");
        }
    }
}
