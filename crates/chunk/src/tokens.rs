//! Token counts of ranges of one text, from one pass of the tokenizer.
//!
//! The splitter sizes many overlapping candidate chunks of a document, most
//! of them several times longer than the chunk it settles on; tokenizing
//! each one cost more CPU than the rest of chunking together. With a BERT
//! WordPiece tokenizer a word's tokens do not depend on its neighbours
//! (normalisation works character by character, and the pre-tokenizer splits
//! at whitespace and punctuation), so a range's token count is the sum of
//! the tokens of the words it holds whole, plus the tokens of the pieces of
//! words its edges cut through, tokenized on their own. Other tokenizers
//! (byte-level BPE marks a word's leading space, for one) are asked about
//! every range.

use std::ops::Range;
use text_splitter::ChunkSizer as _;
use tokenizers::{ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

/// The tokenizer is run over windows of about this many bytes, cut at
/// whitespace, so the encoding of a large document is never held at once.
const WINDOW_BYTES: usize = 64 * 1024;

/// Counts the model tokens of any range of one text.
pub struct TokenCounter<'a> {
    tokenizer: &'a Tokenizer,
    text: &'a str,
    /// The words as the tokenizer split them (byte ranges, in order), when
    /// its words are independent of each other.
    words: Option<Words>,
}

/// Words and how many tokens precede each.
struct Words {
    spans: Vec<Range<usize>>,
    /// `tokens_before[i]` is the token count of words `0..i`.
    tokens_before: Vec<usize>,
}

impl<'a> TokenCounter<'a> {
    /// A counter for ranges of `text`. `tokenizer` must not pad or truncate.
    pub fn new(tokenizer: &'a Tokenizer, text: &'a str) -> Self {
        let words = words_are_independent(tokenizer)
            .then(|| Words::of(tokenizer, text))
            .flatten();
        Self {
            tokenizer,
            text,
            words,
        }
    }

    /// Whether ranges are counted from the words (the tokenizer's words are
    /// independent of each other, as BERT WordPiece's are) rather than
    /// tokenized one by one.
    pub fn counts_words(&self) -> bool {
        self.words.is_some()
    }

    /// The tokens of `text[range]` (without special tokens); exactly what
    /// the tokenizer gives for that slice alone.
    pub fn count(&self, range: Range<usize>) -> usize {
        let Some(words) = &self.words else {
            return self.tokenize(range);
        };
        let spans = &words.spans;
        // Words from `first` to `past` lie wholly inside the range.
        let first = spans.partition_point(|word| word.start < range.start);
        let past = spans.partition_point(|word| word.end <= range.end);
        let cut_at_start = first
            .checked_sub(1)
            .filter(|&word| spans[word].end > range.start);
        let cut_at_end = (past < spans.len() && spans[past].start < range.end).then_some(past);
        if cut_at_start.is_some() && cut_at_start == cut_at_end {
            // The range lies inside one word.
            return self.tokenize(range);
        }
        let whole = words.tokens_before[past.max(first)] - words.tokens_before[first];
        let head = cut_at_start.map_or(0, |word| self.tokenize(range.start..spans[word].end));
        let tail = cut_at_end.map_or(0, |word| self.tokenize(spans[word].start..range.end));
        whole + head + tail
    }

    /// The tokens of `slice`: counted by range when it is part of the text
    /// (the splitter's candidates are), tokenized otherwise.
    pub fn count_slice(&self, slice: &str) -> usize {
        let start = (slice.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        if start <= self.text.len() && slice.len() <= self.text.len() - start {
            self.count(start..start + slice.len())
        } else {
            self.tokenizer.size(slice)
        }
    }

    fn tokenize(&self, range: Range<usize>) -> usize {
        self.tokenizer.size(&self.text[range])
    }
}

/// Whether a word's tokens depend on that word alone: WordPiece after the
/// BERT pre-tokenizer, with the BERT normalizer or none.
fn words_are_independent(tokenizer: &Tokenizer) -> bool {
    matches!(tokenizer.get_model(), ModelWrapper::WordPiece(_))
        && matches!(
            tokenizer.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        )
        && matches!(
            tokenizer.get_normalizer(),
            None | Some(NormalizerWrapper::BertNormalizer(_))
        )
}

impl Words {
    /// The words of `text` with their token counts; `None` if the tokenizer
    /// fails on it (every range is then tokenized on its own).
    fn of(tokenizer: &Tokenizer, text: &str) -> Option<Self> {
        let mut words = Self {
            spans: Vec::new(),
            tokens_before: vec![0],
        };
        for (base, window) in windows(text) {
            let encoding = tokenizer.encode(window, false).ok()?;
            // Consecutive tokens of one word share its id.
            let mut current: Option<(u32, Range<usize>, usize)> = None;
            for (&word, &(start, end)) in encoding.get_word_ids().iter().zip(encoding.get_offsets())
            {
                let Some(word) = word else { continue };
                match &mut current {
                    Some((id, span, tokens)) if *id == word => {
                        span.end = base + end;
                        *tokens += 1;
                    }
                    _ => {
                        words.push(current.take());
                        current = Some((word, base + start..base + end, 1));
                    }
                }
            }
            words.push(current);
        }
        Some(words)
    }

    fn push(&mut self, word: Option<(u32, Range<usize>, usize)>) {
        if let Some((_, span, tokens)) = word {
            let before = self.tokens_before.last().copied().unwrap_or_default();
            self.spans.push(span);
            self.tokens_before.push(before + tokens);
        }
    }
}

/// `text` in pieces of about [`WINDOW_BYTES`], each with its offset, cut
/// before a whitespace character so that no word spans two pieces (a run
/// with no whitespace at all is cut where it must be: its pieces then count
/// as words of their own, which only overestimates a range holding both).
fn windows(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let mut end = (start + WINDOW_BYTES).min(text.len());
        if end < text.len() {
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if let Some(space) = text[start..end].rfind(char::is_whitespace)
                && space > 0
            {
                end = start + space;
            }
        }
        let window = (start, &text[start..end]);
        start = end;
        Some(window)
    })
}
