//! The public API under load, measured with `wrk` (2 threads, 64 connections) on this machine:
//!
//! 1. `/beacon/last` from `lavabeacon api`, and the same JSON as a static file from nginx in the
//!    same run (the ratio is the figure that matters on a shared 2-core machine);
//! 2. `/beacon/2.0/pulse/time/{t}` for random past times over a 1,000,000-pulse SQLite store.
//!
//! Reports requests/s, p99 latency, and the server's peak RSS. The store is made once (a chain
//! signed with a software Ed25519 key, 2024-01-01 onwards, one pulse a minute) and kept under
//! `target/bench-data/`.
//!
//! `cargo bench --bench api_load` (needs wrk and nginx: `apt-get install wrk nginx-light`);
//! API_BENCH_SECS (default 15) per run, API_BENCH_PULSES (default 1,000,000).

mod support;

use support::{api, nginx_serving_last, rss, store, wrk, PERIOD, T0};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("API_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let n: u64 = std::env::var("API_BENCH_PULSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = store(n);
    let tmp = tempfile::tempdir().unwrap();

    let database = format!("sqlite:{}", db.display());
    let (_api, base, pid) = api(tmp.path(), &["--database".as_ref(), database.as_ref()]);

    // nginx serving the same body as a static file.
    let (_nginx, port) = nginx_serving_last(tmp.path(), &base);

    let lua = tmp.path().join("random-time.lua");
    std::fs::write(
        &lua,
        format!(
            "math.randomseed(os.time())\nrequest = function()\n  local t = {T0} + math.random(0, {}) * {PERIOD}\n  return wrk.format(\"GET\", \"/beacon/2.0/pulse/time/\" .. t)\nend\n",
            n - 1
        ),
    )
    .unwrap();

    wrk(&format!("{base}/beacon/last"), 2, None); // warm-up
    let last = wrk(&format!("{base}/beacon/last"), secs, None);
    let nginx = wrk(&format!("http://127.0.0.1:{port}/last.json"), secs, None);
    wrk(&format!("{base}/"), 2, Some(&lua)); // warm-up
    let random = wrk(&format!("{base}/"), secs, Some(&lua));
    let (peak, now) = rss(pid);

    println!("wrk -t2 -c64 -d{secs}s, {n}-pulse SQLite store, lavabeacon api with 2 workers, on this machine:");
    println!(
        "  /beacon/last:                 {:>9.0} req/s, p99 {:.2} ms {}",
        last.rps, last.p99_ms, last.errors
    );
    println!(
        "  nginx, same JSON, static:     {:>9.0} req/s, p99 {:.2} ms {}",
        nginx.rps, nginx.p99_ms, nginx.errors
    );
    println!(
        "  ratio to nginx:               {:>9.2}",
        last.rps / nginx.rps
    );
    println!(
        "  /beacon/2.0/pulse/time/{{t}}: {:>9.0} req/s, p99 {:.2} ms (random past times) {}",
        random.rps, random.p99_ms, random.errors
    );
    println!("  server RSS: peak {peak:.1} MiB, now {now:.1} MiB");
}
