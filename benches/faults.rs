//! The engine's slot punctuality under a 2,000-connection flood: `lavabeacon serve` (SoftHSM2
//! dev token, SQLite, the default sources, period 1 s) first left alone, then flooded by
//! `wrk -t2 -c2000` on `/health` and `/beacon/last` (in turn), for the same time each, in one
//! run. For each pulse, publication lateness is when it first became readable in the database
//! (polled every 5 ms on connections of our own, apart from the API's) minus its timestamp; a
//! slot without a pulse is a missed period.
//!
//! `cargo bench --bench faults` (FAULTS_BENCH_SECS=30 by default); needs SoftHSM2 and wrk.

#[path = "../tests/common/mod.rs"]
mod common;

use common::faults::*;
use std::process::Command;
use std::time::Duration;

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
}

/// Raises the open-file limit to its hard limit (2,000 connections each side need it); the
/// beacon and wrk, started from here, inherit it.
fn raise_nofile() -> u64 {
    const RLIMIT_NOFILE: i32 = 7;
    let mut r = Rlimit { cur: 0, max: 0 };
    // SAFETY: plain calls with a valid struct.
    unsafe {
        assert_eq!(getrlimit(RLIMIT_NOFILE, &mut r), 0);
        r.cur = r.max;
        assert_eq!(setrlimit(RLIMIT_NOFILE, &r), 0, "setrlimit(RLIMIT_NOFILE)");
    }
    r.cur
}

/// Lateness (ms, the midpoint of the watcher's bounds) of the pulses timed in `(from, to]`,
/// and the slots in it without a pulse.
fn window(seen: &[Seen], from: i64, to: i64) -> (Vec<i64>, i64) {
    let mut late = Vec::new();
    let mut have = 0;
    for s in seen.iter().filter(|s| s.time_ms > from && s.time_ms <= to) {
        have += 1;
        if let Some(a) = s.after_ms {
            late.push(((a + s.by_ms) / 2 - s.time_ms).max(0));
        }
    }
    let slots = to.div_euclid(PERIOD_MS) - from.div_euclid(PERIOD_MS);
    (late, slots - have)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; this one runs on purpose only.
    }
    let secs: u64 = std::env::var("FAULTS_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("faults bench: wrk is not installed (apt-get install wrk)");
        std::process::exit(2);
    }
    let nofile = raise_nofile();
    let Some(fx) = Fixture::new() else {
        std::process::exit(2)
    };
    let url = fx.sqlite_url();
    let beacon = fx.start("serve", &[], &[]);
    let watch = Watch::start_every(&url, 1, Duration::from_millis(5));
    watch.wait_count(3, Duration::from_secs(30)).unwrap();

    // Alone.
    let quiet_from = now_ms();
    std::thread::sleep(Duration::from_secs(secs));
    let quiet_to = now_ms();

    // Flooded.
    let script = fx.dir.path().join("paths.lua");
    std::fs::write(
        &script,
        "local n = 0\nrequest = function()\n  n = n + 1\n  if n % 2 == 0 then return wrk.format(\"GET\", \"/health\") end\n  return wrk.format(\"GET\", \"/beacon/last\")\nend\n",
    )
    .unwrap();
    let flood_from = now_ms();
    let wrk = Command::new("wrk")
        .args([
            "-t2",
            "-c2000",
            &format!("-d{secs}s"),
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(&script)
        .arg(&beacon.base)
        .output()
        .unwrap();
    let flood_to = now_ms();
    watch.wait_more(2);
    let alive = {
        let mut b = beacon;
        let a = b.alive();
        b.kill();
        a
    };
    let seen = watch.stop();
    let wrk_text = String::from_utf8_lossy(&wrk.stdout).to_string();

    let (mut quiet, quiet_missed) = window(&seen, quiet_from, quiet_to);
    // The slot being prepared when the flood starts counts to it.
    let (mut flooded, flood_missed) = window(&seen, flood_from, flood_to);
    let (qp50, qp99, qmax) = summary(&mut quiet);
    let (fp50, fp99, fmax) = summary(&mut flooded);
    println!("faults bench: serve, period 1 s, {secs} s each, RLIMIT_NOFILE {nofile}");
    println!("                        lateness p50   p99    max   missed periods  pulses timed");
    println!(
        "  without flood        {qp50:>8} ms {qp99:>4} ms {qmax:>4} ms  {quiet_missed:>14}  {:>12}",
        quiet.len()
    );
    println!(
        "  wrk -t2 -c2000       {fp50:>8} ms {fp99:>4} ms {fmax:>4} ms  {flood_missed:>14}  {:>12}",
        flooded.len()
    );
    for line in wrk_text.lines().filter(|l| {
        let l = l.trim_start();
        l.starts_with("Requests/sec")
            || l.starts_with("Socket errors")
            || l.starts_with("Non-2xx")
            || l.contains("requests in")
            || l.starts_with("Latency")
    }) {
        println!("  wrk: {}", line.trim());
    }
    println!("  beacon alive after the flood: {alive}");
    fx.check_logs();
}
