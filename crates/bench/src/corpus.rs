//! A generated, deterministic benchmark corpus: HTML pages and PDFs of
//! mixed sizes.

use std::path::{Path, PathBuf};

const WORDS: [&str; 48] = [
    "harbour", "lantern", "granite", "meadow", "copper", "falcon", "orchard", "glacier", "timber",
    "saffron", "quarry", "beacon", "willow", "cobalt", "thistle", "ember", "river", "valley",
    "signal", "engine", "ledger", "compass", "canvas", "market", "bridge", "winter", "garden",
    "signal", "archive", "pattern", "circuit", "harvest", "mirror", "season", "voyage", "pillar",
    "quartz", "horizon", "station", "crystal", "fabric", "meadow", "summit", "anchor", "delta",
    "forest", "island", "canyon",
];

/// A sentence of `words` words, deterministic in `seed`.
fn sentence(seed: usize, words: usize) -> String {
    let mut text: Vec<&str> = (0..words)
        .map(|index| WORDS[(seed * 31 + index * 17 + index * index) % WORDS.len()])
        .collect();
    text.insert(0, "The");
    format!("{} and so on.", text.join(" "))
}

fn paragraph(seed: usize) -> String {
    (0..5)
        .map(|index| sentence(seed * 7 + index, 12))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `count` documents under `dir`: two HTML pages for every PDF,
/// sizes cycling from a few paragraphs to several pages. Returns their paths.
pub fn write(dir: &Path, count: usize) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    (0..count)
        .map(|index| {
            let sections = 2 + index % 9;
            if index % 3 == 2 {
                let path = dir.join(format!("report-{index:04}.pdf"));
                let pages: Vec<Vec<String>> = (0..sections.div_ceil(2))
                    .map(|page| {
                        let mut lines = vec![format!("Section {index}.{page}")];
                        for line in 0..2 {
                            lines.push(paragraph(index * 100 + page * 10 + line));
                        }
                        lines
                    })
                    .collect();
                std::fs::write(&path, text_pdf(&pages))?;
                Ok(path)
            } else {
                let path = dir.join(format!("page-{index:04}.html"));
                let body: String = (0..sections)
                    .map(|section| {
                        format!(
                            "<h2>Part {section}</h2><p>{}</p><p>{}</p>",
                            paragraph(index * 100 + section * 2),
                            paragraph(index * 100 + section * 2 + 1)
                        )
                    })
                    .collect();
                std::fs::write(
                    &path,
                    format!(
                        "<!DOCTYPE html><html><head><title>Page {index}</title>\
                         <script>var tracking = 1;</script></head><body><nav>Home | About</nav>\
                         <h1>Page {index}</h1>{body}<footer>(c) bench</footer></body></html>"
                    ),
                )?;
                Ok(path)
            }
        })
        .collect()
}

/// Writes a PDF of `pages` pages, each a heading and two paragraphs, as
/// `dir/long-report.pdf`; returns its path.
pub fn write_long_pdf(dir: &Path, pages: usize) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("long-report.pdf");
    let pages: Vec<Vec<String>> = (0..pages)
        .map(|page| {
            vec![
                format!("Chapter {page}"),
                paragraph(900_000 + page * 2),
                paragraph(900_001 + page * 2),
            ]
        })
        .collect();
    std::fs::write(&path, text_pdf(&pages))?;
    Ok(path)
}

/// A minimal PDF: one Helvetica text block per page, a line per entry,
/// long lines wrapped at about 90 characters.
pub fn text_pdf(pages: &[Vec<String>]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        String::new(), // the page tree, filled in below
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    let mut kids = Vec::new();
    for lines in pages {
        let mut content = String::from("BT /F1 10 Tf 12 TL 50 800 Td\n");
        for line in lines {
            for wrapped in wrap(line, 90) {
                let escaped = wrapped
                    .replace('\\', "\\\\")
                    .replace('(', "\\(")
                    .replace(')', "\\)");
                content.push_str(&format!("({escaped}) Tj T*\n"));
            }
            content.push_str("T*\n");
        }
        content.push_str("ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
        let contents = objects.len();
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {contents} 0 R \
             /Resources << /Font << /F1 3 0 R >> >> >>"
        ));
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    );
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("there is always a line");
        if !line.is_empty() && line.len() + word.len() + 1 > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_documents_parse_with_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write(dir.path(), 6).unwrap();
        let parser = docpipe_parse::DocumentParser::new(
            docpipe_parse::PdfEngine::load(docpipe_core::config::PdfEngineKind::Pdfium).unwrap(),
            docpipe_parse::ParseLimits::default(),
        );
        for path in paths {
            let document = parser.parse(&std::fs::read(&path).unwrap(), None).unwrap();
            assert!(
                document.text.contains("and so on."),
                "{path:?}: {}",
                document.text
            );
        }
    }
}
