//! How to reach a key in a token: the configuration every PKCS#11 path starts from.

use crate::{PinSource, Suite};
use std::path::PathBuf;

/// How to reach a key in a token.
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// Where the user PIN comes from.
    pub pin: PinSource,
    /// The signing key pair's label; the sealing key is labelled `<key_label>-seal`.
    pub key_label: String,
    /// The suite the key must serve.
    pub suite: Suite,
}
