//! Test doubles for other crates' tests (cargo feature `fake`): [`FakeStore`], a whole store in
//! memory that keeps the same append rule as the real ones (`memory.rs`), and [`FaultyStore`]
//! (`faulty.rs`), which wraps any store (a real SQLite one, or the fake) and injects the faults
//! a database has: calls that hang and then fail, chosen calls failing a chosen number of
//! times (an append even after it committed), a stale read of a chain's head; it also counts
//! the range reads open.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use lavabeacon_store::fake::{Call, FakeStore, FaultyStore};
//! use lavabeacon_store::{Lookup, Store, StoreError};
//! use std::sync::Arc;
//!
//! let store = FaultyStore::new(Arc::new(FakeStore::new()));
//! store.fail_next(Call::Find(Lookup::Last), 1, StoreError::unavailable("memory", "injected"));
//! assert!(store.find(Lookup::Last).await.is_err());
//! assert_eq!(store.find(Lookup::Last).await.unwrap(), None);
//! # });
//! ```
//!
//! Not for production: the fake keeps everything in one mutex and loses it on drop.

mod faulty;
mod memory;

pub use faulty::{Call, FaultyStore};
pub use memory::FakeStore;
