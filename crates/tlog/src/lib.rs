//! The beacon's transparency log, in the open formats of the transparency-log world (C2SP), so
//! existing witnesses and verifiers can take part: an RFC 6962 Merkle tree over every pulse
//! (and draw registration), checkpoints as signed notes, cosignatures from witnesses, and the
//! witness protocol. Everything here is pure computation over bytes: the store keeps the tree's
//! hashes, the HSM signs, the API serves; this crate says what the bytes are and checks them.
//! The protocol, with test vectors: docs/transparency.md.
//!
//! # Layout
//!
//! - `merkle.rs`: RFC 6962 hashing, the complete subtrees a range is made of, inclusion and
//!   consistency proofs (made from stored subtree hashes, and checked as RFC 9162 says).
//! - `tile.rs`: C2SP tlog-tiles paths (`tile/<L>/<N>[.p/<W>]`, `tile/entries/…`) and which
//!   tree hashes a tile holds.
//! - `entry.rs`: the log's entries: a pulse's outputValue, or a draw registration.
//! - `note.rs`: C2SP signed-note: notes, signature lines, verifier keys (`vkey`), key ids.
//! - `checkpoint.rs`: C2SP tlog-checkpoint bodies.
//! - `cosignature.rs`: C2SP tlog-cosignature `cosignature/v1`: the signed message and lines.
//! - `witness.rs`: C2SP tlog-witness: the `add-checkpoint` request and a witness's decision.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod cosignature;
pub mod entry;
pub mod merkle;
pub mod note;
pub mod tile;
pub mod witness;

pub use merkle::{Hash, NodeId, ProofError};

/// An Ed25519 key that signs notes: the log's key (checkpoints) or a witness's (cosignatures),
/// kept in the HSM. Signing may block on the token: call it off the async threads.
pub trait NoteSigner: Send + Sync {
    /// The Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature over `message`.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], String>;
}
