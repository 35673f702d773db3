//! The source manifest and the combination of entropy sources into a localRandomValue: the one
//! definition the engine uses to make the value and auditors use to recompute it, and
//! [`check_published`], the check of a published manifest against its pulse.
//!
//! ```text
//! localRandomValue = SHA-512( "lavabeacon localRandomValue v1"
//!                            ‖ for each contributing source, in ascending order of name:
//!                                u32(len(name)) ‖ name ‖ u32(len(digest)) ‖ digest )
//! ```
//!
//! ```
//! use lavabeacon_format::manifest::combine;
//! let a = combine(&[("os", &[1u8; 64][..]), ("cpu", &[2u8; 64][..])]);
//! let b = combine(&[("cpu", &[2u8; 64][..]), ("os", &[1u8; 64][..])]);
//! assert_eq!(a, b, "the order is fixed by name, not by the caller");
//! ```

use crate::chain::Facts;
use crate::hash::Hash512;
use crate::report::{Check, Problem};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

/// The domain tag that starts the combination.
pub const DOMAIN: &[u8] = b"lavabeacon localRandomValue v1";

/// Combines the digests of the contributing sources into a localRandomValue.
pub fn combine(contributions: &[(&str, &[u8])]) -> Hash512 {
    let mut sorted: Vec<&(&str, &[u8])> = contributions.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha512::new();
    h.update(DOMAIN);
    for (name, digest) in sorted {
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update((digest.len() as u32).to_be_bytes());
        h.update(digest);
    }
    Hash512(h.finalize().into())
}

/// Appends the bytes of the hex digits `text` (either case) to `out`; false if it is not hex
/// (an odd length, or another character), as `hex::decode` judges it.
fn decode_hex(text: &str, out: &mut Vec<u8>) -> bool {
    if text.len() % 2 != 0 {
        return false;
    }
    let start = out.len();
    out.resize(start + text.len() / 2, 0);
    crate::json::decode_hex(text.as_bytes(), &mut out[start..])
}

/// One source's line in a pulse's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceEntry {
    /// The source's name (`camera`, `spool`, `os`, `hsm`, `cpu`, …).
    pub name: String,
    /// `ok`, or why it was left out (`unhealthy: …`, `unavailable: …`, `timeout`).
    pub status: String,
    /// Entropy credited to this source for this pulse, in bits (0 when left out).
    pub credited_bits: u32,
    /// The exact digest that went into the combination (hex), when it contributed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub digest: Option<String>,
}

/// Everything an auditor needs to recompute a pulse's localRandomValue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// The combination's version (1: [`DOMAIN`]).
    pub version: u32,
    /// chainIndex of the pulse.
    pub chain_index: u64,
    /// pulseIndex of the pulse.
    pub pulse_index: u64,
    /// Every configured source, contributing or not.
    pub sources: Vec<SourceEntry>,
    /// Where the pulse's `external` value came from, when another beacon fills it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external: Option<Box<ExternalEntry>>,
}

/// The other beacon's pulse behind a pulse's `external` field: enough to fetch that pulse,
/// verify it, and recompute `external.sourceId` and `external.value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEntry {
    /// The description whose SHA-512 is `external.sourceId`.
    pub description: String,
    /// The URL it was fetched from.
    pub url: String,
    /// `ok`, or why it was not used (the pulse's external.statusCode is then not 0).
    pub status: String,
    /// The uri of the other beacon's pulse (when one was used).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uri: Option<String>,
    /// Its timeStamp.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time_stamp: Option<String>,
    /// Its outputValue (hex); `external.value` is SHA-512 of these 64 bytes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output_value: Option<String>,
}

/// `external` status codes: the other beacon's newest pulse was fresh and (when its certificate
/// is configured) verified.
pub const EXTERNAL_OK: u32 = 0;
/// Its newest pulse is older than two of its periods: the value is used but flagged.
pub const EXTERNAL_STALE: u32 = 1;
/// It could not be fetched or did not verify: value zero.
pub const EXTERNAL_FAILED: u32 = 2;

