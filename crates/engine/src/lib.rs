//! # lavabeacon-engine
//!
//! The beacon engine. So far: [`commitment`], which keeps the next pulse's localRandomValue
//! across restarts without making it readable from the database. The entropy sources, their
//! health tests, the combination and the schedule come next.

pub mod commitment;
