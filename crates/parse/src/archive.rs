//! Zip containers (Office Open XML, OpenDocument, EPUB), read within
//! bounds: a zip bomb fails the document, never the worker.
//!
//! The sizes a zip declares are not trusted: every entry is inflated
//! through a counting reader that stops at the first byte beyond a limit.

use crate::{Limit, ParseError};
use std::io::{Cursor, Read};
use zip::ZipArchive;
use zip::result::ZipError;

/// How much of an entry is inflated before its compression ratio counts:
/// small, highly repetitive XML parts legitimately pack 200 to 1.
const RATIO_GRACE_BYTES: u64 = 1 << 20;

/// The bounds on one container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArchiveLimits {
    /// Most bytes unpacked, all entries together.
    pub unpacked_bytes: u64,
    /// Most entries.
    pub entries: usize,
    /// Highest unpacked:packed ratio of an entry past its first MiB.
    pub compression_ratio: u64,
}

/// An open zip container whose reads are counted against its limits.
pub(crate) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    limits: ArchiveLimits,
    unpacked: u64,
    what: &'static str,
}

impl<'a> Archive<'a> {
    /// Opens `bytes` as a zip container of the kind `what` names ("a Word
    /// document"), for messages.
    pub fn open(
        bytes: &'a [u8],
        limits: ArchiveLimits,
        what: &'static str,
    ) -> Result<Self, ParseError> {
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|error| corrupt(what, &error))?;
        if zip.len() > limits.entries {
            return Err(ParseError::ExceedsLimit {
                limit: Limit::ArchiveEntries,
                found: zip.len() as u64,
                allowed: limits.entries as u64,
            });
        }
        Ok(Self {
            zip,
            limits,
            unpacked: 0,
            what,
        })
    }

    /// The unpacked bytes of entry `name`, or `None` when there is none.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ParseError> {
        let what = self.what;
        let mut entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(error) => return Err(corrupt(what, &error)),
        };
        if entry.encrypted() {
            return Err(ParseError::EncryptedDocument(what));
        }
        let packed = entry.compressed_size().max(1);
        let budget = self.limits.unpacked_bytes.saturating_sub(self.unpacked);
        let mut unpacked = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let read = entry.read(&mut chunk).map_err(|error| {
                ParseError::CorruptDocument(format!("{what}: entry {name}: {error}"))
            })?;
            if read == 0 {
                break;
            }
            unpacked.extend_from_slice(&chunk[..read]);
            let size = unpacked.len() as u64;
            if size > budget {
                return Err(ParseError::ExceedsLimit {
                    limit: Limit::UnpackedBytes,
                    found: self.unpacked + size,
                    allowed: self.limits.unpacked_bytes,
                });
            }
            if size > RATIO_GRACE_BYTES && size / packed > self.limits.compression_ratio {
                return Err(ParseError::ExceedsLimit {
                    limit: Limit::CompressionRatio,
                    found: size / packed,
                    allowed: self.limits.compression_ratio,
                });
            }
        }
        self.unpacked += unpacked.len() as u64;
        Ok(Some(unpacked))
    }

    /// Entry `name`, which the format requires.
    pub fn require(&mut self, name: &str) -> Result<Vec<u8>, ParseError> {
        let what = self.what;
        self.read(name)?
            .ok_or_else(|| ParseError::CorruptDocument(format!("{what} without its part {name}")))
    }
}

fn corrupt(what: &str, error: &ZipError) -> ParseError {
    ParseError::CorruptDocument(format!("{what} whose zip container is unreadable: {error}"))
}

/// Resolves `target` relative to the directory of the part `base`
/// (`word/document.xml` + `media/a.png` → `word/media/a.png`), as OPC and
/// OPF references are.
pub(crate) fn resolve(base: &str, target: &str) -> String {
    if let Some(absolute) = target.strip_prefix('/') {
        return absolute.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for segment in target.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            segment => parts.push(segment),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_against_their_part() {
        assert_eq!(
            resolve("word/document.xml", "footnotes.xml"),
            "word/footnotes.xml"
        );
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(resolve("OEBPS/content.opf", "/x/y.xhtml"), "x/y.xhtml");
        assert_eq!(resolve("content.opf", "text/c1.xhtml"), "text/c1.xhtml");
    }
}
