//! The one place this program writes its own environment: SoftHSM2 reads the path of its
//! configuration from `SOFTHSM2_CONF` at `C_Initialize` and has no other way to be given it,
//! and a development token (`softhsm-setup/dev-token.sh`) names its own in
//! `signer.softhsm_conf`.
//!
//! `std::env::set_var` is not thread-safe on Unix (another thread reading the environment at
//! the same time is undefined behaviour; it is `unsafe` from Rust 2024 on), so
//! [`point_at_configuration`] is called right before the module is first loaded and while the
//! process has a single thread: by `engine`/`serve` before the engine's thread starts, and by
//! `keys`/`cert` before anything else.

use crate::config::SignerConfig;

/// Points SoftHSM2 at the configuration `signer.softhsm_conf` names, if it names one. Call it
/// before the PKCS#11 module is first loaded in this process, while only this thread runs.
pub fn point_at_configuration(signer: &SignerConfig) {
    if let Some(conf) = &signer.softhsm_conf {
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
}
