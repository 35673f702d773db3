//! The draw spec: what is drawn, how, and from which future pulse, fixed before that pulse
//! exists. Its canonical bytes are RFC 8785 (JCS) JSON; the draw's id is SHA-512 of them.
//!
//! ```json
//! {"version": 1, "title": "Committee 2027", "method": "lavabeacon-v1", "operation": "pick",
//!  "pool": {"entries": ["Ada", "Grace", "Alan"]}, "count": 2,
//!  "beacon": {"baseUri": "https://beacon.example.org/beacon/2.0", "chainIndex": 1,
//!             "certificateId": "ab…"},
//!  "targetTime": "2027-01-01T12:00:00.000Z"}
//! ```
//!
//! `pool` is the entries themselves, or `{"count": N, "sha512": "…"}`: their number and the
//! SHA-512 (hex) of the canonical JSON of the list of entries (a JSON array of strings), for a
//! list that is published elsewhere. `sources` (RFC 3797 only) are the other sources, e.g.
//! lottery numbers, each a list of non-negative whole numbers written as decimal strings; the
//! pulse's outputValue is the last source. `weights` (operation `weighted`) are whole numbers,
//! one per entry; `range` (operation `integers`) is `{"min": A, "max": B}`, with `count` values
//! drawn in it. Numbers past 2^53 are written as strings, so that canonical JSON keeps them.

use lavabeacon_format::hash::sha512;
use lavabeacon_format::time::parse_time_stamp;
use serde::{Deserialize, Serialize};

/// The spec format's version.
pub const VERSION: u32 = 1;

/// A draw spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrawSpec {
    /// [`VERSION`].
    pub version: u32,
    /// What the draw is for, in words.
    pub title: String,
    /// `rfc3797` or `lavabeacon-v1`.
    pub method: String,
    /// `pick` (both methods), `shuffle`, `weighted`, `integers` (lavabeacon-v1).
    pub operation: String,
    /// What is drawn from (not for `integers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Pool>,
    /// How many picks (or values, for `integers`; for `shuffle`, the pool's size).
    pub count: u64,
    /// One whole weight per entry (`weighted`), as decimal strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<String>>,
    /// The range of `integers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// RFC 3797's other sources, in published order, each a list of decimal strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Vec<String>>>,
    /// The beacon whose pulse decides.
    pub beacon: BeaconRef,
    /// The time of the pulse that decides (the pulse at that time, or, if the beacon skipped
    /// it, the first after it), RFC 3339 with milliseconds as in pulses.
    pub target_time: String,
}

/// The entries, or their count and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Pool {
    /// The entries themselves, in published order.
    Entries {
        /// The entries.
        entries: Vec<String>,
    },
    /// Published elsewhere: their number and the SHA-512 of their canonical JSON list.
    Hashed {
        /// How many.
        count: u64,
        /// SHA-512 (hex) of the canonical JSON array of the entries.
        sha512: String,
    },
}

/// A range of whole numbers, both ends included, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The smallest.
    pub min: String,
    /// The largest.
    pub max: String,
}

/// The beacon a draw names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BeaconRef {
    /// The beacon's base URI (`…/beacon/2.0`): every pulse's uri starts with it.
    pub base_uri: String,
    /// The chain whose pulse decides.
    pub chain_index: u64,
    /// The certificate its pulses are signed with when the draw is made (hex).
    pub certificate_id: String,
}

/// Why a spec cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("draw spec: {0}")]
pub struct SpecError(pub String);

fn bad(text: impl Into<String>) -> SpecError {
    SpecError(text.into())
}

/// The canonical JSON (RFC 8785) of any serialisable value.
pub fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).expect("a spec is plain JSON")
}

/// SHA-512 (hex, lower case) of the canonical JSON list of `entries`: a hashed pool's `sha512`.
pub fn entries_hash(entries: &[String]) -> String {
    sha512(&[&canonical(&entries)]).to_hex_lower()
}

