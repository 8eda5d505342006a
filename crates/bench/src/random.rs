//! The bench's one source of randomness: deterministic in its seed, so a
//! corpus or a perturbation is the same in every run.

/// A xorshift generator (Marsaglia's 13/7/17 variant).
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value: xorshift must not start at
    /// zero, so the seed is spread and made odd).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A uniform draw in [0, 1), from the top 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn draws_are_deterministic_in_the_seed_and_stay_in_the_unit_interval() {
        let draws = |seed| {
            let mut random = XorShift::new(seed);
            (0..1000).map(|_| random.unit()).collect::<Vec<_>>()
        };
        assert_eq!(draws(0), draws(0));
        assert_ne!(draws(0), draws(1));
        assert!(draws(0).iter().all(|draw| (0.0..1.0).contains(draw)));
    }
}
