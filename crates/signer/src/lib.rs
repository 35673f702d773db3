//! # lavabeacon-signer
//!
//! The keys that sign pulses. In production the key never leaves a hardware security module,
//! spoken to over PKCS#11 ([`pkcs11`], tested against SoftHSM2); for development there is a
//! software key ([`software`]) whose certificate says `TEST ONLY - NOT FOR SECURITY USE`.
//!
//! # Layout
//! - [`Signer`]: what the engine needs of a key: sign M (through the format crate's
//!   [`PulseSigner`]), its certificate, sealing of the next value, and randomness.
//! - [`Suite`]: Ed25519 or RSA with its size (a bare `"rsa"` is
//!   [`RSA_KEY_BITS`]); [`PinSource`]: where the HSM PIN comes from.
//! - [`pkcs11`]: HSM keys (Ed25519 / cipherSuite 2, RSA-3072/4096 with SHA-512 / cipherSuite 0),
//!   a folder: how to reach a key (`config`), the module, recovery, the token, the key's objects, the key and its session
//!   pool, and what it signs.
//! - [`software`]: a software Ed25519 key for development and tests.
//! - [`cert`]: X.509 certificates issued by the key itself or an operator CA, valid as a
//!   [`cert::Validity`] says.
//! - [`self_test`]: the start-up check: sign a fresh message, verify it with the certificate.
//! - [`SignerError`]: the operator's text (`Display`) and a public word
//!   ([`SignerError::category`]); neither contains a PIN.
//!
//! An HSM that goes away and comes back needs no restart: see [`pkcs11`]'s recovery notes.

pub mod cert;
pub mod pkcs11;
pub mod software;

use lavabeacon_format::cert::Certificate;
use lavabeacon_format::suite::{verify_signature, PulseSigner, RSA_KEY_BITS};
use std::path::PathBuf;
use thiserror::Error;
use zeroize::Zeroizing;

/// The subject marker of every certificate of a key that must not be trusted (defined with
/// the certificates, so that the auditor's tools share it without this crate).
pub use lavabeacon_format::cert::TEST_ONLY;

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
            "rsa-4096" => Ok(Suite::Rsa { bits: 4096 }),
            // A bare "rsa" is the format crate's RSA_KEY_BITS, which the tools use too.
            "rsa" => Ok(Suite::Rsa {
                bits: RSA_KEY_BITS as u32,
            }),
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
    /// A file holding the PIN (trailing newline ignored). It must be mode 0600 or stricter: a
    /// file that group or others may read or write is refused.
    File(PathBuf),
    /// An environment variable holding the PIN: its name (`[A-Za-z_][A-Za-z0-9_]*`), never the
    /// PIN itself.
    Env(String),
}

/// Whether `name` can name an environment variable (`[A-Za-z_][A-Za-z0-9_]*`). A value that
/// cannot is most likely the PIN put where its variable's name belongs, and is never shown.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The message for a `pin_env` that is not a variable name; it never repeats the value.
const NOT_A_VAR_NAME: &str = "pin_env must name an environment variable; the value given is not a \
variable name (is it the PIN itself?)";

/// A PIN file's path as messages show it. A file name that looks like a PIN (no extension,
/// four or more characters, at least half of them digits: `pin_file = "548083359663"`, which
/// the configuration makes `/etc/lavabeacon/548083359663`) may be the PIN typed where its file
/// belongs, so it is withheld; `./user.pin`, `/etc/lavabeacon/pin` and `/run/secrets/hsm_pin`
/// are shown in full.
fn shown_pin_path(p: &std::path::Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digits = name.chars().filter(char::is_ascii_digit).count();
    let chars = name.chars().count();
    if name.contains('.') || chars < 4 || digits * 2 < chars {
        return p.display().to_string();
    }
    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => format!("{}/<a name that looks like a PIN, withheld>", dir.display()),
        None => "<a name that looks like a PIN, withheld>".into(),
    }
}

impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinSource::File(p) => write!(f, "PIN from file {}", shown_pin_path(p)),
            PinSource::Env(v) if is_env_var_name(v) => write!(f, "PIN from ${v}"),
            PinSource::Env(_) => write!(f, "PIN from pin_env (not a variable name; withheld)"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. The error names the source, never the PIN: a file that group or others
    /// may read or write is refused (`chmod 600`), and a `pin_env` that is not a variable name
    /// is refused without being repeated.
    pub fn read(&self) -> Result<secrecy::SecretString, SignerError> {
        let pin = match self {
            PinSource::File(p) => Zeroizing::new(read_pin_file(p)?),
            PinSource::Env(v) if !is_env_var_name(v) => {
                return Err(SignerError::Pin(NOT_A_VAR_NAME.into()))
            }
            PinSource::Env(v) => Zeroizing::new(std::env::var(v).map_err(|e| {
                SignerError::Pin(match e {
                    std::env::VarError::NotPresent => {
                        format!("environment variable {v} (the HSM PIN) is not set")
                    }
                    std::env::VarError::NotUnicode(_) => {
                        format!("environment variable {v} (the HSM PIN) is not valid UTF-8")
                    }
                })
            })?),
        };
        let trimmed = pin.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(SignerError::Pin(format!("{self:?} is empty")));
        }
        Ok(secrecy::SecretString::from(trimmed))
    }
}

/// Reads a PIN file after checking, on the open file (no race with a rename), that group and
/// others have no access to it.
fn read_pin_file(p: &std::path::Path) -> Result<String, SignerError> {
    use std::io::Read;
    let name = shown_pin_path(p);
    let mut file = std::fs::File::open(p)
        .map_err(|e| SignerError::Pin(format!("cannot read the PIN file {name}: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| SignerError::Pin(format!("cannot read the PIN file {name}: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SignerError::Pin(format!(
                "the PIN file {name} is mode {:04o}: group or others may read or write it; \
restrict it with `chmod 600 {name}`",
                mode & 0o7777
            )));
        }
    }
    let mut pin = String::new();
    if let Err(e) = file.read_to_string(&mut pin) {
        // What was read so far is the PIN's: wipe it.
        zeroize::Zeroize::zeroize(&mut pin);
        return Err(SignerError::Pin(format!(
            "cannot read the PIN file {name}: {e}"
        )));
    }
    Ok(pin)
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
    /// The HSM failed an operation that it was able to answer (a refused mechanism, a bad
    /// argument…).
    #[error("HSM: {0}")]
    Hsm(String),
    /// The HSM cannot be reached: token removed, device error, module not initialised,
    /// sessions or login lost and not regained. The signer has already re-initialised the
    /// module and retried (at most once a second); a later call may succeed.
    #[error("HSM unavailable: {0}")]
    Unavailable(String),
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

impl SignerError {
    /// A short public word for what went wrong, for `/health` and other public answers. The
    /// full text (`Display`) is for the operator's log; neither ever contains a PIN.
    pub fn category(&self) -> &'static str {
        match self {
            SignerError::Module { .. } | SignerError::Unavailable(_) => "hsm unavailable",
            SignerError::UnknownToken { .. } => "token not found",
            SignerError::WrongPin { .. } => "wrong PIN",
            SignerError::Pin(_) => "PIN unavailable",
            SignerError::MissingKey { .. } => "key not found",
            SignerError::KeyType { .. } => "wrong key type",
            SignerError::Hsm(_) => "hsm operation failed",
            SignerError::SelfTest(_) => "self-test failed",
            SignerError::Unseal(_) => "sealed value unreadable",
            SignerError::Certificate(_) => "certificate error",
            SignerError::Config(_) => "configuration error",
        }
    }

    /// Whether trying again later may succeed without the operator doing anything (the HSM
    /// was unavailable).
    pub fn is_transient(&self) -> bool {
        matches!(self, SignerError::Unavailable(_))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_rsa_means_the_format_crates_rsa_key_bits() {
        assert_eq!(
            "rsa".parse::<Suite>().unwrap(),
            Suite::Rsa {
                bits: RSA_KEY_BITS as u32
            }
        );
        assert_eq!(RSA_KEY_BITS, 4096);
        assert_eq!(
            "rsa-3072".parse::<Suite>().unwrap(),
            Suite::Rsa { bits: 3072 }
        );
    }
}
