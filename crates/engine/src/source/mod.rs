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
