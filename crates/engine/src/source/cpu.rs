//! The CPU's RDSEED instruction (x86_64), health-tested like every other source; elsewhere, or
//! on a CPU without it, the source reports itself unavailable.

#[cfg(target_arch = "x86_64")]
use super::from_raw;
use super::{Contribution, EntropySource, SourceError};
use crate::health::HealthTests;
#[cfg(target_arch = "x86_64")]
use crate::health::STARTUP_SAMPLES;
#[cfg(target_arch = "x86_64")]
use zeroize::Zeroizing;

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
                STARTUP_SAMPLES
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
}
