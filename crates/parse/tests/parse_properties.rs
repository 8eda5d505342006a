//! Property tests: no input makes a panic escape the parser, whether
//! random bytes, random markup, or real PDFs mangled at random.

use docpipe_core::config::PdfEngineKind;
use docpipe_parse::{DocumentParser, ParseLimits, PdfEngine};
use proptest::prelude::*;

fn parser() -> DocumentParser {
    DocumentParser::new(
        PdfEngine::load(PdfEngineKind::Pdfium).unwrap(),
        ParseLimits {
            max_pdf_pages: 50,
            max_html_depth: 256,
            ..ParseLimits::default()
        },
    )
}

fn fixture(relative: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(relative);
    std::fs::read(path).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parser().parse(&bytes, None);
    }

    #[test]
    fn arbitrary_markup_never_panics(
        parts in prop::collection::vec(
            prop_oneof![
                Just("<div>"), Just("</div>"), Just("<p>"), Just("<li>"), Just("<ul>"),
                Just("<h2>"), Just("</h2>"), Just("<script>"), Just("</script>"),
                Just("<!--"), Just("-->"), Just("<br/>"), Just("<"), Just(">"),
                Just("<meta charset=\"windows-1252\">"), Just("text é "), Just("\u{0}"),
            ],
            0..200,
        )
    ) {
        let _ = parser().parse(parts.concat().as_bytes(), None);
    }

    #[test]
    fn mangled_pdfs_never_panic(
        cut in 0usize..8000,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
    ) {
        let mut pdf = fixture("corpus/sourdough-bread.pdf");
        for (index, byte) in flips {
            let at = index.index(pdf.len());
            pdf[at] = byte;
        }
        pdf.truncate(cut.max(8).min(pdf.len()));
        let _ = parser().parse(&pdf, None);
    }
}
