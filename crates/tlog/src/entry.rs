//! The log's entries. Every pulse the beacon publishes is an entry: its 64-byte outputValue,
//! which is SHA-512 over the pulse's signed message and signature, so it commits to the whole
//! signed pulse. Every draw registered with the beacon is an entry too: the bytes
//! `"lavabeacon draw v1\n"`, the draw's 64-byte id, and SHA-512 of the receipt's signed message
//! followed by its signature (147 bytes). Entries are told apart by length: a pulse's is
//! exactly 64 bytes, no other entry is.

/// What starts a draw registration's entry.
pub const DRAW_PREFIX: &[u8] = b"lavabeacon draw v1\n";

/// An entry of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A pulse, by its outputValue.
    Pulse([u8; 64]),
    /// A draw registration.
    Draw {
        /// The draw's id (SHA-512 of its spec's canonical bytes).
        id: [u8; 64],
        /// SHA-512 of the receipt's signed message ‖ its signature.
        receipt: [u8; 64],
    },
}

impl Entry {
    /// The entry's bytes, as the tree's leaf hashes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Entry::Pulse(output) => output.to_vec(),
            Entry::Draw { id, receipt } => [DRAW_PREFIX, id, receipt].concat(),
        }
    }

    /// Reads an entry's bytes; `None` for anything that is neither kind.
    pub fn parse(bytes: &[u8]) -> Option<Entry> {
        if let Ok(output) = <[u8; 64]>::try_from(bytes) {
            return Some(Entry::Pulse(output));
        }
        let rest = bytes.strip_prefix(DRAW_PREFIX)?;
        if rest.len() != 128 {
            return None;
        }
        Some(Entry::Draw {
            id: rest[..64].try_into().ok()?,
            receipt: rest[64..].try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_told_apart_by_length_and_prefix() {
        let p = Entry::Pulse([9; 64]);
        let d = Entry::Draw {
            id: [1; 64],
            receipt: [2; 64],
        };
        assert_eq!(p.to_bytes().len(), 64);
        assert_eq!(d.to_bytes().len(), 147);
        assert_eq!(Entry::parse(&p.to_bytes()), Some(p));
        assert_eq!(Entry::parse(&d.to_bytes()), Some(d));
        assert_eq!(Entry::parse(&[0; 65]), None);
        assert_eq!(Entry::parse(&d.to_bytes()[..146]), None);
    }
}
