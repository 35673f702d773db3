//! # lavabeacon-format
//!
//! NIST Randomness Beacon 2.0 pulses, byte for byte: the pulse type, the signed message M, the
//! hashes derived from it, signature checks for cipher suites 0 (RSA PKCS#1 v1.5 / SHA-512),
//! 1 (CLCERT) and 2 (Ed25519), the chain rules and skip lists, a chain builder, and an offline
//! verifier. It has no async runtime, database, HTTP or HSM dependency, so an auditor can read
//! and build it alone.
//!
//! # Layout
//! - [`pulse`]: the [`Pulse`] type; [`json`]: NIST's JSON forms; [`input`]: whole files (a
//!   folder: the form is decided once, then one splitter per form gives the records).
//! - [`message`]: the one function that makes M, and outputValue, precommitment, certificateId.
//! - [`cert`]: certificates; [`authority`]: the operator's CAs a certificate must chain to
//!   (`verify --ca`); [`suite`]: signatures, the [`suite::PulseSigner`] trait and
//!   [`suite::RSA_KEY_BITS`].
//! - [`time`]: timestamps, calendar periods, slots ([`time::Slots`]) and times typed by people;
//!   [`chain`]: the rules between pulses, including the one append rule the store enforces.
//! - [`test_beacon`]: what makes a beacon a test beacon, and the warning it gives.
//! - [`variant`]: INMETRO and CLCERT; [`builder`]: making the next pulse.
//! - [`verify`]: checking many pulses in parallel (a folder: the rules of one pulse, the
//!   Ed25519 batches, the report and the chain rules' modes); [`report`]: what was found.
//! - [`hash`]: [`Hash512`]; [`manifest`]: the source manifest, and how the sources combine
//!   into localRandomValue.
//!
//! # Example
//! ```
//! use lavabeacon_format::{json::parse_pulse, message::{signed_message, output_value}};
//! let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"),
//!     "/../../tests/vectors/nist-2018-chain1/pulse-54609.json")).unwrap();
//! let pulse = parse_pulse(&text).unwrap();
//! let m = signed_message(&pulse);
//! assert_eq!(m.len(), 748 + pulse.uri.len() + pulse.version.len());
//! assert_eq!(output_value(&m, &pulse.signature_value), pulse.output_value);
//! ```
#![warn(missing_docs)]

pub mod authority;
pub mod builder;
pub mod cert;
pub mod chain;
pub mod hash;
pub mod input;
pub mod json;
pub mod manifest;
pub mod message;
pub mod pulse;
pub mod report;
pub mod suite;
pub mod test_beacon;
pub mod time;
pub mod variant;
pub mod verify;

pub use hash::Hash512;
pub use pulse::Pulse;
pub use report::{Check, Problem, Report};
pub use variant::Variant;
