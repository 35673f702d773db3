//! Fault injection on a serving beacon (`lavabeacon serve`, a SoftHSM2 dev token, period 1 s):
//! PostgreSQL killed and restarted, a full disk, the HSM token gone and back, SSE clients that
//! never read plus a request flood, SIGKILL, SIGSTOP/SIGCONT, a closed stdout, two engines on
//! one SQLite file through a symlink, SIGTERM with open streams.
//!
//! After each fault: the beacon publishes again within two periods of the fault ending without
//! a restart, the whole chain passes `lavabeacon replay`, every gap is marked with statusCode 2
//! on the pulse after it, no statusCode 3 unless the sealed value was really lost, no pulse
//! readable before its timestamp or later than the tolerance (100 ms for 1 s) plus a 100 ms
//! measurement slack, no fork, and no log line holds the HSM PIN or the database password.
//! Each test prints a line of figures (`cargo test --test faults -- --nocapture`); see
//! docs/faults.md.
//!
//! One test binary, one module per kind of fault: `database` (PostgreSQL stopped), `disk` (a
//! full disk under SQLite), `hsm` (the token taken away), `load` (idle streams and a flood),
//! `process` (signals, a closed stdout, two engines on one file). The harness they share is in
//! `tests/common/faults/`; the helpers below are the few only these tests use.

#[path = "../common/mod.rs"]
mod common;

mod database;
mod disk;
mod hsm;
mod load;
mod process;

use common::faults::*;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The faults are timed against the wall clock on a shared machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub(crate) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Slots whose timestamp lies in `(from_ms, to_ms]` and that have no pulse.
pub(crate) fn missed_between(links: &[Link], from_ms: i64, to_ms: i64) -> i64 {
    let first = from_ms.div_euclid(PERIOD_MS) + 1;
    let last = to_ms.div_euclid(PERIOD_MS);
    let slots = (last - first + 1).max(0);
    let have = links
        .iter()
        .filter(|l| l.time_ms > from_ms && l.time_ms <= to_ms)
        .count() as i64;
    slots - have
}

pub(crate) fn fmt_lateness(mut v: Vec<i64>) -> String {
    let n = v.len();
    let (p50, p99, max) = summary(&mut v);
    format!("publication lateness p50 {p50} ms, p99 {p99} ms, max {max} ms over {n} timed pulses")
}

/// An outage that has ended: its name, when it began and ended, and what the figures line says
/// of it.
pub(crate) struct Outage<'a> {
    pub name: &'a str,
    pub from_ms: i64,
    pub to_ms: i64,
    /// How the outage is described when no slot was missed, e.g. "the disk was full for 5 s".
    pub what: String,
    /// The words after the count of slots missed during it, e.g. "while full".
    pub during: &'a str,
    /// The words after the recovery time, e.g. "after space returned".
    pub after: &'a str,
}

/// What every outage test checks once the beacon is stopped: the whole chain (`assert_chain`),
/// at least one slot missed during the outage (else the fault did not happen), every pulse
/// punctual; then it prints the test's line of figures (with `extra` before the lateness) and
/// checks the logs for secrets.
pub(crate) fn check_outage(
    fx: &Fixture,
    url: &str,
    seen: &[Seen],
    outage: &Outage,
    (first, took): (Seen, i64),
    extra: &str,
) {
    let links = assert_chain(url, 1, seen, &[]);
    let during = missed_between(&links, outage.from_ms, outage.to_ms);
    assert!(
        during >= 1,
        "{} and no slot was missed: the fault did not happen",
        outage.what
    );
    let lateness = assert_punctual(seen, outage.name);
    println!(
        "faults: {}: missed {} periods ({during} {}), recovered {:.2} s {} (pulse #{} status {}){extra}; {}",
        outage.name,
        missed(&links),
        outage.during,
        took as f64 / 1000.0,
        outage.after,
        first.index,
        first.status,
        fmt_lateness(lateness)
    );
    fx.check_logs();
}
