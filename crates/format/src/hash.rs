//! 512-bit hash values and the two hash functions the format uses.

use sha2::{Digest, Sha512};
use std::fmt;

/// A 64-byte value: every hash field of a pulse (certificateId, localRandomValue, external
/// values, list values, precommitmentValue, outputValue) has exactly this size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash512(pub [u8; 64]);

impl Hash512 {
    /// All zeros: what NIST publishes for an absent external value or skip-list entry.
    pub const ZERO: Hash512 = Hash512([0u8; 64]);

    /// Upper-case hex, as NIST publishes every hash field except certificateId.
    pub fn to_hex_upper(&self) -> String {
        encode_hex(&self.0, true)
    }

    /// Lower-case hex, as NIST publishes certificateId.
    pub fn to_hex_lower(&self) -> String {
        encode_hex(&self.0, false)
    }

    /// The first 8 hex digits followed by an ellipsis, for messages meant for people.
    pub fn short(&self) -> String {
        format!("{}…", hex::encode(&self.0[..4]))
    }

    /// Whether every byte is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Hash512 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash512({})", self.to_hex_upper())
    }
}

impl fmt::Display for Hash512 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex_upper())
    }
}

impl From<[u8; 64]> for Hash512 {
    fn from(b: [u8; 64]) -> Self {
        Hash512(b)
    }
}

/// `bytes` in hex, upper- or lower-case, as `hex::encode_upper` and `hex::encode` write it. A
/// pulse's JSON holds about 1,500 hex digits, written for every pulse served (the bulk routes,
/// every lookup): two table reads a byte here, where the hex crate collected one `char` at a
/// time and took most of the time of writing a pulse.
pub fn encode_hex(bytes: &[u8], upper: bool) -> String {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0F)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// SHA-512 over the concatenation of `parts`.
///
/// ```
/// use lavabeacon_format::hash::sha512;
/// assert_eq!(sha512(&[b"ab", b"c"]), sha512(&[b"abc"]));
/// ```
pub fn sha512(parts: &[&[u8]]) -> Hash512 {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Hash512(h.finalize().into())
}

/// SHA3-512 over the concatenation of `parts` (CLCERT's `hashedMessage`).
pub fn sha3_512(parts: &[&[u8]]) -> Hash512 {
    use sha3::Sha3_512;
    let mut h = Sha3_512::new();
    for p in parts {
        h.update(p);
    }
    Hash512(h.finalize().into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_written_as_the_hex_crate_writes_it() {
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0x0F, 0xF0, 0xFF]).collect();
        for len in [0, 1, 2, 64, bytes.len()] {
            let b = &bytes[..len];
            assert_eq!(super::encode_hex(b, true), hex::encode_upper(b));
            assert_eq!(super::encode_hex(b, false), hex::encode(b));
        }
    }
}
