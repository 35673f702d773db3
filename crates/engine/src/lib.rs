//! # lavabeacon-engine
//!
//! The beacon engine: entropy sources in, one signed pulse per period out to the store.
//!
//! ## Layout
//! - [`source`]: the `EntropySource` trait and the os, hsm and cpu sources; [`frame`]: the
//!   camera frame path and the synthetic camera; [`spool`]: the image spool; `camera` (feature
//!   `camera`): the V4L2 camera; [`external`]: another beacon's pulse.
//! - [`health`]: SP 800-90B repetition count and adaptive proportion tests.
//! - [`commitment`]: the next pulse's localRandomValue kept, sealed, across restarts.
//! - [`engine`]: one pulse — gather, commit, sign, publish at its timestamp or skip the slot if
//!   late; its state is a cache of the store, re-read after any failure.
//! - [`run`]: the loop around it — leader lock, retries with backoff, leadership regained
//!   after a database restart, stop on request; [`clock`]: the wall clock and a test clock.
//!
//! The combination itself is `lavabeacon_format::manifest::combine`, so auditors recompute it
//! with the same code.

#[cfg(feature = "camera")]
pub mod camera;
pub mod clock;
pub mod commitment;
pub mod engine;
pub mod external;
pub mod frame;
pub mod health;
pub mod run;
pub mod source;
pub mod spool;
