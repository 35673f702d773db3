//! Entropy sources, one file each. Every source has a name, contributes a 64-byte digest with
//! an entropy credit, runs its own health tests ([`crate::health`]), and is left out of a pulse
//! (with the reason in the manifest) when it fails them or is unavailable; it comes back when
//! healthy again. Only digests leave a source: raw samples and frames are wiped after hashing.
//!
//! - [`os`], [`hsm`], [`cpu`]: the operating system's CSPRNG, the HSM's generator, RDSEED;
//! - [`frame`]: the frame path the cameras share (checks, BLAKE3, wipe); `camera` (feature
//!   `camera`): the V4L2 camera; [`synthetic`]: a camera made up in memory (a TEST beacon);
//! - [`spool`]: images an external capture program drops in a directory;
//! - [`external`]: another beacon's newest pulse, for the pulse's `external` field (not an
//!   [`EntropySource`]: it is never combined into the value).
//!
//! This file holds what they share: the [`EntropySource`] trait, [`Contribution`],
//! [`SourceError`], and [`Sampled`] for sources made of a sampling function.

#[cfg(feature = "camera")]
pub mod camera;
pub mod cpu;
pub mod external;
pub mod frame;
pub mod hsm;
pub mod os;
pub mod spool;
pub mod synthetic;

use crate::health::{HealthTests, STARTUP_SAMPLES};
use sha2::{Digest, Sha512};
use thiserror::Error;
use zeroize::Zeroizing;

/// What a source gives for one pulse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// The digest that goes into the combination (and, once the pulse is public, the manifest).
    pub digest: [u8; 64],
    /// Entropy credited for it, in bits.
    pub credited_bits: u32,
    /// A second hash of the same raw output under another domain, never published: material
    /// for the private-bytes generator ([`PrivateMaterial`]). It tells nothing about `digest`
    /// nor `digest` about it, as long as the raw output stays secret (it is wiped).
    pub secret: PrivateMaterial,
}

/// Secret material from the sources' raw output, for the private-bytes generator: never
/// published, never logged (its `Debug` shows nothing), zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateMaterial(Zeroizing<[u8; 64]>);

/// Domain separation between a source's published digest and its private material.
const PRIVATE_DOMAIN: &[u8] = b"lavabeacon-private-material-v1";

impl PrivateMaterial {
    /// SHA-512(domain ‖ raw).
    pub fn of_raw(raw: &[u8]) -> Self {
        let mut h = Sha512::new();
        h.update(PRIVATE_DOMAIN);
        h.update(raw);
        PrivateMaterial(Zeroizing::new(h.finalize().into()))
    }

    /// The material of several sources, in order: SHA-512(domain ‖ each).
    pub fn combine<'a>(parts: impl IntoIterator<Item = &'a PrivateMaterial>) -> Self {
        let mut h = Sha512::new();
        h.update(PRIVATE_DOMAIN);
        for p in parts {
            h.update(&p.0[..]);
        }
        PrivateMaterial(Zeroizing::new(h.finalize().into()))
    }

    /// The bytes, for the generator.
    pub fn bytes(&self) -> &[u8] {
        &self.0[..]
    }
}

impl std::fmt::Debug for PrivateMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateMaterial(..)")
    }
}

/// Why a source gave nothing this time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourceError {
    /// The source is not there (no camera, no RDSEED, no HSM).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The source failed a health test.
    #[error("unhealthy: {0}")]
    Unhealthy(String),
    /// The source is still in its start-up test.
    #[error("starting: health tests have not seen enough samples yet")]
    Starting,
}

/// A source of entropy for the beacon.
pub trait EntropySource: Send {
    /// Its name in manifests (`os`, `hsm`, `cpu`, `camera`, `spool`, …).
    fn name(&self) -> &str;
    /// Whether using it makes the beacon a test beacon: decided by its name in manifests, the
    /// same rule an API node applies to what the store shows
    /// ([`lavabeacon_format::test_beacon::is_test_source`]).
    fn is_test(&self) -> bool {
        lavabeacon_format::test_beacon::is_test_source(self.name())
    }
    /// Samples the source for one pulse.
    fn collect(&mut self) -> Result<Contribution, SourceError>;
}

