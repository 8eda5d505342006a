//! OCR of page images with Tesseract (the `tesseract` program, Debian's
//! `tesseract-ocr`): a page image goes in on stdin as a PGM, words with
//! their confidence come back as TSV. One process per page, killed when it
//! outlives its time limit, so a page never stalls the worker.

use crate::pdf::Line;
use std::io::{Read, Write as _};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Reads text from page images.
#[derive(Debug, Clone)]
pub struct Ocr {
    program: String,
    languages: String,
    page_timeout: Duration,
}

/// Why a page could not be read by OCR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// Tesseract is not installed or cannot start.
    #[error(
        "cannot run {program} ({reason}); install Debian's tesseract-ocr and tesseract-ocr-eng (make setup does), or set parse.ocr = false"
    )]
    Unavailable {
        /// The program run.
        program: String,
        /// Why it could not start.
        reason: String,
    },
    /// Tesseract failed on the page.
    #[error("Tesseract failed: {0}")]
    Failed(String),
    /// The page took longer than the pipeline allows.
    #[error("OCR of the page took longer than {0:?} (parse.ocr_page_timeout_secs)")]
    TimedOut(Duration),
}

/// A page's text as OCR read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OcrText {
    pub(crate) lines: Vec<Line>,
    /// The mean of the words' confidences, 0 to 100.
    pub(crate) confidence: f32,
}

/// A grayscale page image, one byte per pixel, rows `width` apart.
pub(crate) struct GrayImage {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) pixels: Vec<u8>,
}

impl Ocr {
    /// OCR in `languages` (Tesseract's codes joined by `+`, e.g. `eng+deu`),
    /// at most `page_timeout` per page.
    pub fn new(languages: &str, page_timeout: Duration) -> Self {
        Self {
            program: "tesseract".into(),
            languages: languages.to_owned(),
            page_timeout,
        }
    }

    /// Checks that Tesseract runs and has the languages, so that a worker
    /// set up for OCR fails at start rather than on its first scan.
    pub fn check(&self) -> Result<(), OcrError> {
        let output = Command::new(&self.program)
            .arg("--list-langs")
            .output()
            .map_err(|error| self.unavailable(error.to_string()))?;
        let installed = String::from_utf8_lossy(&output.stdout);
        let missing: Vec<&str> = self
            .languages
            .split('+')
            .filter(|language| !installed.lines().any(|line| line.trim() == *language))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.unavailable(format!(
                "no traineddata for {}: install tesseract-ocr-<language>",
                missing.join(", ")
            )))
        }
    }

    fn unavailable(&self, reason: String) -> OcrError {
        OcrError::Unavailable {
            program: self.program.clone(),
            reason,
        }
    }

    /// The text of a page image.
    pub(crate) fn read(&self, image: &GrayImage) -> Result<OcrText, OcrError> {
        let mut pgm = format!("P5\n{} {}\n255\n", image.width, image.height).into_bytes();
        pgm.extend_from_slice(&image.pixels);
        self.run(pgm)
    }

    /// The text of an image file (PNG, JPEG, TIFF: Tesseract decodes it).
    pub(crate) fn read_encoded(&self, image: &[u8]) -> Result<OcrText, OcrError> {
        self.run(image.to_vec())
    }

    /// Runs Tesseract on `image`, given on its stdin.
    fn run(&self, image: Vec<u8>) -> Result<OcrText, OcrError> {
        let mut child = Command::new(&self.program)
            .args([
                "stdin",
                "stdout",
                "-l",
                &self.languages,
                "--psm",
                "3",
                "tsv",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| self.unavailable(error.to_string()))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || stdin.write_all(&image));
        // Both outputs are read while it runs: a pipe left full would stall it.
        let stdout = drained(child.stdout.take().expect("stdout is piped"));
        let stderr = drained(child.stderr.take().expect("stderr is piped"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| OcrError::Failed(e.to_string()))?
            {
                break status;
            }
            if started.elapsed() > self.page_timeout {
                // Killing it closes its pipes, which ends the threads.
                let _ = child.kill();
                let _ = child.wait();
                return Err(OcrError::TimedOut(self.page_timeout));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = writer.join();
        let tsv = output_of(stdout)?;
        if !status.success() {
            let stderr = output_of(stderr).unwrap_or_default();
            return Err(OcrError::Failed(format!("{status}: {}", stderr.trim())));
        }
        Ok(text_of(&tsv))
    }
}

/// A thread reading `pipe` to its end.
fn drained(mut pipe: impl Read + Send + 'static) -> JoinHandle<std::io::Result<String>> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).map(|_| text)
    })
}

/// What a [`drained`] pipe held.
fn output_of(reader: JoinHandle<std::io::Result<String>>) -> Result<String, OcrError> {
    reader
        .join()
        .map_err(|_| OcrError::Failed("reading its output panicked".into()))?
        .map_err(|error| OcrError::Failed(error.to_string()))
}

/// Lines from Tesseract's TSV: words grouped by block, paragraph and line;
/// a paragraph starts where Tesseract's do.
fn text_of(tsv: &str) -> OcrText {
    let mut lines: Vec<Line> = Vec::new();
    let mut current: Option<(&str, &str, &str)> = None;
    let mut confidences = Vec::new();
    for row in tsv.lines().skip(1) {
        let fields: Vec<&str> = row.split('\t').collect();
        // level page block paragraph line word left top width height conf text
        let [level, _, block, paragraph, line, _, _, _, _, _, conf, word] = fields[..] else {
            continue;
        };
        let word = word.trim();
        if level != "5" || word.is_empty() {
            continue;
        }
        if let Ok(conf) = conf.parse::<f32>()
            && conf >= 0.0
        {
            confidences.push(conf);
        }
        let place = (block, paragraph, line);
        match lines.last_mut() {
            Some(last) if current == Some(place) => {
                last.text.push(' ');
                last.text.push_str(word);
            }
            _ => {
                let starts_paragraph = current.is_none_or(|(b, p, _)| (b, p) != (block, paragraph));
                lines.push(Line {
                    text: word.to_owned(),
                    size: None,
                    bold: false,
                    starts_paragraph,
                    at_edge: false,
                });
                current = Some(place);
            }
        }
    }
    let confidence = if confidences.is_empty() {
        0.0
    } else {
        confidences.iter().sum::<f32>() / confidences.len() as f32
    };
    OcrText { lines, confidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_gathered_into_lines_and_paragraphs() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
            5\t1\t1\t1\t1\t1\t0\t0\t9\t9\t96.5\tTides\n\
            5\t1\t1\t1\t1\t2\t0\t0\t9\t9\t93.5\tturn\n\
            5\t1\t1\t1\t2\t1\t0\t0\t9\t9\t90\ttwice.\n\
            5\t1\t1\t2\t1\t1\t0\t0\t9\t9\t80\tMoon\n";
        let text = text_of(tsv);
        let lines: Vec<(&str, bool)> = text
            .lines
            .iter()
            .map(|line| (line.text.as_str(), line.starts_paragraph))
            .collect();
        assert_eq!(
            lines,
            [("Tides turn", true), ("twice.", false), ("Moon", true)]
        );
        assert_eq!(text.confidence, 90.0);
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let ocr = Ocr {
            program: "/nonexistent/tesseract".into(),
            ..Ocr::new("eng", Duration::from_secs(1))
        };
        let error = ocr.check().unwrap_err();
        assert!(
            error.to_string().contains("install Debian's tesseract-ocr"),
            "{error}"
        );
    }
}
