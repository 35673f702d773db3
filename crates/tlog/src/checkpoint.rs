//! C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the text of the note a log signs for a tree
//! head. Three lines, origin, size in decimal, root in base64, then optional extension lines,
//! each ending in `\n`.
//!
//! Parsing is strict so that a checkpoint has exactly one text: [`Checkpoint::body`] of a
//! parsed checkpoint is the text it was parsed from, byte for byte. A witness can then cosign
//! what it understood (`body()`) and be sure that is what the log signed.

use crate::Hash;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Why a checkpoint text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint: {0}")]
pub struct CheckpointError(pub String);

/// A tree head: the log's origin, its size and root, and any extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, the first line (non-empty).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root of the tree of `size` leaves.
    pub root: Hash,
    /// Extension lines, without their newlines, each non-empty. Opaque; the spec advises
    /// against them because monitors cannot audit them.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a checkpoint note text: at least three lines, each ending in `\n` and non-empty;
    /// the size in decimal without leading zeros (`0` for the empty tree) and at most
    /// `u64::MAX`; the root in standard padded base64 of exactly 32 bytes (canonical: the
    /// padding bits zero). Control characters other than `\n` are refused as in a note, so a
    /// text accepted here is also a valid note text.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |why: &str| CheckpointError(why.to_owned());
        if let Some(b) = text.bytes().find(|&b| b < 0x20 && b != b'\n') {
            return Err(CheckpointError(format!(
                "it holds the control character {b:#04x}"
            )));
        }
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("it does not end with a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(bad("fewer than three lines"));
        }
        if lines.iter().any(|l| l.is_empty()) {
            return Err(bad("an empty line"));
        }
        let size = parse_decimal(lines[1]).ok_or_else(|| {
            CheckpointError(format!(
                "the size {:?} is not a decimal number without leading zeros",
                lines[1]
            ))
        })?;
        let root = parse_hash(lines[2]).ok_or_else(|| {
            CheckpointError(format!(
                "the root {:?} is not the base64 of 32 bytes",
                lines[2]
            ))
        })?;
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size,
            root,
            extensions: lines[3..].iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The note text: `<origin>\n<size>\n<base64 root>\n` and each extension line with its
    /// newline. What the log signs and what a `cosignature/v1` covers.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

/// A decimal number as the C2SP specs write sizes: ASCII digits, no sign, no leading zero
/// except `0` itself.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A hash in standard padded base64. The engine refuses non-zero padding bits, so each hash has
/// one spelling.
pub(crate) fn parse_hash(s: &str) -> Option<Hash> {
    let raw = STANDARD.decode(s).ok()?;
    raw.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-0",
            " 1",
            "1 ",
            "18446744073709551616",
            "1e3",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_have_one_spelling() {
        let h = STANDARD.encode([7u8; 32]);
        assert_eq!(parse_hash(&h), Some([7u8; 32]));
        // The same bytes with a padding bit set: the character before '=' one further along
        // the alphabet. A lenient decoder would accept it as the same hash.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut alt = h.clone().into_bytes();
        let i = alt.len() - 2;
        let pos = ALPHABET.iter().position(|&c| c == alt[i]).unwrap();
        alt[i] = ALPHABET[pos + 1];
        assert_eq!(parse_hash(std::str::from_utf8(&alt).unwrap()), None);
        assert_eq!(parse_hash(h.trim_end_matches('=')), None);
        assert_eq!(parse_hash(&STANDARD.encode([7u8; 31])), None);
    }
}