impl ExternalEntry {
    /// The `external` field this entry stands for.
    pub fn external(&self) -> Result<crate::pulse::External, ManifestError> {
        let source_id = crate::hash::sha512(&[self.description.as_bytes()]);
        let (status_code, value) = match &self.output_value {
            Some(v) => {
                let bytes = hex::decode(v)
                    .ok()
                    .filter(|b| b.len() == 64)
                    .ok_or_else(|| ManifestError::BadDigest("external".into()))?;
                let code = if self.status == "ok" {
                    EXTERNAL_OK
                } else {
                    EXTERNAL_STALE
                };
                (code, crate::hash::sha512(&[&bytes]))
            }
            None => (EXTERNAL_FAILED, Hash512::ZERO),
        };
        Ok(crate::pulse::External {
            source_id,
            status_code,
            value,
        })
    }
}

/// Why a manifest cannot be recombined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A version this code does not know.
    #[error("manifest version {0} is unknown (this verifier knows version 1)")]
    Version(u32),
    /// A contributing source's digest is not hex.
    #[error("source {0}: digest is not hex")]
    BadDigest(String),
    /// A source is named twice.
    #[error("source {0} appears twice")]
    Duplicate(String),
}

impl Manifest {
    /// The localRandomValue the manifest's contributing sources combine to.
    pub fn recombine(&self) -> Result<Hash512, ManifestError> {
        if self.version != 1 {
            return Err(ManifestError::Version(self.version));
        }
        let mut names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ManifestError::Duplicate(w[0].to_string()));
        }
        // Every digest decoded into one buffer: a replay recombines every pulse's manifest, and
        // a vector per digest (with the `hex` crate's per-character iterator) was most of it.
        let mut bytes = Vec::with_capacity(self.sources.len() * 64);
        let mut spans = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            if let Some(d) = &s.digest {
                let start = bytes.len();
                if !decode_hex(d, &mut bytes) {
                    return Err(ManifestError::BadDigest(s.name.clone()));
                }
                spans.push((s.name.as_str(), start, bytes.len()));
            }
        }
        let parts: Vec<(&str, &[u8])> = spans
            .iter()
            .map(|&(name, start, end)| (name, &bytes[start..end]))
            .collect();
        Ok(combine(&parts))
    }

    /// The total entropy credited to the pulse.
    pub fn credited_bits(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| u64::from(s.credited_bits))
            .sum()
    }
}

