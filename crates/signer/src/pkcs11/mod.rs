//! HSM keys over PKCS#11 (crate `cryptoki`), tested against SoftHSM2.
//!
//! Facts this code is built around (Debian's SoftHSM 2.6.1): the module is initialised once
//! per process with OS locking (concurrent `C_Initialize` can crash SoftHSM); a `Session` is
//! `Send` but not `Sync`, so signing takes a session from a small pool; Ed25519 keys need
//! `CKA_EC_PARAMS` for Ed25519 exactly (curve25519 parameters make keys that cannot sign);
//! `CKA_EC_POINT` comes back as `04 20` + 32 bytes; a wrong token label is not a PKCS#11
//! error, so this code says it.
//!
//! ## Recovery
//! An HSM that goes away and comes back must not need a restart. SoftHSM reads its token
//! directory only at `C_Initialize`: once its token files vanish, every call fails with
//! `CKR_GENERAL_ERROR` until the module is finalised and initialised again. So when an
//! operation fails with a code that says the device, the token, the session or the login is
//! gone ([`lost`]), the signer recovers and retries: a lost login or session is regained in
//! place (log in again, new sessions); a lost device or token, or a second failure, finalises
//! the module and initialises it again (at most once per [`REINIT_INTERVAL`], so a missing
//! token fails fast), finds the token again by its label (its slot may change), the key
//! handles by their labels (handles change), and checks it is the same key.
//!
//! The module is shared by every key of the process. Its state sits behind a read-write lock:
//! every PKCS#11 call is made under the read lock, re-initialisation takes the write lock, so
//! it never finalises the module under a running operation. Every session, slot and handle is
//! tagged with the module generation it was obtained under and never used under another:
//! a handle from an earlier instance may name someone else's session in the new one. Lock
//! order: module lock, then a key's state lock; the module lock is never taken twice by one
//! thread.
//!
//! ## Layout
//! - `config`: [`Pkcs11Config`], how to reach a key in a token.
//! - `module`: the PKCS#11 module, loaded once per process, and its re-initialisation.
//! - `recovery`: what a failed call says is gone ([`lost`], [`Loss`]) and the retry of the
//!   paths that open, list or make keys.
//! - `token`: finding a token by label, logging in, sessions; [`init_token`], [`list_keys`],
//!   [`retire_key`] (a key made unable to sign, or destroyed).
//! - `objects`: the key objects in a token: found by label, read, generated.
//! - `key`: [`Pkcs11Key`], its session pool and the call path that recovers.
//! - `sign`: what a key does (sign, random bytes, attributes, certificates) and
//!   [`Pkcs11Signer`], the production [`Signer`](crate::Signer).

mod config;
mod key;
mod module;
mod objects;
mod recovery;
mod sign;
mod token;

pub use config::Pkcs11Config;
pub use key::Pkcs11Key;
pub use module::REINIT_INTERVAL;
pub use objects::PublicKeyBytes;
pub use recovery::{lost, Loss};
pub use sign::{KeyAttributes, Pkcs11Signer};
pub use token::{init_token, list_keys, retire_key, KeyInfo, Retire};
