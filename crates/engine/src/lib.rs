//! # lavabeacon-engine
//!
//! The beacon engine. So far:
//! - [`source`]: the `EntropySource` trait and the os, hsm and cpu sources; [`frame`]: the
//!   camera frame path and the synthetic camera; [`spool`]: the image spool.
//! - [`health`]: SP 800-90B repetition count and adaptive proportion tests.
//! - [`commitment`]: the next pulse's localRandomValue kept, sealed, across restarts.
//!
//! The combination itself is `lavabeacon_format::manifest::combine`, so auditors recompute it
//! with the same code. The real camera, the schedule and `serve` come next.

#[cfg(feature = "camera")]
pub mod camera;
pub mod commitment;
pub mod engine;
pub mod external;
pub mod frame;
pub mod health;
pub mod source;
pub mod spool;
