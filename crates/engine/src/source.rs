//! Entropy sources. Each has a name, contributes a 64-byte digest with an entropy credit, runs
//! its own health tests, and is left out of a pulse (with the reason in the manifest) when it
//! fails them or is unavailable; it comes back when healthy again.

use crate::health::HealthTests;
use lavabeacon_signer::Signer;
use rand::RngCore;
use sha2::{Digest, Sha512};
use std::sync::Arc;
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
    /// Whether using it makes the beacon a test beacon (the synthetic camera).
    fn is_test(&self) -> bool {
        false
    }
    /// Samples the source for one pulse.
    fn collect(&mut self) -> Result<Contribution, SourceError>;
}

/// Raw bytes, health-tested, hashed with SHA-512 into the contribution. The raw bytes are
/// wiped; only their hash ever leaves.
fn from_raw(
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
            self.bytes.max(crate::health::STARTUP_SAMPLES)
        };
        let mut raw = Zeroizing::new(vec![0u8; n]);
        (self.sample)(&mut raw)?;
        from_raw(&mut self.tests, &raw, self.credited_bits)
    }
}

/// The operating system's CSPRNG (getrandom).
pub struct OsSource(Sampled);

impl OsSource {
    /// Takes `bytes` bytes per pulse (at least 64); credits half of their bits, at most 256.
    pub fn new(bytes: usize) -> Self {
        let bytes = bytes.max(64);
        OsSource(Sampled::new(
            "os",
            7.0,
            bytes,
            (bytes as u32 * 4).min(256),
            |raw| {
                rand::rngs::OsRng
                    .try_fill_bytes(raw)
                    .map_err(|e| SourceError::Unavailable(e.to_string()))
            },
        ))
    }
}

impl EntropySource for OsSource {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        self.0.collect()
    }
}

/// The HSM's own generator (C_GenerateRandom through the signer's token).
pub struct HsmSource {
    signer: Arc<dyn Signer>,
    tests: HealthTests,
}

impl HsmSource {
    /// A source drawing from `signer`'s token.
    pub fn new(signer: Arc<dyn Signer>) -> Self {
        HsmSource {
            signer,
            tests: HealthTests::new(7.0),
        }
    }
}

impl EntropySource for HsmSource {
    fn name(&self) -> &str {
        "hsm"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        let n = if self.tests.started() {
            64
        } else {
            crate::health::STARTUP_SAMPLES
        };
        let mut raw = Zeroizing::new(vec![0u8; n]);
        self.signer
            .random(&mut raw)
            .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        from_raw(&mut self.tests, &raw, 256)
    }
}

/// The CPU's RDSEED (x86_64 only; reported unavailable elsewhere or when the CPU lacks it).
pub struct CpuSource {
    tests: HealthTests,
}

impl Default for CpuSource {
    fn default() -> Self {
        CpuSource {
            tests: HealthTests::new(7.0),
        }
    }
}

impl CpuSource {
    /// Whether this CPU has RDSEED.
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("rdseed")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn rdseed(out: &mut [u8]) -> Result<(), SourceError> {
        #[target_feature(enable = "rdseed")]
        // SAFETY (for callers): only called after checking that the CPU has RDSEED.
        unsafe fn step(v: &mut u64) -> i32 {
            std::arch::x86_64::_rdseed64_step(v)
        }
        for chunk in out.chunks_mut(8) {
            let mut v = 0u64;
            // RDSEED may run dry under load; it is retried a bounded number of times.
            let mut ok = false;
            for _ in 0..1000 {
                // SAFETY: available() was checked by the caller.
                if unsafe { step(&mut v) } == 1 {
                    ok = true;
                    break;
                }
                std::hint::spin_loop();
            }
            if !ok {
                return Err(SourceError::Unavailable(
                    "RDSEED kept failing (entropy exhausted)".into(),
                ));
            }
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

impl EntropySource for CpuSource {
    fn name(&self) -> &str {
        "cpu"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        if !Self::available() {
            return Err(SourceError::Unavailable("this CPU has no RDSEED".into()));
        }
        #[cfg(target_arch = "x86_64")]
        {
            let n = if self.tests.started() {
                64
            } else {
                crate::health::STARTUP_SAMPLES
            };
            let mut raw = Zeroizing::new(vec![0u8; n]);
            Self::rdseed(&mut raw)?;
            // RDSEED output is conditioned; it is credited conservatively all the same.
            from_raw(&mut self.tests, &raw, 128)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("available() is false off x86_64")
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
    fn the_os_source_starts_up_and_contributes_fresh_digests() {
        let mut s = OsSource::new(64);
        let a = s.collect().unwrap();
        let b = s.collect().unwrap();
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.credited_bits, 256);
    }

    #[test]
    fn a_stuck_source_fails_its_health_test_on_its_first_pulse() {
        let mut s = Stuck(HealthTests::new(7.0));
        assert!(
            matches!(s.collect(), Err(SourceError::Unhealthy(m)) if m.contains("repetition count"))
        );
    }

    #[test]
    fn the_cpu_source_uses_rdseed_or_says_it_is_unavailable() {
        let mut s = CpuSource::default();
        match s.collect() {
            Ok(c) => {
                assert!(CpuSource::available());
                assert_ne!(c.digest, s.collect().unwrap().digest);
            }
            Err(SourceError::Unavailable(why)) => {
                assert!(!CpuSource::available() || why.contains("RDSEED"), "{why}")
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_hsm_source_draws_from_the_signer() {
        let signer: Arc<dyn Signer> =
            Arc::new(lavabeacon_signer::software::SoftwareSigner::new(&[4; 32], None).unwrap());
        let mut s = HsmSource::new(signer);
        let a = s.collect().unwrap();
        assert_ne!(a.digest, s.collect().unwrap().digest);
    }
}
