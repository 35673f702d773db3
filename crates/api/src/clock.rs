//! The wall clock, and the one rule that depends on it: a pulse is public once its time has
//! come. This is the only place the API reads the clock, so a test or a later injected clock
//! has one function to replace.

use lavabeacon_format::Pulse;

/// The wall clock, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The pulse, if it is public: its time has come. A pulse whose time has not come is never
/// served, whoever wrote it to the store.
pub(crate) fn public(pulse: Option<Pulse>) -> Option<Pulse> {
    pulse.filter(|p| p.time_ms().is_ok_and(|t| t <= now_ms()))
}
