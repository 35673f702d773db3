//! The fault-injection harness: a beacon process whose stderr and stdout go to files (for the
//! secrets check), signals, a watcher that records when each pulse first becomes readable in
//! the database, raw SSE clients that never read, a bounded request flood, and the checks
//! every fault test ends with (the chain replays, every gap is marked, nothing early or late,
//! no secret in any log line).
//!
//! One file per part: `clients` (signals and raw sockets, SSE clients), `stats`
//! (percentiles), `fixture` (the beacon under test and its processes), `watch` (when each pulse
//! first becomes readable), `chain` (the checks of the stored chain after the fault), `flood`
//! (load). Each part sees the others and the constants below through `use super::*`, so the
//! tests import one module, `common::faults`.
// Every test binary compiles `common`, and most use little or none of this harness.
#![allow(dead_code, unused_imports)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The period every fault test runs with (`--period 1s`).
pub const PERIOD_MS: i64 = 1000;
/// The late-slot tolerance the beacon applies by default: min(period / 10, 5 s).
pub const TOLERANCE_MS: i64 = 100;
/// What the measurement itself may add on top of the tolerance: the append and its commit
/// under load on a shared machine, and our clock read after the query. The watcher's bounds are
/// strict (a pulse is late only if a query that started later than `timestamp + tolerance +
/// slack` did not see it), so the slack only covers the beacon's own work after its check.
pub const SLACK_MS: i64 = 100;
/// How soon after a fault ends the beacon must publish again: two periods, plus the slack.
pub const RECOVERY_MS: i64 = 2 * PERIOD_MS + SLACK_MS;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

mod chain;
mod clients;
mod fixture;
mod flood;
mod stats;
mod watch;

pub use chain::*;
pub use clients::*;
pub use fixture::*;
pub use flood::*;
pub use stats::*;
pub use watch::*;
