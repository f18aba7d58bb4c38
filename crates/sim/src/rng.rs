//! Small deterministic hashing and random numbers.
//!
//! The simulator derives every value from `(seed, account, region, ...)` so that a
//! partition's records can be regenerated on demand, identically, in any process.
//! A hand-rolled splitmix64 keeps that stable across crate upgrades.

/// The splitmix64 finalizer: a bijection on `u64` with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a list of words into one (order matters).
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |acc, p| mix(acc ^ mix(*p)))
}

/// FNV-1a of a string, to key regions and names by content rather than position.
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A splitmix64 stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn from_parts(parts: &[u64]) -> Self {
        Rng(hash(parts))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            lo + self.below((hi - lo + 1) as u64) as i64
        }
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `n` lowercase hex digits.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let v = self.next_u64();
            for i in 0..16 {
                if s.len() == n {
                    break;
                }
                let d = ((v >> (i * 4)) & 0xF) as u32;
                s.push(char::from_digit(d, 16).unwrap_or('0'));
            }
        }
        s
    }

    /// `n` characters of `[A-Z2-7]`, as AWS key ids use.
    pub(crate) fn base32(&mut self, n: usize) -> String {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        (0..n)
            .map(|_| ALPHABET[self.below(32) as usize] as char)
            .collect()
    }

    /// A version-4 UUID.
    pub(crate) fn uuid(&mut self) -> String {
        uuid_from(self.next_u64(), self.next_u64())
    }
}

/// Formats 128 bits as a version-4, variant-1 UUID.
pub(crate) fn uuid_from(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// Base32 of a `u64` (13 characters), used where uniqueness must be exact.
pub(crate) fn base32_u64(v: u64) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..13)
        .map(|i| ALPHABET[((v >> (i * 5)) & 31) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = Rng::new(7);
        assert_ne!(r.next_u64(), r.next_u64());
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
    }

    #[test]
    fn uuid_shape() {
        let u = Rng::new(1).uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn base32_u64_is_injective_on_samples() {
        let set: std::collections::HashSet<String> =
            (0..1000u64).map(|v| base32_u64(mix(v))).collect();
        assert_eq!(set.len(), 1000);
    }
}
