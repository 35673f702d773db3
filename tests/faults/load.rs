//! Idle SSE clients replaying a long history, and a request flood.

use crate::common::faults::*;
use crate::{missed_between, serial};
use std::time::Duration;

#[test]
fn idle_sse_clients_replaying_a_long_history_and_a_request_flood_make_the_engine_miss_no_period() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let url = fx.sqlite_url();
    // A long history (chain 1: 3,000 pulses, ~8 MB of events) that `Last-Event-ID: 1-1` asks
    // for again: far more than the socket buffers of a client that never reads hold, so each
    // such stream blocks on its client. The engine writes chain 2.
    let start = (now_ms() / 1000 - 3_200) * 1000;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args([
            "dev",
            "generate-chain",
            "--pulses",
            "3000",
            "--period",
            "1s",
        ])
        .args(["--start", &start.to_string(), "--database", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::common::output_text(&out));
    let text = std::fs::read_to_string(&fx.config).unwrap();
    assert!(text.contains("chain = 1\n"));
    let config = fx.hsm.join("chain-2.toml");
    std::fs::write(&config, text.replace("chain = 1\n", "chain = 2\n")).unwrap();
    let beacon = fx.spawn("serve", &config, &[], &[], Stdout::Keep);
    let watch = Watch::start(&url, 2);
    watch.wait_count(2, Duration::from_secs(30)).unwrap();

    let mut figures = Vec::new();
    let mut clients = Vec::new();
    let mut windows = Vec::new();
    for idle in [4, 64] {
        while clients.len() < idle {
            clients.push(idle_sse_client(&beacon.base, "1-1"));
        }
        let from = now_ms();
        let f = flood(&beacon.base, 4, 10).join().unwrap();
        let to = now_ms();
        windows.push((idle, from, to));
        let mut lat = f.latencies.clone();
        let (p50, p99, max) = summary(&mut lat);
        figures.push((idle, f.requests, f.failures, p50, p99, max));
    }
    drop(clients);
    watch.wait_more(2);
    // The API answers again at once.
    let (status, ms) = timed_get(
        &format!("{}/beacon/last", beacon.base),
        Duration::from_secs(5),
    );
    assert_eq!(status, 200, "/beacon/last after the clients left ({ms} ms)");
    beacon.kill();
    let seen = watch.stop();

    let links = assert_chain(&url, 2, &seen, &[]);
    let mut line = String::from("faults: sse-flood:");
    let mut problems = Vec::new();
    for ((idle, from, to), (_, requests, failures, p50, p99, max)) in windows.iter().zip(&figures) {
        let m = missed_between(&links, *from, *to);
        // Known limit (issue 11, left open): on the 2-core reference machine, saturated by
        // this test's own flood, an SQLite append occasionally stalls for seconds (seen once
        // in five runs, 4 s), which costs the slots it lasts. Most runs miss none; the bound
        // here catches a regression to the old behaviour (9–10 periods a round, or the engine
        // halting) without failing on that stall.
        if m > MAX_MISSED_UNDER_FLOOD {
            problems.push(format!(
                "{idle} idle SSE clients and the flood: {m} periods missed"
            ));
        }
        line.push_str(&format!(
            " {idle} idle SSE + flood (4 threads, 10 s): missed {m} periods, {requests} requests ({failures} failed) p50 {p50} ms p99 {p99} ms max {max} ms;"
        ));
    }
    println!("{line} missed {} periods in all", missed(&links));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    fx.check_logs();
}

/// Periods the engine may miss in one 10 s round of idle streams and flood (see above).
const MAX_MISSED_UNDER_FLOOD: i64 = 5;
