//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` holds hashes, `tile/entries/<N>[.p/<W>]`
//! the entries themselves. Tiles are 256 wide (height 8): the level-`L` tile `N` holds the
//! tree hashes of level `8·L` numbered `N·256 …`, a partial tile only its first `W` (1–255).
//! `N` is written in groups of three digits, every group but the last prefixed `x`
//! (1234067 → `x001/x234/067`), so no directory holds more than a thousand names.

use crate::merkle::NodeId;
use std::fmt;

/// Tree levels per tile level.
pub const HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileKind {
    /// Tree hashes of tree level `8 × level`.
    Hashes {
        /// The tile level (0: leaf hashes).
        level: u8,
    },
    /// Entries (an entry bundle).
    Entries,
}

/// A tile's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// Hashes of a level, or entries.
    pub kind: TileKind,
    /// The tile's number within its level.
    pub index: u64,
    /// A partial tile's width (1–255); `None` for a full tile.
    pub width: Option<u16>,
}

/// Why a tile path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct TilePathError(pub String);

impl TilePath {
    /// Parses `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, refusing every other way of
    /// writing the same tile (leading zero groups, a width of 0 or 256), so each tile has one
    /// path and one cache entry.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        let bad = |why: &str| TilePathError(format!("{path:?}: {why}"));
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| bad("it does not start with tile/"))?;
        let (kind_part, rest) = rest.split_once('/').ok_or_else(|| bad("no tile number"))?;
        let kind = if kind_part == "entries" {
            TileKind::Entries
        } else {
            let level: u8 = canonical_number(kind_part)
                .filter(|l| *l < 8)
                .ok_or_else(|| bad("the level is not 0–7"))? as u8;
            TileKind::Hashes { level }
        };
        let (number, width) = match rest.split_once(".p/") {
            Some((n, w)) => {
                let w = canonical_number(w)
                    .filter(|w| (1..WIDTH).contains(w))
                    .ok_or_else(|| bad("a partial tile's width is 1–255"))?;
                (n, Some(w as u16))
            }
            None => (rest, None),
        };
        let groups: Vec<&str> = number.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last {
                *g
            } else {
                g.strip_prefix('x')
                    .ok_or_else(|| bad("every group but the last starts with x"))?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the number is written in groups of three digits"));
            }
            if i == 0 && !last && digits == "000" {
                return Err(bad("a leading group of zeros"));
            }
            index = index
                .checked_mul(1000)
                .and_then(|x| x.checked_add(digits.parse::<u64>().expect("three digits")))
                .ok_or_else(|| bad("the number is too large"))?;
        }
        Ok(TilePath { kind, index, width })
    }

    /// How many hashes or entries the tile holds.
    pub fn count(&self) -> u64 {
        self.width.map(u64::from).unwrap_or(WIDTH)
    }

    /// The tree's complete subtrees in a hash tile, in order; for entries, the leaves.
    pub fn nodes(&self) -> Vec<NodeId> {
        let level = match self.kind {
            TileKind::Hashes { level } => level * HEIGHT,
            TileKind::Entries => 0,
        };
        (0..self.count())
            .map(|j| NodeId {
                level,
                index: self.index * WIDTH + j,
            })
            .collect()
    }

    /// Whether a tree of `size` leaves has everything this tile holds.
    pub fn within(&self, size: u64) -> bool {
        let level = match self.kind {
            TileKind::Hashes { level } => level * HEIGHT,
            TileKind::Entries => 0,
        };
        let available = if level >= 64 { 0 } else { size >> level };
        self.index
            .checked_mul(WIDTH)
            .and_then(|x| x.checked_add(self.count()))
            .is_some_and(|end| end <= available)
    }
}

/// A decimal number written without leading zeros.
fn canonical_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TileKind::Hashes { level } => write!(f, "tile/{level}/")?,
            TileKind::Entries => write!(f, "tile/entries/")?,
        }
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().rev().enumerate() {
            if i + 1 < groups.len() {
                write!(f, "x{g:03}/")?;
            } else {
                write!(f, "{g:03}")?;
            }
        }
        if let Some(w) = self.width {
            write!(f, ".p/{w}")?;
        }
        Ok(())
    }
}

/// An entry bundle: each entry prefixed by its length as a big-endian u16.
pub fn bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// The entries of a bundle; `None` when it is cut short.
pub fn unbundle(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 2 {
            return None;
        }
        let n = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        let e = bytes.get(2..2 + n)?;
        out.push(e.to_vec());
        bytes = &bytes[2 + n..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_in_the_specs_spelling() {
        for (s, kind, index, width) in [
            ("tile/0/000", TileKind::Hashes { level: 0 }, 0, None),
            (
                "tile/1/x001/x234/067",
                TileKind::Hashes { level: 1 },
                1234067,
                None,
            ),
            (
                "tile/entries/x001/000.p/7",
                TileKind::Entries,
                1000,
                Some(7),
            ),
            (
                "tile/2/999.p/255",
                TileKind::Hashes { level: 2 },
                999,
                Some(255),
            ),
        ] {
            let p = TilePath::parse(s).unwrap();
            assert_eq!((p.kind, p.index, p.width), (kind, index, width), "{s}");
            assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn other_spellings_of_a_tile_are_refused() {
        for s in [
            "tile/0/1",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/00/001",
            "tile/8/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/07",
            "tile/0/0a1",
            "tile/data/001",
            "tiles/0/001",
            "tile/0/x1000/000",
        ] {
            assert!(TilePath::parse(s).is_err(), "{s} accepted");
        }
    }

    #[test]
    fn a_tile_is_within_a_tree_only_when_all_its_hashes_are() {
        let full0 = TilePath::parse("tile/0/000").unwrap();
        assert!(!full0.within(255) && full0.within(256));
        let part = TilePath::parse("tile/0/001.p/3").unwrap();
        assert!(!part.within(258) && part.within(259));
        let l1 = TilePath::parse("tile/1/000.p/2").unwrap();
        assert!(!l1.within(511) && l1.within(512));
        assert_eq!(l1.nodes()[1], NodeId { level: 8, index: 1 });
    }

    #[test]
    fn bundles_round_trip_and_refuse_truncation() {
        let e: Vec<Vec<u8>> = vec![vec![1; 64], vec![], vec![7; 136]];
        let b = bundle(e.iter().map(|x| x.as_slice()));
        assert_eq!(b.len(), 6 + 200);
        assert_eq!(unbundle(&b).unwrap(), e);
        assert!(unbundle(&b[..b.len() - 1]).is_none());
    }
}
