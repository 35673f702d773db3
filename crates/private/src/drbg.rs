//! The generator private bytes come from: ChaCha20 (RustCrypto's `chacha20`) used as a
//! DRBG with fast key erasure, never seeded from pulse values (public values are never
//! secrets).
//!
//! - **Seeding**: the key is SHA-512(domain ‖ old key ‖ 32 bytes of the OS CSPRNG ‖ length ‖
//!   input)[..32]. The engine feeds it fresh material from its healthy sources every period
//!   ([`Drbg::reseed`]); the OS bytes mixed in every time make two servers fed alike differ.
//! - **Freshness**: it serves only while the last reseed from the sources is younger than
//!   `max_age` (two periods) and the sources were healthy then; otherwise [`Drbg::fill`]
//!   refuses and the request gets 503 with Retry-After.
//! - **Bounded output**: after [`RESEED_AFTER_BYTES`] it reseeds from the OS CSPRNG alone
//!   before the next request.
//! - **Backtracking resistance**: every request's first 32 bytes of keystream become the next
//!   key and the old key is overwritten, so a key read from memory later tells nothing about
//!   bytes already given.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha512};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// Bytes given between two reseeds at most.
pub const RESEED_AFTER_BYTES: u64 = 1 << 30;
/// Domain separation for the seeding hash.
const DOMAIN: &[u8] = b"lavabeacon-private-drbg-v1";

/// Why no bytes can be given now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub reason: String,
    /// Seconds until it may be ready again.
    pub retry_after: u64,
}

/// The DRBG. One per process, behind a mutex: a request holds it only while its bytes are
/// made (about 40 µs for 64 KiB).
pub struct Drbg {
    key: Zeroizing<[u8; 32]>,
    since_reseed: u64,
    /// Until when the last reseed from the sources counts as fresh; `None`: never reseeded
    /// from them, or they were unhealthy.
    fresh_until: Option<Instant>,
    why_not: String,
    max_age: Duration,
    retry_after: u64,
}

impl Drbg {
    /// A generator that refuses until the first [`Drbg::reseed`]. `max_age` is how long a
    /// reseed from the sources stays fresh (two periods); `retry_after` what a refused client
    /// is told to wait (one period).
    pub fn new(max_age: Duration, retry_after: Duration) -> Self {
        let mut d = Drbg {
            key: Zeroizing::new([0u8; 32]),
            since_reseed: 0,
            fresh_until: None,
            why_not: "not yet seeded from the entropy sources".into(),
            max_age,
            retry_after: retry_after.as_secs().max(1),
        };
        d.mix(&[]);
        d
    }

