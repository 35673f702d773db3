//! # lavabeacon-signer
//!
//! The keys that sign pulses. In production the key never leaves a hardware security module,
//! spoken to over PKCS#11 ([`pkcs11`], tested against SoftHSM2); for development there is a
//! software key ([`software`]) whose certificate says `TEST ONLY - NOT FOR SECURITY USE`.
//!
//! ## Layout
//! - [`Signer`]: what the engine needs of a key: sign M (through the format crate's
//!   [`PulseSigner`]), its certificate, sealing of the next value, and randomness.
//! - [`pkcs11`]: HSM keys (Ed25519 / cipherSuite 2, RSA-3072/4096 with SHA-512 / cipherSuite 0).
//! - [`software`]: a software Ed25519 key for development and tests.
//! - [`cert`]: X.509 certificates issued by the key itself.
//! - [`self_test`]: the start-up check: sign a fresh message, verify it with the certificate.

pub mod cert;
pub mod pkcs11;
pub mod software;

use lavabeacon_format::cert::Certificate;
use lavabeacon_format::suite::{verify_signature, PulseSigner};
use std::path::PathBuf;
use thiserror::Error;
use zeroize::Zeroizing;

/// The subject marker of every certificate of a key that must not be trusted.
pub const TEST_ONLY: &str = "TEST ONLY - NOT FOR SECURITY USE";

/// Which signature scheme a key makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// cipherSuite 2: Ed25519 (the default).
    Ed25519,
    /// cipherSuite 0: RSA PKCS#1 v1.5 with SHA-512, for strict NIST compatibility.
    Rsa {
        /// Modulus size: 3072 or 4096.
        bits: u32,
    },
}

impl Suite {
    /// The pulse's `cipherSuite` number.
    pub fn code(self) -> u32 {
        match self {
            Suite::Ed25519 => 2,
            Suite::Rsa { .. } => 0,
        }
    }

    /// A name for messages and configuration (`ed25519`, `rsa-4096`).
    pub fn name(self) -> String {
        match self {
            Suite::Ed25519 => "ed25519".into(),
            Suite::Rsa { bits } => format!("rsa-{bits}"),
        }
    }
}

impl std::str::FromStr for Suite {
    type Err = SignerError;
    fn from_str(s: &str) -> Result<Suite, SignerError> {
        match s {
            "ed25519" => Ok(Suite::Ed25519),
            "rsa-3072" => Ok(Suite::Rsa { bits: 3072 }),
            "rsa-4096" | "rsa" => Ok(Suite::Rsa { bits: 4096 }),
            other => Err(SignerError::Config(format!(
                "unknown suite {other:?}: use ed25519, rsa-3072 or rsa-4096"
            ))),
        }
    }
}

/// Where the HSM PIN comes from. Never the command line, never the configuration file in
/// clear, never a log line.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (trailing newline ignored); keep it mode 0600.
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinSource::File(p) => write!(f, "PIN from file {}", p.display()),
            PinSource::Env(v) => write!(f, "PIN from ${v}"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. The error names the source, never the PIN.
    pub fn read(&self) -> Result<secrecy::SecretString, SignerError> {
        let pin = match self {
            PinSource::File(p) => std::fs::read_to_string(p).map_err(|e| {
                SignerError::Pin(format!("cannot read the PIN file {}: {e}", p.display()))
            })?,
            PinSource::Env(v) => std::env::var(v).map_err(|_| {
                SignerError::Pin(format!("environment variable {v} (the HSM PIN) is not set"))
            })?,
        };
        let pin = Zeroizing::new(pin);
        let trimmed = pin.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(SignerError::Pin(format!("{self:?} is empty")));
        }
        Ok(secrecy::SecretString::from(trimmed))
    }
}

/// What went wrong with a key. Messages say what to fix and never contain a PIN or key.
#[derive(Debug, Error)]
pub enum SignerError {
    /// The PKCS#11 module file does not exist or cannot be loaded.
    #[error("PKCS#11 module {path}: {reason}")]
    Module {
        /// The configured path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No token has the configured label.
    #[error("no token labelled {label:?} in {module}; tokens present: {available}")]
    UnknownToken {
        /// The configured label.
        label: String,
        /// The module.
        module: String,
        /// Labels found.
        available: String,
    },
    /// The token refused the PIN.
    #[error("the token {label:?} refused the PIN (wrong PIN)")]
    WrongPin {
        /// The token label.
        label: String,
    },
    /// The PIN could not be had.
    #[error("{0}")]
    Pin(String),
    /// No private key with the configured label.
    #[error("no private key labelled {key:?} in token {token:?}; create it with `lavabeacon keys generate`")]
    MissingKey {
        /// The key label.
        key: String,
        /// The token label.
        token: String,
    },
    /// The key is of another type than the configured suite needs.
    #[error("key {key:?} is {found}, but the configured suite {suite} needs {needs}")]
    KeyType {
        /// The key label.
        key: String,
        /// What was found.
        found: String,
        /// The configured suite.
        suite: String,
        /// What it needs.
        needs: String,
    },
    /// The HSM failed an operation (gone, busy, out of sessions…).
    #[error("HSM: {0}")]
    Hsm(String),
    /// The start-up self-test failed.
    #[error("self-test failed: {0}")]
    SelfTest(String),
    /// A sealed value could not be opened (wrong key, tampered, truncated).
    #[error("sealed value cannot be opened: {0}")]
    Unseal(String),
    /// A certificate could not be made or does not match the key.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The configuration is wrong.
    #[error("configuration: {0}")]
    Config(String),
}

/// A pulse signing key with its certificate.
pub trait Signer: PulseSigner + Send + Sync {
    /// The certificate of this key (its SHA-512 is every pulse's certificateId).
    fn certificate(&self) -> &Certificate;
    /// Encrypts `plaintext` (the next localRandomValue) so that only this key's holder can open
    /// it; `aad` binds it to its place (chain and pulse index).
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// Opens what [`Signer::seal`] made.
    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SignerError>;
    /// Fills `out` from the key holder's random generator (the HSM's C_GenerateRandom).
    fn random(&self, out: &mut [u8]) -> Result<(), SignerError>;
    /// Whether this key must not be trusted (software key, test token).
    fn is_test(&self) -> bool;
}

/// The start-up self-test: signs a fresh random message and verifies it against the
/// certificate's public key. A beacon refuses to start when this fails.
pub fn self_test(signer: &dyn Signer) -> Result<(), SignerError> {
    let mut m = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut m);
    let sig = signer
        .sign(&m)
        .map_err(|e| SignerError::SelfTest(e.to_string()))?;
    if signer.certificate_id() != signer.certificate().id {
        return Err(SignerError::SelfTest(
            "the signer names another certificate than it holds".into(),
        ));
    }
    verify_signature(signer.cipher_suite(), &m, &sig, signer.certificate()).map_err(|e| {
        SignerError::SelfTest(format!(
            "a fresh signature does not verify against the certificate: {e}"
        ))
    })
}
