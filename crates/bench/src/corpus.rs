//! Generated, deterministic benchmark corpora: HTML pages and PDFs of
//! mixed sizes, in a small fixed vocabulary ([`write`]) or in prose with
//! the word statistics of real text ([`write_prose`]).

use crate::random::XorShift;
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

/// Five sentences over the 48 words: every chunk holds most of them.
fn paragraph(seed: usize) -> String {
    (0..5)
        .map(|index| sentence(seed * 7 + index, 12))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The most frequent English words, most frequent first: the head of the
/// prose vocabulary, found in nearly every chunk as in real text.
const COMMON_WORDS: [&str; 64] = [
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "was", "on",
    "be", "by", "this", "are", "from", "or", "an", "at", "which", "not", "have", "has", "but",
    "can", "all", "its", "one", "more", "when", "their", "also", "been", "into", "other", "only",
    "if", "may", "than", "these", "some", "each", "used", "new", "such", "after", "over",
    "between", "through", "where", "most", "both", "two", "first", "under", "while", "many",
    "then", "those", "because", "there",
];

/// Words in the prose vocabulary: the common words, then made-up ones.
const PROSE_VOCABULARY: usize = 40_000;

/// Text whose words follow Zipf's law (the word of rank r is drawn with
/// probability proportional to 1 / r) over a vocabulary of
/// [`PROSE_VOCABULARY`] words, as in real text: a few words are in every
/// chunk and most in a handful, so a query's rare words find few chunks.
/// Deterministic in its seed.
struct Prose {
    /// Cumulative probability of the words up to each rank.
    cumulative: Vec<f64>,
    random: XorShift,
}

impl Prose {
    fn new(seed: u64) -> Self {
        let mut sum = 0.0;
        let mut cumulative: Vec<f64> = (1..=PROSE_VOCABULARY)
            .map(|rank| {
                sum += 1.0 / rank as f64;
                sum
            })
            .collect();
        cumulative.iter_mut().for_each(|share| *share /= sum);
        Self {
            cumulative,
            random: XorShift::new(seed),
        }
    }

    fn word(&mut self) -> String {
        let draw = self.random.unit();
        let rank = self.cumulative.partition_point(|&sum| sum < draw);
        prose_word(rank.min(PROSE_VOCABULARY - 1))
    }

    /// Five sentences of 8 to 23 words.
    fn paragraph(&mut self) -> String {
        (0..5)
            .map(|_| {
                let length = 8 + (self.random.next_u64() % 16) as usize;
                let words: Vec<String> = (0..length).map(|_| self.word()).collect();
                let mut sentence = words.join(" ");
                sentence[..1].make_ascii_uppercase();
                sentence + "."
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The word of rank `rank` (from 0): a common word, or a made-up one of
/// two or three syllables and a final "n" (without it, "more" and "some"
/// would be made up too), distinct for every rank.
fn prose_word(rank: usize) -> String {
    const ONSETS: [&str; 16] = [
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st", "tr",
    ];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ai"];
    if let Some(word) = COMMON_WORDS.get(rank) {
        return (*word).to_owned();
    }
    // Digits of the rank in base 96 (onset × vowel), one syllable each,
    // and at least two syllables so no made-up word is a common one.
    let mut number = rank - COMMON_WORDS.len();
    let mut word = String::new();
    for syllable in 0.. {
        let digit = number % 96;
        word.push_str(ONSETS[digit / 6]);
        word.push_str(VOWELS[digit % 6]);
        number /= 96;
        if number == 0 && syllable >= 1 {
            break;
        }
    }
    word.push('n');
    word
}

/// Writes `count` documents under `dir` in the small fixed vocabulary: two
/// HTML pages for every PDF, sizes cycling from a few paragraphs to several
/// pages. Returns their paths.
pub fn write(dir: &Path, count: usize) -> std::io::Result<Vec<PathBuf>> {
    write_with(dir, count, paragraph)
}

/// Writes `count` documents under `dir` as [`write`] does, in prose with
/// the word statistics of real text (see `Prose`). Returns their paths.
pub fn write_prose(dir: &Path, count: usize, seed: u64) -> std::io::Result<Vec<PathBuf>> {
    let mut prose = Prose::new(seed);
    write_with(dir, count, |_| prose.paragraph())
}

/// Writes `count` documents under `dir`, their paragraphs from `paragraph`
/// (given a seed).
fn write_with(
    dir: &Path,
    count: usize,
    mut paragraph: impl FnMut(usize) -> String,
) -> std::io::Result<Vec<PathBuf>> {
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

    #[test]
    fn every_rank_of_the_prose_vocabulary_is_a_word_of_its_own() {
        let words: std::collections::HashSet<String> =
            (0..PROSE_VOCABULARY).map(prose_word).collect();
        assert_eq!(words.len(), PROSE_VOCABULARY);
    }

    #[test]
    fn prose_has_a_few_words_everywhere_and_most_words_rarely() {
        let mut prose = Prose::new(7);
        let paragraphs: Vec<String> = (0..400).map(|_| prose.paragraph()).collect();
        let share_holding = |word: &str| {
            let holding = paragraphs
                .iter()
                .filter(|paragraph| {
                    paragraph
                        .split(|c: char| !c.is_ascii_alphabetic())
                        .any(|token| token.eq_ignore_ascii_case(word))
                })
                .count();
            holding as f64 / paragraphs.len() as f64
        };
        assert!(share_holding("the") > 0.9, "{}", share_holding("the"));
        let rare = prose_word(5_000);
        assert!(
            share_holding(&rare) < 0.05,
            "{rare}: {}",
            share_holding(&rare)
        );
        assert_eq!(Prose::new(7).paragraph(), paragraphs[0], "deterministic");
    }
}
