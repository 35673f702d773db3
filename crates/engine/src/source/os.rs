//! The operating system's CSPRNG (getrandom), through the same health tests and hashing as
//! every other source.

use super::{Contribution, EntropySource, Sampled, SourceError};
use rand::RngCore;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_source_starts_up_and_contributes_fresh_digests() {
        let mut s = OsSource::new(64);
        let a = s.collect().unwrap();
        let b = s.collect().unwrap();
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.credited_bits, 256);
    }
}
