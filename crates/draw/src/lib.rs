//! Verifiable draws: lotteries, samples and committees decided by a future beacon pulse.
//!
//! A draw is fixed before its pulse exists: a [`spec::DrawSpec`] names the entries, how many
//! to pick, the method and the pulse's time; its id is SHA-512 of the spec's RFC 8785 canonical
//! JSON. Once the pulse is published, anyone makes the same selection from its outputValue
//! ([`draw::select`]) and so can check the one announced. Two methods: RFC 3797 exactly
//! ([`rfc3797`], MD5, with the pulse as one of its sources), and `lavabeacon-v1` ([`v1`],
//! HMAC-SHA-512 keyed by the outputValue and bound to the draw's id, rejection sampling, stable
//! prefixes; picks, shuffles, weighted picks and integers). The protocol, step by step, with
//! test vectors: docs/draws.md.
//!
//! No server dependencies (like `lavabeacon-format`, on which it builds), so an auditor can
//! build it alone.
//!
//! # Layout
//!
//! - `spec.rs`: the draw spec, its checks, its canonical bytes and id.
//! - `rfc3797.rs`: RFC 3797's key string, its selection, and its seeds files.
//! - `v1.rs`: `lavabeacon-v1`'s stream and its operations.
//! - `draw.rs`: a spec's selection from a pulse's outputValue, with either method.
//! - `receipt.rs`: the registry's receipt: its signed message (domain-separated from pulses)
//!   and its checks (the spec's id, two periods ahead, the signature).

#![warn(missing_docs)]

pub mod draw;
pub mod receipt;
pub mod rfc3797;
pub mod spec;
pub mod v1;

pub use draw::{select, DrawResult, Pick, Selection};
pub use spec::{DrawSpec, SpecError};
