//! A camera that does not exist: noisy grey frames made in memory and sent through the same
//! frame path as the real camera's, for tests and machines with no camera. Its name in
//! manifests is `synthetic-camera`, and using it makes the beacon a test beacon.

use super::frame::{contribution, FrameChecks, FramePath};
use super::{Contribution, EntropySource, SourceError};
use rand::RngCore;
use zeroize::Zeroize;

/// A camera that does not exist: noisy grey frames made in memory and sent through the same
/// frame path, for tests and machines with no camera. Using it makes the beacon a test beacon.
pub struct SyntheticCamera {
    width: usize,
    height: usize,
    frames_per_pulse: usize,
    path: FramePath,
    t: u64,
    /// Fault injection for tests: every frame the same.
    pub frozen: bool,
}

impl SyntheticCamera {
    /// A `width`×`height` camera taking `frames_per_pulse` frames per pulse.
    pub fn new(width: usize, height: usize, frames_per_pulse: usize) -> Self {
        SyntheticCamera {
            width,
            height,
            frames_per_pulse,
            path: FramePath::new(FrameChecks::default()),
            t: 0,
            frozen: false,
        }
    }

    fn frame(&mut self) -> Vec<u8> {
        // Slowly moving blobs (the lamps) plus sensor noise.
        let mut noise = vec![0u8; self.width * self.height];
        if !self.frozen {
            rand::thread_rng().fill_bytes(&mut noise);
            self.t += 1;
        }
        let t = self.t as f64 / 10.0;
        let mut f = vec![0u8; self.width * self.height];
        for y in 0..self.height {
            for x in 0..self.width {
                let blob = ((x as f64 / 13.0 + t).sin() + (y as f64 / 17.0 - t).cos()) * 40.0;
                let v = 128.0 + blob + f64::from(noise[y * self.width + x] % 16) - 8.0;
                f[y * self.width + x] = v.clamp(1.0, 254.0) as u8;
            }
        }
        noise.zeroize();
        f
    }
}

impl EntropySource for SyntheticCamera {
    /// Not `camera`: a manifest must say that its frames were made up.
    fn name(&self) -> &str {
        "synthetic-camera"
    }
    fn collect(&mut self) -> Result<Contribution, SourceError> {
        let mut hasher = blake3::Hasher::new();
        let mut credit = 0.0;
        for _ in 0..self.frames_per_pulse {
            let mut frame = self.frame();
            credit += self.path.take(&mut frame, &mut hasher)?;
        }
        Ok(contribution(hasher, credit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_frames_pass_and_are_wiped() {
        let mut cam = SyntheticCamera::new(64, 48, 3);
        let a = cam.collect().unwrap();
        let b = cam.collect().unwrap();
        assert_ne!(a.digest, b.digest);
        assert!(a.credited_bits > 0);
        let mut path = FramePath::default();
        let mut frame = cam.frame();
        path.take(&mut frame, &mut blake3::Hasher::new()).unwrap();
        assert!(
            frame.iter().all(|p| *p == 0),
            "the frame buffer is wiped after hashing"
        );
    }

    #[test]
    fn a_frozen_camera_is_caught() {
        let mut cam = SyntheticCamera::new(64, 48, 2);
        cam.frozen = true;
        assert!(matches!(cam.collect(), Err(SourceError::Unhealthy(m)) if m.contains("identical")));
    }
}
