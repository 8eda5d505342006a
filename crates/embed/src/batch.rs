//! Token-budget batching: which pending texts go into the next model call.
//!
//! A transformer's cost grows with the padded batch (texts × longest text),
//! so batches are formed by a token budget rather than a fixed count, from
//! texts of similar length so that little of the budget is padding.

/// The largest model call the batcher forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most texts in one call.
    pub max_texts: usize,
    /// Most padded tokens (texts × longest text) in one call. A single text
    /// longer than this still forms a batch of its own.
    pub max_tokens: usize,
}

impl BatchLimits {
    /// Limits of at least one text and one token.
    pub fn new(max_texts: usize, max_tokens: usize) -> Self {
        Self {
            max_texts: max_texts.max(1),
            max_tokens: max_tokens.max(1),
        }
    }

    /// Whether `count` texts, the longest `longest` tokens, fit in one call.
    fn fits(&self, count: usize, longest: usize) -> bool {
        count <= 1 || (count <= self.max_texts && count * longest <= self.max_tokens)
    }
}

/// The next batch from `lengths` (token counts of the pending texts): the
/// indexes of the texts to embed together, shortest first. The text at
/// `anchor` is always in it (the caller picks it so that no text waits
/// forever); around it go the texts that add the least padding, while the
/// batch fits `limits`.
pub fn next_batch(lengths: &[usize], anchor: usize, limits: BatchLimits) -> Vec<usize> {
    if lengths.is_empty() {
        return Vec::new();
    }
    let mut by_length: Vec<usize> = (0..lengths.len()).collect();
    // Stable: among equal lengths, earlier texts come first.
    by_length.sort_by_key(|&index| lengths[index]);
    let anchor = by_length
        .iter()
        .position(|&index| index == anchor)
        .expect("the anchor is pending");
    let (mut low, mut high) = (anchor, anchor + 1);
    let length = |position: usize| lengths[by_length[position]];
    loop {
        let count = high - low;
        let longest = length(high - 1);
        // Padding each neighbour would add: a shorter text is padded up to
        // the longest; a longer one pads every text already in the batch.
        let shorter =
            (low > 0 && limits.fits(count + 1, longest)).then(|| longest - length(low - 1));
        let longer = (high < by_length.len() && limits.fits(count + 1, length(high)))
            .then(|| (length(high) - longest) * count);
        match (shorter, longer) {
            (Some(shorter), Some(longer)) if longer < shorter => high += 1,
            (Some(_), _) => low -= 1,
            (None, Some(_)) => high += 1,
            (None, None) => break,
        }
    }
    by_length[low..high].to_vec()
}

/// Splits texts of `lengths` into batches that fit `limits`, every text in
/// exactly one batch, each batch of similar lengths.
pub fn plan(lengths: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
    let mut remaining: Vec<usize> = (0..lengths.len()).collect();
    let mut batches = Vec::new();
    while !remaining.is_empty() {
        let pending: Vec<usize> = remaining.iter().map(|&index| lengths[index]).collect();
        let chosen = next_batch(&pending, 0, limits);
        batches.push(chosen.iter().map(|&position| remaining[position]).collect());
        let mut taken = chosen;
        taken.sort_unstable_by(|a, b| b.cmp(a));
        for position in taken {
            remaining.remove(position);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stays_within_the_token_budget_and_the_text_count() {
        let limits = BatchLimits::new(3, 100);
        let batch = next_batch(&[10, 10, 10, 10, 10], 0, limits);
        assert_eq!(batch.len(), 3, "the text count binds");
        let batch = next_batch(&[30, 30, 30, 30], 0, BatchLimits::new(16, 100));
        assert_eq!(batch.len(), 3, "3 × 30 fits 100, 4 × 30 does not");
    }

    #[test]
    fn texts_of_similar_length_go_together_around_the_anchor() {
        // The anchor (index 3) has 50 tokens; the budget takes two more
        // texts, and they are its nearest neighbours in length, not the
        // shortest ones.
        let lengths = [5, 200, 48, 50, 52, 7, 190];
        let batch = next_batch(&lengths, 3, BatchLimits::new(16, 160));
        let mut chosen: Vec<usize> = batch.iter().map(|&index| lengths[index]).collect();
        chosen.sort_unstable();
        assert_eq!(chosen, [48, 50, 52]);
        assert!(batch.contains(&3));
    }

    #[test]
    fn a_text_longer_than_the_budget_is_a_batch_of_its_own() {
        assert_eq!(next_batch(&[500, 10], 0, BatchLimits::new(16, 100)), [0]);
    }

    #[test]
    fn a_plan_covers_every_text_once() {
        let lengths: Vec<usize> = (0..100).map(|index| (index * 37) % 250 + 3).collect();
        let limits = BatchLimits::new(16, 2048);
        let batches = plan(&lengths, limits);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        for batch in &batches {
            let longest = batch.iter().map(|&index| lengths[index]).max().unwrap();
            assert!(batch.len() <= 16 && batch.len() * longest <= 2048);
        }
    }
}
