//! Cipher suites (spec §3): how a pulse's signature is checked, and the signer interface the
//! chain builder and the engine's HSM signer implement.

use crate::cert::{Certificate, PublicKey};
use crate::hash::Hash512;
use ed25519_dalek::Signature;
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use thiserror::Error;

/// The cipher suites lavabeacon knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum CipherSuite {
    /// 0: RSA PKCS#1 v1.5 with SHA-512 over M (NIST, INMETRO).
    RsaPkcs1Sha512,
    /// 1: CLCERT's suite: SHA3-512, RSA-PSS.
    ClcertRsaPss,
    /// 2: Ed25519 (RFC 8032, pure) over M; lavabeacon's default.
    Ed25519,
}

impl CipherSuite {
    /// The suite for a pulse's `cipherSuite` number.
    pub fn from_code(code: u32) -> Option<CipherSuite> {
        match code {
            0 => Some(CipherSuite::RsaPkcs1Sha512),
            1 => Some(CipherSuite::ClcertRsaPss),
            2 => Some(CipherSuite::Ed25519),
            _ => None,
        }
    }

    /// The `cipherSuite` number.
    pub fn code(self) -> u32 {
        match self {
            CipherSuite::RsaPkcs1Sha512 => 0,
            CipherSuite::ClcertRsaPss => 1,
            CipherSuite::Ed25519 => 2,
        }
    }
}

/// The RSA modulus size, in bits, that a bare `"rsa"` means wherever a key is configured or
/// made without a size (the signer's suite names, the development tools): 4096, the size of
/// NIST's own beacon key (the certificate in `tests/vectors/nist-2018-chain1/` carries an
/// RSA-4096 key), so a beacon that names no size signs as NIST does. One constant, so that
/// the signer and the tools never disagree about what `"rsa"` is.
pub const RSA_KEY_BITS: usize = 4096;

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The pulse names a suite nobody defined.
    #[error("unknown cipherSuite {0}")]
    UnknownSuite(u32),
    /// The certificate's key cannot make signatures of this suite.
    #[error("cipherSuite {suite} needs {needs} key, certificate has {has}")]
    KeyMismatch {
        /// The pulse's suite.
        suite: u32,
        /// What the suite needs.
        needs: &'static str,
        /// What the certificate holds.
        has: String,
    },
    /// The signature has the wrong size for the key.
    #[error("signature is {found} bytes, {key} signatures are {expected}")]
    WrongLength {
        /// Expected bytes.
        expected: usize,
        /// Found bytes.
        found: usize,
        /// Key description.
        key: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify against certificate {0}")]
    Invalid(String),
}

/// Checks `signature` over the signed message `m` under `cert`'s key for `suite`.
///
/// Suite 1 is checked as RSA-PSS with SHA-512 and MGF1-SHA-512 over M, the CLCERT scheme.
pub fn verify_signature(
    suite: u32,
    m: &[u8],
    signature: &[u8],
    cert: &Certificate,
) -> Result<(), SignatureError> {
    let suite = CipherSuite::from_code(suite).ok_or(SignatureError::UnknownSuite(suite))?;
    let invalid = || SignatureError::Invalid(cert.id.short());
    match (suite, &cert.key) {
        (CipherSuite::Ed25519, PublicKey::Ed25519(vk)) => {
            let sig = ed25519_signature(signature)?;
            vk.verify_strict(m, &sig).map_err(|_| invalid())
        }
        (
            CipherSuite::RsaPkcs1Sha512 | CipherSuite::ClcertRsaPss,
            PublicKey::Rsa { pkcs1_der, bits },
        ) => {
            let expected = bits.div_ceil(8);
            if signature.len() != expected {
                return Err(SignatureError::WrongLength {
                    expected,
                    found: signature.len(),
                    key: cert.key.describe(),
                });
            }
            if suite == CipherSuite::RsaPkcs1Sha512 {
                UnparsedPublicKey::new(&ring_sig::RSA_PKCS1_2048_8192_SHA512, pkcs1_der)
                    .verify(m, signature)
                    .map_err(|_| invalid())
            } else {
                verify_clcert_pss(pkcs1_der, m, signature).map_err(|_| invalid())
            }
        }
        (s, key) => Err(SignatureError::KeyMismatch {
            suite: s.code(),
            needs: if s == CipherSuite::Ed25519 {
                "an Ed25519"
            } else {
                "an RSA"
            },
            has: key.describe(),
        }),
    }
}

