//! Choosing and loading the PDF engine.

use docpipe_core::config::PdfEngineKind;
use pdfium_render::prelude::Pdfium;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The PDF text extractor a [`DocumentParser`](crate::DocumentParser) uses.
#[derive(Clone, Copy)]
pub enum PdfEngine {
    /// PDFium, bound once per process.
    Pdfium(&'static Pdfium),
    /// pdf-extract.
    PdfExtract,
}

impl std::fmt::Debug for PdfEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.kind().as_str())
    }
}

/// PDFium could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cannot load PDFium from {path}: {reason}; run `make setup` (it links libpdfium.so from the \
     PyPI pypdfium2 wheel), set DOCPIPE_PDFIUM_PATH to libpdfium.so, or set \
     parse.pdf_engine = \"pdf-extract\" in the pipeline file"
)]
pub struct PdfEngineError {
    /// Where the library was looked for.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl PdfEngine {
    /// The engine of that kind; PDFium is loaded from `DOCPIPE_PDFIUM_PATH`,
    /// else `$DOCPIPE_HOME/lib/libpdfium.so` (`DOCPIPE_HOME` defaulting to
    /// `.docpipe`), once per process.
    pub fn load(kind: PdfEngineKind) -> Result<Self, PdfEngineError> {
        match kind {
            PdfEngineKind::PdfExtract => Ok(Self::PdfExtract),
            PdfEngineKind::Pdfium => pdfium().map(Self::Pdfium),
        }
    }

    /// Which engine this is.
    pub fn kind(&self) -> PdfEngineKind {
        match self {
            Self::Pdfium(_) => PdfEngineKind::Pdfium,
            Self::PdfExtract => PdfEngineKind::PdfExtract,
        }
    }
}

fn pdfium() -> Result<&'static Pdfium, PdfEngineError> {
    static PDFIUM: OnceLock<Result<Pdfium, PdfEngineError>> = OnceLock::new();
    PDFIUM
        .get_or_init(|| {
            let path = library_path();
            let bindings = Pdfium::bind_to_library(&path).map_err(|error| PdfEngineError {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            Ok(Pdfium::new(bindings))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn library_path() -> PathBuf {
    match std::env::var_os("DOCPIPE_PDFIUM_PATH") {
        Some(path) => path.into(),
        None => std::env::var_os("DOCPIPE_HOME")
            .map_or_else(|| PathBuf::from(".docpipe"), PathBuf::from)
            .join("lib/libpdfium.so"),
    }
}
