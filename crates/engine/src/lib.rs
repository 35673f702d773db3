//! # lavabeacon-engine
//!
//! The beacon engine: entropy sources in, one signed pulse per period out to the store.
//!
//! # Layout
//! In the order the data flows, from the sources to the loop that publishes:
//! - [`source`]: the `EntropySource` trait and one file per source — [`source::os`],
//!   [`source::hsm`], [`source::cpu`], the cameras ([`source::frame`], the frame path they share;
//!   `source::camera`, the V4L2 camera, feature `camera`; [`source::synthetic`], frames made up
//!   in memory), [`source::spool`] (an image spool) — and [`source::external`], another beacon's
//!   pulse for the `external` field.
//! - [`health`]: the SP 800-90B start-up, repetition count and adaptive proportion tests every
//!   source runs on its raw samples.
//! - `combine` (crate-internal): one pulse's sampling — each source cut off at the timeout,
//!   the healthy ones combined with `lavabeacon_format::manifest::combine` (so auditors
//!   recompute it with the same code) into the value and its manifest.
//! - [`commitment`]: the value of the pulse after next, sealed by the signer and kept in the
//!   store across restarts.
//! - [`keys`]: which key signs which slot (the key schedule in the store, keys opened by label
//!   through the binary's `KeyRing`), and every key opened for unsealing after a switch.
//! - [`engine`]: one pulse, [`engine::Engine::step`] — gather, seal, sign, publish at its
//!   timestamp or skip the slot if late; its state is a cache of the store, re-read after any
//!   failure. [`error`]: why an attempt failed, as the loop and the public see it.
//! - [`log`]: the transparency log's engine side — a checkpoint signed after each pulse (the
//!   append already wrote its entry), and the task that takes checkpoints to the witnesses.
//! - [`run`]: the loop around it — leader lock, retries with backoff, leadership regained after
//!   a database restart, each pulse and each skipped slot told to an `Observer` (the API), stop
//!   on request.
//! - [`clock`]: the only reader of the wall clock in the engine, and a manual clock for tests;
//!   every time the engine uses comes from the `Clock` it is given.

pub mod clock;
pub(crate) mod combine;
pub mod commitment;
pub mod engine;
pub mod error;
pub mod health;
pub mod keys;
pub mod log;
pub mod run;
pub mod source;