/// Checks a pulse's published source manifest (its JSON, as exports, the store and the API carry
/// it): it must read, recombine, and recombine to the pulse's localRandomValue. `pulse` holds
/// that value as its commitment (what the verifier keeps of each pulse it has checked), so the
/// recombined value is compared through the same hash; the problem, if any, is located at the
/// pulse. The one check `replay` makes of every manifest, and the engine's tests of theirs.
pub fn check_published(json: &str, pulse: &Facts) -> Result<Manifest, Box<Problem>> {
    // Boxed: a problem is large, and passing is the common case.
    let at = |p: Problem| {
        Box::new(
            p.at(pulse.chain, pulse.index)
                .located(pulse.location.as_ref()),
        )
    };
    let manifest: Manifest = serde_json::from_str(json).map_err(|e| {
        at(Problem::new(
            Check::Manifest,
            format!("unreadable source manifest: {e}"),
        ))
    })?;
    let value = manifest.recombine().map_err(|e| {
        at(Problem::new(
            Check::Manifest,
            format!("source manifest: {e}"),
        ))
    })?;
    if pulse.variant.commitment_of(&value) != pulse.commitment {
        return Err(at(Problem::new(
            Check::Manifest,
            "the source manifest does not recombine to localRandomValue",
        )
        .field("localRandomValue")
        .values("the value its manifest recombines to", value.to_hex_upper())));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::Variant;

    fn manifest() -> Manifest {
        Manifest {
            version: 1,
            chain_index: 1,
            pulse_index: 7,
            sources: vec![
                SourceEntry {
                    name: "os".into(),
                    status: "ok".into(),
                    credited_bits: 256,
                    digest: Some(hex::encode([1u8; 64])),
                },
                SourceEntry {
                    name: "camera".into(),
                    status: "unhealthy: identical frames".into(),
                    credited_bits: 0,
                    digest: None,
                },
                SourceEntry {
                    name: "cpu".into(),
                    status: "ok".into(),
                    credited_bits: 64,
                    digest: Some(hex::encode([2u8; 64])),
                },
            ],
            external: None,
        }
    }

    #[test]
    fn a_manifest_recombines_to_the_combination_of_its_contributing_sources() {
        let m = manifest();
        assert_eq!(
            m.recombine().unwrap(),
            combine(&[("os", &[1u8; 64][..]), ("cpu", &[2u8; 64][..])])
        );
        assert_eq!(m.credited_bits(), 320);
        let text = serde_json::to_string(&m).unwrap();
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.recombine().unwrap(), m.recombine().unwrap());
    }

    #[test]
    fn digests_are_read_as_the_hex_crate_reads_them() {
        for text in [
            "", "00ff", "00FF", "aBcD", "0", "abc", "0g", "g0", " 0", "0x12", "é1",
        ] {
            let mut out = vec![9u8];
            let ok = decode_hex(text, &mut out);
            match hex::decode(text) {
                Ok(expected) => {
                    assert!(ok, "{text:?}");
                    assert_eq!(out[1..], expected[..], "{text:?}");
                }
                Err(_) => assert!(!ok, "{text:?}"),
            }
        }
    }

    #[test]
    fn any_change_to_a_contributing_digest_or_name_changes_the_value() {
        let base = manifest().recombine().unwrap();
        let mut m = manifest();
        m.sources[0].digest = Some(hex::encode([9u8; 64]));
        assert_ne!(m.recombine().unwrap(), base);
        let mut m = manifest();
        m.sources[2].name = "cpu2".into();
        assert_ne!(m.recombine().unwrap(), base);
        // Name and digest are length-prefixed: moving bytes between them changes the value.
        assert_ne!(combine(&[("ab", b"c")]), combine(&[("a", b"bc")]));
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let mut m = manifest();
        m.version = 2;
        assert_eq!(m.recombine(), Err(ManifestError::Version(2)));
        let mut m = manifest();
        m.sources[1].name = "os".into();
        assert_eq!(m.recombine(), Err(ManifestError::Duplicate("os".into())));
        let mut m = manifest();
        m.sources[0].digest = Some("zz".into());
        assert_eq!(m.recombine(), Err(ManifestError::BadDigest("os".into())));
    }

    /// The verifier's facts of pulse 1/7 whose localRandomValue is `value`.
    fn pulse_with(value: &Hash512) -> Facts {
        Facts {
            chain: 1,
            index: 7,
            time_ms: Some(0),
            period: 60_000,
            status: 0,
            variant: Variant::Nist,
            output: Hash512::ZERO,
            precommitment: Hash512::ZERO,
            commitment: Variant::Nist.commitment_of(value),
            list: [None; 5],
            location: None,
        }
    }

    #[test]
    fn a_published_manifest_that_recombines_to_its_pulses_value_passes() {
        let m = manifest();
        let json = serde_json::to_string(&m).unwrap();
        let checked = check_published(&json, &pulse_with(&m.recombine().unwrap())).unwrap();
        assert_eq!(checked, m);
    }

    #[test]
    fn a_manifest_of_another_value_is_reported_at_its_pulse_with_the_value_found() {
        let m = manifest();
        let json = serde_json::to_string(&m).unwrap();
        let p = check_published(&json, &pulse_with(&Hash512([7; 64]))).unwrap_err();
        assert_eq!(p.check, Check::Manifest);
        assert_eq!((p.chain, p.pulse), (Some(1), Some(7)));
        assert_eq!(p.field.as_deref(), Some("localRandomValue"));
        assert_eq!(p.found, Some(m.recombine().unwrap().to_hex_upper()));
    }

    #[test]
    fn unreadable_and_unrecombinable_manifests_are_manifest_problems() {
        let any = pulse_with(&Hash512::ZERO);
        let p = check_published("{", &any).unwrap_err();
        assert_eq!(p.check, Check::Manifest);
        assert!(
            p.message.starts_with("unreadable source manifest"),
            "{}",
            p.message
        );
        let mut m = manifest();
        m.version = 2;
        let p = check_published(&serde_json::to_string(&m).unwrap(), &any).unwrap_err();
        assert_eq!(p.check, Check::Manifest);
        assert!(p.message.contains("version 2 is unknown"), "{}", p.message);
    }
}
