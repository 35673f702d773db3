//! What a caller may ask the store for: one pulse ([`Lookup`], answered by [`Store::find`]) or
//! a run of them ([`Range`], streamed by [`Store::range`]). Every pulse query of the engine,
//! the API and the auditors is one of these, so a backend (or a fake) answers exactly these.
//!
//! [`Store::find`]: crate::Store::find
//! [`Store::range`]: crate::Store::range

use lavabeacon_format::time::Period;

/// One pulse, by time or by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The newest pulse of any chain.
    Last,
    /// The newest pulse of a chain.
    LastInChain(u64),
    /// The first pulse of a chain.
    FirstInChain(u64),
    /// A pulse by chain and index.
    ByIndex {
        /// chainIndex.
        chain: u64,
        /// pulseIndex.
        index: u64,
    },
    /// The pulse at this time (Unix ms), else the first after it.
    AtOrAfter(i64),
    /// The newest pulse strictly before this time.
    Before(i64),
    /// The oldest pulse strictly after this time.
    After(i64),
    /// The first pulse of `chain` in the UTC `period` that contains `time_ms`, up to `time_ms`
    /// (what a skip list names).
    FirstInPeriod {
        /// chainIndex.
        chain: u64,
        /// Hour, day, month or year.
        period: Period,
        /// A time inside the period, Unix ms.
        time_ms: i64,
    },
}

/// A run of pulses, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Pulses of any chain with `from_ms <= time < to_ms`.
    ByTime {
        /// Inclusive, Unix ms.
        from_ms: i64,
        /// Exclusive, Unix ms.
        to_ms: i64,
    },
    /// Pulses of `chain` with `from <= index <= to`.
    ByIndex {
        /// chainIndex.
        chain: u64,
        /// Inclusive.
        from: u64,
        /// Inclusive.
        to: u64,
    },
}