    /// key = SHA-512(domain ‖ key ‖ OS bytes ‖ len(input) ‖ input)[..32].
    fn mix(&mut self, input: &[u8]) {
        let mut os = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut *os);
        let mut h = Sha512::new();
        h.update(DOMAIN);
        h.update(&self.key[..]);
        h.update(&os[..]);
        h.update((input.len() as u64).to_be_bytes());
        h.update(input);
        let mut digest = h.finalize();
        self.key.copy_from_slice(&digest[..32]);
        digest.as_mut_slice().zeroize();
        self.since_reseed = 0;
    }

    /// Fresh material from healthy sources: mixed in, and the generator is fresh for
    /// `max_age` from `now`.
    pub fn reseed(&mut self, sources: &[u8], now: Instant) {
        self.mix(sources);
        self.fresh_until = Some(now + self.max_age);
    }

    /// The sources failed their health tests: refuse until the next [`Drbg::reseed`].
    pub fn unhealthy(&mut self, why: impl Into<String>) {
        self.fresh_until = None;
        self.why_not = why.into();
    }

    /// Whether [`Drbg::fill`] would give bytes at `now`.
    pub fn ready(&self, now: Instant) -> Result<(), NotReady> {
        match self.fresh_until {
            Some(until) if now <= until => Ok(()),
            Some(_) => Err(NotReady {
                reason: "the entropy sources have not reseeded the generator in time".into(),
                retry_after: self.retry_after,
            }),
            None => Err(NotReady {
                reason: self.why_not.clone(),
                retry_after: self.retry_after,
            }),
        }
    }

    /// Fills `out` with new bytes, or refuses (see the module's rules).
    pub fn fill(&mut self, out: &mut [u8], now: Instant) -> Result<(), NotReady> {
        self.ready(now)?;
        if self.since_reseed.saturating_add(out.len() as u64) > RESEED_AFTER_BYTES {
            self.mix(b"output bound");
        }
        let mut cipher = ChaCha20::new(
            chacha20::Key::from_slice(&self.key[..]),
            chacha20::Nonce::from_slice(&[0u8; 12]),
        );
        let mut next = Zeroizing::new([0u8; 32]);
        cipher.apply_keystream(&mut *next);
        out.fill(0);
        cipher.apply_keystream(out);
        *self.key = *next;
        self.since_reseed += out.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_drbg() -> (Drbg, Instant) {
        let now = Instant::now();
        let mut d = Drbg::new(Duration::from_secs(120), Duration::from_secs(60));
        d.reseed(b"same material", now);
        (d, now)
    }

    #[test]
    fn an_unseeded_generator_refuses_and_a_seeded_one_fills() {
        let now = Instant::now();
        let mut d = Drbg::new(Duration::from_secs(120), Duration::from_secs(60));
        let mut out = [0u8; 64];
        let e = d.fill(&mut out, now).unwrap_err();
        assert_eq!(e.retry_after, 60);
        assert!(e.reason.contains("not yet seeded"), "{e:?}");
        d.reseed(b"x", now);
        d.fill(&mut out, now).unwrap();
        assert_ne!(out, [0u8; 64]);
    }

    #[test]
    fn it_refuses_once_the_last_reseed_is_stale_or_the_sources_are_unhealthy() {
        let (mut d, now) = ready_drbg();
        let mut out = [0u8; 16];
        assert!(d.fill(&mut out, now + Duration::from_secs(120)).is_ok());
        assert!(d.fill(&mut out, now + Duration::from_secs(121)).is_err());
        d.reseed(b"y", now + Duration::from_secs(121));
        assert!(d.fill(&mut out, now + Duration::from_secs(122)).is_ok());
        d.unhealthy("os: repetition count test failed");
        let e = d
            .fill(&mut out, now + Duration::from_secs(122))
            .unwrap_err();
        assert_eq!(e.reason, "os: repetition count test failed");
    }

    #[test]
    fn two_generators_fed_alike_give_different_bytes_and_no_request_repeats_another() {
        let (mut a, now) = ready_drbg();
        let (mut b, _) = ready_drbg();
        let (mut x, mut y, mut z) = ([0u8; 32], [0u8; 32], [0u8; 32]);
        a.fill(&mut x, now).unwrap();
        b.fill(&mut y, now).unwrap();
        a.fill(&mut z, now).unwrap();
        assert_ne!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn the_key_changes_with_every_request() {
        let (mut d, now) = ready_drbg();
        let before = *d.key;
        let mut out = [0u8; 1];
        d.fill(&mut out, now).unwrap();
        assert_ne!(before, *d.key);
    }

    #[test]
    fn output_looks_uniform_over_a_mebibyte() {
        let (mut d, now) = ready_drbg();
        let mut out = vec![0u8; 1 << 20];
        d.fill(&mut out, now).unwrap();
        let mut counts = [0u64; 256];
        for b in &out {
            counts[*b as usize] += 1;
        }
        // Chi-square with 255 degrees of freedom: above 400 happens by chance about once in
        // 10^8 runs.
        let expected = out.len() as f64 / 256.0;
        let chi2: f64 = counts
            .iter()
            .map(|c| (*c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 400.0, "chi-square {chi2}");
    }
}