/// CLCERT's RSA-PSS: SHA-512 and MGF1-SHA-512 over M. Its verifier uses a 20-byte salt; a
/// salt as long as the hash (the common default) is accepted too, since no CLCERT certificate
/// was available to settle it.
fn verify_clcert_pss(pkcs1_der: &[u8], m: &[u8], signature: &[u8]) -> Result<(), ()> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use sha2::{Digest, Sha512};
    let key = rsa::RsaPublicKey::from_pkcs1_der(pkcs1_der).map_err(|_| ())?;
    let digest = Sha512::digest(m);
    for salt in [20, 64] {
        if key
            .verify(rsa::Pss::new_with_salt::<Sha512>(salt), &digest, signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(())
}

/// Verifies many Ed25519 signatures at once; true only if every one is valid.
///
/// One random linear combination of the verification equations, checked with one
/// multi-scalar multiplication: signatures under the same key share one term for that key, so a
/// chain's batch costs little more than one point per signature. The equation is multiplied by
/// the cofactor (RFC 8032 §5.1.7 allows either form); R of small order and non-canonical S are
/// refused, as `verify_strict` refuses them. The random 128-bit coefficients make a batch with
/// a bad signature pass with probability 2^-128.
pub fn ed25519_verify_batch(items: &[(&[u8], &Signature, &ed25519_dalek::VerifyingKey)]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use rand::RngCore;
    use sha2::{Digest, Sha512};

    let mut rng = rand::thread_rng();
    let mut scalars = Vec::with_capacity(items.len() + 2);
    let mut points = Vec::with_capacity(items.len() + 2);
    let mut keys: Vec<([u8; 32], Scalar)> = Vec::new();
    let mut base = Scalar::ZERO;
    for (m, sig, vk) in items {
        let r_bytes = sig.r_bytes();
        let Some(r) = CompressedEdwardsY(*r_bytes).decompress() else {
            return false;
        };
        if r.is_small_order() {
            return false;
        }
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())) else {
            return false;
        };
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(vk.as_bytes())
                .chain_update(m),
        );
        let mut zb = [0u8; 32];
        rng.fill_bytes(&mut zb[..16]);
        let z = Scalar::from_bytes_mod_order(zb);
        base += z * s;
        let zk = z * k;
        match keys.iter_mut().find(|(b, _)| b == vk.as_bytes()) {
            Some((_, c)) => *c += zk,
            None => keys.push((*vk.as_bytes(), zk)),
        }
        // Negate the point, not the scalar: z stays 128 bits long, and the multi-scalar
        // multiplication skips the all-zero upper half of its digits.
        scalars.push(z);
        points.push(-r);
    }
    for (bytes, c) in keys {
        let Some(a) = CompressedEdwardsY(bytes).decompress() else {
            return false;
        };
        scalars.push(-c);
        points.push(a);
    }
    scalars.push(base);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Reads a 64-byte Ed25519 signature.
pub fn ed25519_signature(bytes: &[u8]) -> Result<Signature, SignatureError> {
    let arr: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::WrongLength {
        expected: 64,
        found: bytes.len(),
        key: "Ed25519".into(),
    })?;
    Ok(Signature::from_bytes(&arr))
}

/// Something that signs pulses: an HSM key over PKCS#11 in production, a software key in
/// development and tests. The chain builder calls it with the exact signed message M.
pub trait PulseSigner {
    /// The `cipherSuite` of the signatures this signer makes.
    fn cipher_suite(&self) -> u32;
    /// SHA-512 of the DER of the certificate for this signer's key.
    fn certificate_id(&self) -> Hash512;
    /// Signs M.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A signer failed.
#[derive(Debug, Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// A software Ed25519 key: for tests, benchmarks and development beacons only.
pub struct Ed25519KeySigner {
    key: ed25519_dalek::SigningKey,
    certificate_id: Hash512,
}

impl Ed25519KeySigner {
    /// A signer for `key` whose certificate has id `certificate_id`.
    pub fn new(key: ed25519_dalek::SigningKey, certificate_id: Hash512) -> Self {
        Self {
            key,
            certificate_id,
        }
    }

    /// The public key.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }
}

impl PulseSigner for Ed25519KeySigner {
    fn cipher_suite(&self) -> u32 {
        2
    }
    fn certificate_id(&self) -> Hash512 {
        self.certificate_id
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        use ed25519_dalek::Signer;
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

/// A software RSA key (PKCS#8 DER) signing with PKCS#1 v1.5 / SHA-512: for tests and
/// benchmarks of suite 0 only.
pub struct RsaKeySigner {
    key: ring_sig::RsaKeyPair,
    certificate_id: Hash512,
}

impl RsaKeySigner {
    /// A signer from a PKCS#8 DER RSA private key.
    pub fn from_pkcs8(pkcs8: &[u8], certificate_id: Hash512) -> Result<Self, SignError> {
        let key = ring_sig::RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|e| SignError(format!("RSA key: {e}")))?;
        Ok(Self {
            key,
            certificate_id,
        })
    }
}

impl PulseSigner for RsaKeySigner {
    fn cipher_suite(&self) -> u32 {
        0
    }
    fn certificate_id(&self) -> Hash512 {
        self.certificate_id
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&ring_sig::RSA_PKCS1_SHA512, &rng, message, &mut sig)
            .map_err(|_| SignError("RSA signing failed".into()))?;
        Ok(sig)
    }
}
