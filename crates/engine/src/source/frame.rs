//! The camera frame path, shared by the real camera and the synthetic one ([`super::synthetic`]): checks on each
//! frame, a BLAKE3 hash of the whole frame, then the frame buffer is wiped. Nothing of an image
//! is ever written anywhere.

use super::{Contribution, SourceError};
use zeroize::Zeroize;

/// Limits a frame must meet to count.
#[derive(Debug, Clone, Copy)]
pub struct FrameChecks {
    /// Largest share of saturated pixels (0 or 255) allowed.
    pub max_saturated: f64,
    /// Smallest pixel variance (a black or flat frame carries nothing).
    pub min_variance: f64,
    /// Largest pixel variance (a frame of pure static means a broken sensor or cable).
    pub max_variance: f64,
    /// Entropy credited per unsaturated pixel, in bits. Conservative by default: sensor noise
    /// gives far more, but nobody can prove how much.
    pub bits_per_pixel: f64,
}

impl Default for FrameChecks {
    fn default() -> Self {
        FrameChecks {
            max_saturated: 0.05,
            min_variance: 4.0,
            max_variance: 5000.0,
            bits_per_pixel: 0.01,
        }
    }
}

/// Checks, hashes and wipes frames, remembering the last frame's hash to refuse repeats.
#[derive(Debug, Default)]
pub struct FramePath {
    checks: FrameChecks,
    last: Option<[u8; 32]>,
}

impl FramePath {
    /// A frame path with these limits.
    pub fn new(checks: FrameChecks) -> Self {
        FramePath { checks, last: None }
    }

    /// Takes one 8-bit grey frame: checks it, hashes it into `hasher`, wipes it. Returns the
    /// entropy credited for it.
    pub fn take(
        &mut self,
        frame: &mut [u8],
        hasher: &mut blake3::Hasher,
    ) -> Result<f64, SourceError> {
        self.take_with_stride(frame, 1, hasher)
    }

    /// Like [`FramePath::take`] for a frame whose luma is every `stride`-th byte (2 for YUYV):
    /// the checks and the credit look at the luma, the hash covers the whole frame.
    pub fn take_with_stride(
        &mut self,
        frame: &mut [u8],
        stride: usize,
        hasher: &mut blake3::Hasher,
    ) -> Result<f64, SourceError> {
        let result = self.check(frame, stride.max(1));
        if result.is_ok() {
            hasher.update(frame);
        }
        frame.zeroize();
        result
    }

    fn check(&mut self, frame: &[u8], stride: usize) -> Result<f64, SourceError> {
        if frame.is_empty() {
            return Err(SourceError::Unhealthy("empty frame".into()));
        }
        let digest: [u8; 32] = blake3::hash(frame).into();
        if self.last == Some(digest) {
            return Err(SourceError::Unhealthy(
                "identical consecutive frames (frozen camera?)".into(),
            ));
        }
        self.last = Some(digest);
        let luma = || frame.iter().step_by(stride);
        let n = luma().count() as f64;
        let saturated = luma().filter(|p| **p == 0 || **p == 255).count() as f64;
        if saturated / n > self.checks.max_saturated {
            return Err(SourceError::Unhealthy(format!(
                "{:.1} % of pixels saturated (limit {:.1} %)",
                100.0 * saturated / n,
                100.0 * self.checks.max_saturated
            )));
        }
        let mean = luma().map(|p| f64::from(*p)).sum::<f64>() / n;
        let variance = luma().map(|p| (f64::from(*p) - mean).powi(2)).sum::<f64>() / n;
        if !(self.checks.min_variance..=self.checks.max_variance).contains(&variance) {
            return Err(SourceError::Unhealthy(format!(
                "pixel variance {variance:.1} outside {}..{}",
                self.checks.min_variance, self.checks.max_variance
            )));
        }
        Ok((n - saturated) * self.checks.bits_per_pixel)
    }
}

/// The contribution of `frames` frames run through a frame path: BLAKE3 over all of them,
/// extended to 64 bytes, with their summed credit (capped at 512 bits).
pub fn contribution(hasher: blake3::Hasher, credit: f64) -> Contribution {
    let mut digest = [0u8; 64];
    hasher.finalize_xof().fill(&mut digest);
    // The private material: the same frames' hash under another domain (the frames are gone,
    // so only this hasher's state can make it).
    let mut private = hasher;
    private.update(b"lavabeacon-private-material-v1");
    let mut secret = zeroize::Zeroizing::new([0u8; 64]);
    private.finalize_xof().fill(&mut secret[..]);
    Contribution {
        digest,
        credited_bits: credit.min(512.0) as u32,
        secret: super::PrivateMaterial::of_raw(&secret[..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturated_and_flat_frames_are_refused() {
        let mut path = FramePath::default();
        let mut white: Vec<u8> = (0..1000)
            .map(|i| if i % 10 == 0 { 200 } else { 255 })
            .collect();
        assert!(
            matches!(path.take(&mut white, &mut blake3::Hasher::new()), Err(SourceError::Unhealthy(m)) if m.contains("saturated"))
        );
        let mut flat = vec![100u8; 1000];
        flat[0] = 101;
        assert!(
            matches!(path.take(&mut flat, &mut blake3::Hasher::new()), Err(SourceError::Unhealthy(m)) if m.contains("variance"))
        );
    }
}
