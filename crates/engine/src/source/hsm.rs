//! The HSM's random number generator (C_GenerateRandom on the signing token, through the
//! signer), health-tested like every other source.

use super::{from_raw, Contribution, EntropySource, SourceError};
use crate::health::{HealthTests, STARTUP_SAMPLES};
use lavabeacon_signer::Signer;
use std::sync::Arc;
use zeroize::Zeroizing;

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
            STARTUP_SAMPLES
        };
        let mut raw = Zeroizing::new(vec![0u8; n]);
        self.signer
            .random(&mut raw)
            .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        from_raw(&mut self.tests, &raw, 256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hsm_source_draws_from_the_signer() {
        let signer: Arc<dyn Signer> =
            Arc::new(lavabeacon_signer::software::SoftwareSigner::new(&[4; 32], None).unwrap());
        let mut s = HsmSource::new(signer);
        let a = s.collect().unwrap();
        assert_ne!(a.digest, s.collect().unwrap().digest);
    }
}