impl DrawSpec {
    /// Reads a spec (JSON) and checks it ([`DrawSpec::check`]).
    pub fn parse(text: &str) -> Result<DrawSpec, SpecError> {
        let spec: DrawSpec =
            serde_json::from_str(text).map_err(|e| bad(format!("not a draw spec: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    /// The canonical bytes (RFC 8785).
    pub fn canonical(&self) -> Vec<u8> {
        canonical(self)
    }

    /// The draw's id: SHA-512 of the canonical bytes.
    pub fn id(&self) -> [u8; 64] {
        *sha512(&[&self.canonical()]).as_bytes()
    }

    /// The id in hex (lower case), as URLs and receipts carry it.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id())
    }

    /// The target time in Unix milliseconds.
    pub fn target_ms(&self) -> Result<i64, SpecError> {
        parse_time_stamp(&self.target_time)
            .map_err(|e| bad(format!("targetTime {:?}: {e}", self.target_time)))
    }

    /// The number of entries in the pool.
    pub fn pool_size(&self) -> Option<u64> {
        match &self.pool {
            Some(Pool::Entries { entries }) => Some(entries.len() as u64),
            Some(Pool::Hashed { count, .. }) => Some(*count),
            None => None,
        }
    }

    /// Everything a draw needs is there and consistent.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.version != VERSION {
            return Err(bad(format!(
                "version {} is unknown (this is version {VERSION})",
                self.version
            )));
        }
        self.target_ms()?;
        if self.beacon.certificate_id.len() != 128
            || hex::decode(&self.beacon.certificate_id).is_err()
        {
            return Err(bad("beacon.certificateId is not 128 hex digits"));
        }
        if self.beacon.chain_index == 0 {
            return Err(bad("beacon.chainIndex starts at 1"));
        }
        if let Some(Pool::Hashed { sha512, .. }) = &self.pool {
            if sha512.len() != 128 || hex::decode(sha512).is_err() {
                return Err(bad("pool.sha512 is not 128 hex digits"));
            }
        }
        let pool = self.pool_size();
        let needs_pool =
            || pool.ok_or_else(|| bad(format!("operation {} needs a pool", self.operation)));
        match (self.method.as_str(), self.operation.as_str()) {
            ("rfc3797", "pick") => {
                let n = needs_pool()?;
                if n > crate::rfc3797::MAX_POOL as u64 {
                    return Err(bad(format!(
                        "RFC 3797 allows a pool of at most 65535, not {n}"
                    )));
                }
                for (i, source) in self.sources.iter().flatten().enumerate() {
                    if source.is_empty() {
                        return Err(bad(format!("sources[{i}] is empty")));
                    }
                    for v in source {
                        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad(format!(
                                "sources[{i}]: {v:?} is not a non-negative whole number in decimal"
                            )));
                        }
                    }
                }
            }
            ("rfc3797", other) => {
                return Err(bad(format!(
                    "RFC 3797 only picks; operation {other} is lavabeacon-v1's"
                )))
            }
            ("lavabeacon-v1", "pick") => {
                needs_pool()?;
            }
            ("lavabeacon-v1", "shuffle") => {
                if self.count != needs_pool()? {
                    return Err(bad("a shuffle's count is the pool's size"));
                }
            }
            ("lavabeacon-v1", "weighted") => {
                let n = needs_pool()?;
                let weights = self.weights()?;
                if weights.len() as u64 != n {
                    return Err(bad(format!("{} weights for {n} entries", weights.len())));
                }
            }
            ("lavabeacon-v1", "integers") => {
                let (min, max) = self.range()?;
                if min > max {
                    return Err(bad("range.min is above range.max"));
                }
            }
            ("lavabeacon-v1", other) => {
                return Err(bad(format!(
                    "operation {other:?} is not pick, shuffle, weighted or integers"
                )))
            }
            (other, _) => {
                return Err(bad(format!(
                    "method {other:?} is not rfc3797 or lavabeacon-v1"
                )))
            }
        }
        if self.sources.is_some() && self.method != "rfc3797" {
            return Err(bad(
                "sources are RFC 3797's; lavabeacon-v1 draws from the pulse alone",
            ));
        }
        if let Some(n) = pool {
            if self.operation != "integers" && self.count > n {
                return Err(bad(format!("cannot pick {} of {n}", self.count)));
            }
        }
        if self.operation == "integers" && self.count > 1_000_000 {
            return Err(bad("at most 1,000,000 integers per draw"));
        }
        Ok(())
    }

    /// The weights as numbers (each at least 1, their sum below 2^64).
    pub fn weights(&self) -> Result<Vec<u64>, SpecError> {
        let words = self
            .weights
            .as_ref()
            .ok_or_else(|| bad("operation weighted needs weights"))?;
        let mut sum: u128 = 0;
        let mut out = Vec::with_capacity(words.len());
        for w in words {
            let v: u64 = w
                .parse()
                .ok()
                .filter(|&v| v >= 1 && !w.starts_with('+') && !w.starts_with('0'))
                .ok_or_else(|| bad(format!("weight {w:?} is not a whole number of at least 1")))?;
            sum += u128::from(v);
            out.push(v);
        }
        if sum > u128::from(u64::MAX) {
            return Err(bad("the weights add up past 2^64"));
        }
        Ok(out)
    }

    /// The range of `integers`.
    pub fn range(&self) -> Result<(i64, i64), SpecError> {
        let r = self
            .range
            .as_ref()
            .ok_or_else(|| bad("operation integers needs a range"))?;
        let read = |name: &str, text: &str| {
            text.parse::<i64>()
                .ok()
                .filter(|v| v.to_string() == text)
                .ok_or_else(|| {
                    bad(format!(
                        "range.{name} {text:?} is not a whole number (i64, as written by the spec)"
                    ))
                })
        };
        Ok((read("min", &r.min)?, read("max", &r.max)?))
    }
}
