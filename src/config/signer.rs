//! `[signer]`: which key signs the pulses — a key in a PKCS#11 token, or the development
//! software key — with its suite, token, PIN source and certificate.
//!
//! Reading this section has no side effect: the SoftHSM2 configuration it may name is handed
//! to the module by `crate::softhsm`, right before the module loads.

use lavabeacon_signer::pkcs11::Pkcs11Config;
use lavabeacon_signer::{PinSource, Suite};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignerConfig {
    pub kind: SignerKind,
    pub suite: SignatureSuite,
    pub module: PathBuf,
    pub token_label: String,
    pub key_label: String,
    /// A file holding the user PIN (mode 0600).
    pub pin_file: Option<PathBuf>,
    /// Or an environment variable holding it.
    pub pin_env: Option<String>,
    /// The key's certificate (PEM).
    pub certificate: PathBuf,
    /// For SoftHSM2 dev tokens: the SoftHSM configuration to use (SOFTHSM2_CONF for the
    /// module, see `crate::softhsm`).
    pub softhsm_conf: Option<PathBuf>,
    /// Warn (log, `/health`) this many days before the signing certificate expires.
    pub expiry_warning_days: u32,
}

impl Default for SignerConfig {
    fn default() -> Self {
        SignerConfig {
            kind: SignerKind::Pkcs11,
            suite: SignatureSuite::Ed25519,
            module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
            token_label: "lavabeacon".into(),
            key_label: "pulse-key".into(),
            pin_file: None,
            pin_env: Some("LAVABEACON_HSM_PIN".into()),
            certificate: PathBuf::from("./data/pulse-key.pem"),
            softhsm_conf: None,
            expiry_warning_days: 30,
        }
    }
}

/// Where the signing key is.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignerKind {
    /// In an HSM, through its PKCS#11 module.
    Pkcs11,
    /// A key file under the data directory: development only (a TEST beacon).
    Software,
}

/// The signature suite of the PKCS#11 key, spelled as in `softhsm-setup/dev-token.sh --suite`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum SignatureSuite {
    /// Ed25519, cipherSuite 2.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// RSA-3072, cipherSuite 0.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA-4096, cipherSuite 0; `rsa` means this one, as the signer's own parser has it.
    #[serde(rename = "rsa-4096", alias = "rsa")]
    Rsa4096,
}

impl From<SignatureSuite> for Suite {
    fn from(s: SignatureSuite) -> Suite {
        match s {
            SignatureSuite::Ed25519 => Suite::Ed25519,
            SignatureSuite::Rsa3072 => Suite::Rsa { bits: 3072 },
            SignatureSuite::Rsa4096 => Suite::Rsa { bits: 4096 },
        }
    }
}

impl SignerConfig {
    /// The PKCS#11 key this section names.
    pub fn pkcs11(&self) -> Result<Pkcs11Config, String> {
        let pin = match (&self.pin_file, &self.pin_env) {
            (Some(f), _) => PinSource::File(f.clone()),
            (None, Some(v)) => PinSource::Env(v.clone()),
            (None, None) => return Err(
                "signer: set pin_file or pin_env (the PIN itself never goes in the configuration)"
                    .into(),
            ),
        };
        Ok(Pkcs11Config {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin,
            key_label: self.key_label.clone(),
            suite: self.suite.into(),
        })
    }
}

/// Whether `name` can be an environment variable's name (letters, digits and `_`, not
/// starting with a digit). A PIN put in `pin_env` by mistake is all digits, or at least not
/// a name anyone gives a variable.
pub(super) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
