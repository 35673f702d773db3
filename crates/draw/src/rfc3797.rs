//! RFC 3797 ("Publicly Verifiable Nominations Committee (NomCom) Random Selection"), exactly as
//! its section 7 reference code does it, with a beacon pulse usable as one of its sources.
//!
//! The key: each source's values (non-negative integers), sorted ascending, each written in
//! decimal without leading zeros and followed by `.`, the source ended by `/`; the sources in
//! their published order. The i-th pick (i from 0): MD5(u16be(i) ‖ key ‖ u16be(i)), read as a
//! big-endian 128-bit unsigned integer, modulo the number of entries still in the pool, is the
//! 0-based position of the pick among them, in published order; it is removed, and so on.
//!
//! A pulse's outputValue is a source of one value: its 64 bytes read as a big-endian unsigned
//! integer, in decimal (so a source line `13407…084095.` of up to 155 digits).
//!
//! ```
//! use lavabeacon_draw::rfc3797::{key, select};
//! let k = key(&[vec![9319u32.into()], vec![2u32.into(), 5u32.into(), 12u32.into(), 8u32.into(), 10u32.into()],
//!               vec![9u32.into(), 18u32.into(), 26u32.into(), 34u32.into(), 41u32.into(), 45u32.into()]]);
//! assert_eq!(k, "9319./2.5.8.10.12./9.18.26.34.41.45./");
//! assert_eq!(select(&k, 25, 3).unwrap(), [17, 7, 2]); // RFC 3797, section 6
//! ```

use md5::{Digest, Md5};
use num_bigint::BigUint;

/// The largest pool RFC 3797 allows (its counter is two bytes).
pub const MAX_POOL: usize = 65_535;

/// Why a selection cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rfc3797Error {
    /// More picks than entries.
    #[error("cannot pick {count} from a pool of {pool}")]
    PoolTooSmall {
        /// The pool's size.
        pool: usize,
        /// The picks asked for.
        count: usize,
    },
    /// Past the two-byte counter.
    #[error("RFC 3797 allows a pool of at most {MAX_POOL}; this one has {0}")]
    PoolTooBig(usize),
    /// A source line that is not numbers.
    #[error("source line {line}: {text:?} is not a non-negative whole number (RFC 3797 sources here are numbers only)")]
    NotANumber {
        /// 1-based line of the seeds file.
        line: usize,
        /// The word.
        text: String,
    },
}

/// The key string of `sources` (each a list of values, in published order).
pub fn key(sources: &[Vec<BigUint>]) -> String {
    let mut key = String::new();
    for source in sources {
        let mut values = source.clone();
        values.sort();
        for v in values {
            key.push_str(&v.to_str_radix(10));
            key.push('.');
        }
        key.push('/');
    }
    key
}

/// A pulse's outputValue (64 bytes) as an RFC 3797 source of one value.
pub fn pulse_source(output_value: &[u8]) -> Vec<BigUint> {
    vec![BigUint::from_bytes_be(output_value)]
}

/// The MD5 of the i-th pick: MD5(u16be(i) ‖ key ‖ u16be(i)).
pub fn digest(key: &str, i: u16) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(i.to_be_bytes());
    h.update(key.as_bytes());
    h.update(i.to_be_bytes());
    h.finalize().into()
}

/// The first `count` picks from a pool of `pool` entries: their 1-based positions in the
/// published list, in the order drawn.
pub fn select(key: &str, pool: usize, count: usize) -> Result<Vec<usize>, Rfc3797Error> {
    if pool > MAX_POOL {
        return Err(Rfc3797Error::PoolTooBig(pool));
    }
    if count > pool {
        return Err(Rfc3797Error::PoolTooSmall { pool, count });
    }
    let mut remaining: Vec<usize> = (1..=pool).collect();
    let mut picks = Vec::with_capacity(count);
    for i in 0..count {
        let value = u128::from_be_bytes(digest(key, i as u16));
        // Order-preserving removal: the next pick counts positions among those left, in the
        // published order (the reference code's `selected` array).
        let at = (value % remaining.len() as u128) as usize;
        picks.push(remaining.remove(at));
    }
    Ok(picks)
}

/// Reads a seeds file as RFC 3797 describes its sources: one source per line, its values
/// separated by white space; `#` starts a comment; blank lines are skipped.
pub fn parse_sources(text: &str) -> Result<Vec<Vec<BigUint>>, Rfc3797Error> {
    let mut sources = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let mut values = Vec::with_capacity(words.len());
        for w in words {
            if !w.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Rfc3797Error::NotANumber {
                    line: n + 1,
                    text: w.chars().take(40).collect(),
                });
            }
            values.push(w.parse::<BigUint>().expect("digits"));
        }
        sources.push(values);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> BigUint {
        BigUint::from(v)
    }

    #[test]
    fn the_rfcs_worked_example_picks_as_section_6_says() {
        let sources = parse_sources("9319\n2 5 12 8 10\n9 18 26 34 41 45\n").unwrap();
        let k = key(&sources);
        assert_eq!(k, "9319./2.5.8.10.12./9.18.26.34.41.45./");
        assert_eq!(
            hex::encode_upper(digest(&k, 0)),
            "990DD0A5692A029A98B5E01AA28F3459"
        );
        assert_eq!(
            select(&k, 25, 16).unwrap(),
            [17, 7, 2, 16, 25, 23, 8, 24, 19, 13, 22, 5, 18, 9, 1, 4]
        );
    }

    #[test]
    fn values_are_sorted_and_written_without_leading_zeros() {
        assert_eq!(key(&[vec![n(10), n(2), n(0)]]), "0.2.10./");
        assert_eq!(
            key(&parse_sources("007 3 # a comment\n\n# only a comment\n5").unwrap()),
            "3.7./5./"
        );
    }

    #[test]
    fn a_pulse_is_one_source_of_one_big_number() {
        let mut v = [0u8; 64];
        v[63] = 1;
        v[62] = 1;
        assert_eq!(key(&[pulse_source(&v)]), "257./");
        assert_eq!(key(&[pulse_source(&[0xFF; 64])]).len(), 155 + 2);
    }

    #[test]
    fn words_that_are_not_numbers_are_refused_with_their_line() {
        assert_eq!(
            parse_sources("1 2\n3 x4").unwrap_err(),
            Rfc3797Error::NotANumber {
                line: 2,
                text: "x4".into()
            }
        );
        assert!(parse_sources("-3").is_err());
    }

    #[test]
    fn more_picks_than_entries_or_a_pool_past_the_counter_is_refused() {
        assert!(matches!(
            select("1./", 3, 4),
            Err(Rfc3797Error::PoolTooSmall { .. })
        ));
        assert!(matches!(
            select("1./", 65_536, 1),
            Err(Rfc3797Error::PoolTooBig(65_536))
        ));
        assert_eq!(select("1./", 5, 5).unwrap().len(), 5);
    }
}