/// Raw bytes, health-tested, hashed with SHA-512 into the contribution. The raw bytes are
/// wiped; only their hash ever leaves.
pub(crate) fn from_raw(
    tests: &mut HealthTests,
    raw: &[u8],
    credited_bits: u32,
) -> Result<Contribution, SourceError> {
    tests
        .feed(raw)
        .map_err(|e| SourceError::Unhealthy(e.to_string()))?;
    if !tests.started() {
        return Err(SourceError::Starting);
    }
    Ok(Contribution {
        digest: Sha512::digest(raw).into(),
        credited_bits,
        secret: PrivateMaterial::of_raw(raw),
    })
}

/// A source made of a sampling function: raw bytes go through the same health tests and
/// hashing as the built-in sources. For sources of one's own, and for fault injection in tests
/// (a sampler that returns the same bytes every time is caught by the real tests).
pub struct Sampled {
    name: String,
    tests: HealthTests,
    bytes: usize,
    credited_bits: u32,
    sample: Box<Sampler>,
}

/// Fills a buffer with a source's raw output.
type Sampler = dyn FnMut(&mut [u8]) -> Result<(), SourceError> + Send;

impl Sampled {
    /// `name`, assessed at `min_entropy` bits per byte, `bytes` per pulse, credited
    /// `credited_bits`; `sample` fills a buffer with raw output.
    pub fn new(
        name: &str,
        min_entropy: f64,
        bytes: usize,
        credited_bits: u32,
        sample: impl FnMut(&mut [u8]) -> Result<(), SourceError> + Send + 'static,
    ) -> Self {
        Sampled {
            name: name.to_string(),
            tests: HealthTests::new(min_entropy),
            bytes: bytes.max(1),
            credited_bits,
            sample: Box::new(sample),
        }
    }
}

impl EntropySource for Sampled {
    fn name(&self) -> &str {
        &self.name
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        // The start-up test needs 1,024 samples: the first pulse reads that many.
        let n = if self.tests.started() {
            self.bytes
        } else {
            self.bytes.max(STARTUP_SAMPLES)
        };
        let mut raw = Zeroizing::new(vec![0u8; n]);
        (self.sample)(&mut raw)?;
        from_raw(&mut self.tests, &raw, self.credited_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_material_is_not_the_published_digest_and_hides_in_debug() {
        let raw: Vec<u8> = (0..=255).collect();
        let mut tests = HealthTests::new(1.0);
        let mut c = None;
        for _ in 0..8 {
            c = from_raw(
                &mut tests,
                &raw.iter()
                    .rev()
                    .copied()
                    .chain(raw.iter().copied())
                    .collect::<Vec<_>>(),
                256,
            )
            .ok();
        }
        let c = c.expect("a healthy contribution after start-up");
        assert_ne!(c.secret.bytes(), &c.digest[..]);
        assert_eq!(
            c.secret,
            PrivateMaterial::of_raw(
                &raw.iter()
                    .rev()
                    .copied()
                    .chain(raw.iter().copied())
                    .collect::<Vec<_>>()
            )
        );
        assert_ne!(PrivateMaterial::of_raw(b"a"), PrivateMaterial::of_raw(b"b"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains(&format!("{:?}", c.secret.bytes())),
            "{shown}"
        );
        assert!(shown.contains("PrivateMaterial(..)"), "{shown}");
        let both = PrivateMaterial::combine([&c.secret, &PrivateMaterial::of_raw(b"x")]);
        assert_ne!(both, c.secret);
    }

    /// A source that always returns the same bytes: what a stuck device looks like.
    struct Stuck(HealthTests);
    impl EntropySource for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }
        fn collect(&mut self) -> Result<Contribution, SourceError> {
            from_raw(&mut self.0, &[0xA5; 1024], 256)
        }
    }

    #[test]
    fn a_stuck_source_fails_its_health_test_on_its_first_pulse() {
        let mut s = Stuck(HealthTests::new(7.0));
        assert!(
            matches!(s.collect(), Err(SourceError::Unhealthy(m)) if m.contains("repetition count"))
        );
    }
}
