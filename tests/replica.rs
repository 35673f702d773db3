//! Read-only API nodes on a PostgreSQL streaming replica: an engine (`serve`) on a primary
//! cluster of the test's own, `lavabeacon api` on a hot standby made from it with
//! `pg_basebackup -R`. The API node starts without running migrations (the standby refuses
//! every write) and serves each new pulse within one period of its being readable on the
//! primary. And `lavabeacon api` on a database without the schema refuses to start, saying so,
//! and writes nothing.

mod common;

use common::faults::*;
use common::pg::PgCluster;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A configuration for `lavabeacon api`, which has no `--period`: the dev token's with a 1 s
/// period.
fn api_config(fx: &Fixture) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&fx.config).unwrap();
    assert!(text.contains("period_ms = 60000"));
    let path = fx.hsm.join("api-1s.toml");
    std::fs::write(&path, text.replace("period_ms = 60000", "period_ms = 1000")).unwrap();
    path
}

#[test]
fn an_api_node_on_a_streaming_replica_starts_and_serves_every_new_pulse_within_a_period() {
    let _serial = serial();
    let Some(fx) = Fixture::new() else { return };
    let Some(primary) = PgCluster::start_new() else {
        return;
    };
    primary.create_database("beacon", None);
    let replica = primary.replica();
    let engine = fx.start("serve", &["--database", &primary.url("beacon")], &[]);
    let watch = Watch::start(&primary.url("beacon"), 1);
    watch.wait_count(2, Duration::from_secs(30)).unwrap();

    let api = fx.spawn(
        "api",
        &api_config(&fx),
        &["--database", &replica.url("beacon")],
        &[],
        Stdout::Keep,
    );
    let events = recording_sse_client(&api.base);
    // Give the stream a moment to be subscribed, then follow six new pulses.
    std::thread::sleep(Duration::from_millis(300));
    let from = watch.head();
    watch.wait_more(6);
    std::thread::sleep(Duration::from_millis(PERIOD_MS as u64 + 200));
    let seen = watch.seen();
    let got = events.lock().unwrap().clone();
    let mut problems = Vec::new();
    let mut lags = Vec::new();
    for s in seen.iter().filter(|s| s.index > from) {
        match got.iter().find(|(c, i, _)| *c == 1 && *i == s.index) {
            None => problems.push(format!(
                "pulse #{}: never served by the API node's stream",
                s.index
            )),
            Some((_, _, at)) => {
                let lag = at - s.by_ms;
                lags.push(lag);
                if lag > PERIOD_MS {
                    problems.push(format!(
                        "pulse #{}: on the replica's API node {lag} ms after it was readable on the primary (more than a period)",
                        s.index
                    ));
                }
            }
        }
    }
    // And its newest pulse, asked directly, is the primary's.
    let (status, _, body) = common::get(&format!("{}/beacon/last", api.base), &[]);
    assert_eq!(status, 200, "{body}");
    let last: serde_json::Value = serde_json::from_str(&body).unwrap();
    let head = watch.head();
    let served = last["pulse"]["pulseIndex"].as_u64().unwrap();
    if served + 1 < head {
        problems.push(format!(
            "/beacon/last on the API node is #{served}, the primary has #{head}"
        ));
    }
    api.kill();
    engine.kill();
    let seen = watch.stop();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_chain(&primary.url("beacon"), 1, &seen, &[]);
    let mut l = lags.clone();
    let (p50, _, max) = summary(&mut l);
    println!(
        "faults: replica: API node on a hot standby served {} new pulses, lag behind the primary p50 {p50} ms, max {max} ms",
        lags.len()
    );
    fx.check_logs();
}

#[test]
fn the_api_on_a_database_without_the_schema_refuses_to_start_and_says_why() {
    let _serial = serial();
    let Some(pg) = PgCluster::start_new() else {
        return;
    };
    pg.create_database("empty", None);
    let dir = tempfile::tempdir().unwrap();
    // The API needs no HSM: the [beacon] and [database] sections are enough.
    let config = dir.path().join("api.toml");
    std::fs::write(&config, "[beacon]\nperiod_ms = 1000\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
        .args(["api", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(["--database", &pg.url("empty")])
        .env_remove("LAVABEACON_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let tables = pg.psql(
        "empty",
        "select count(*) from information_schema.tables where table_schema = 'public'",
    );
    assert!(
        status.is_some_and(|s| !s.success()),
        "`lavabeacon api` on a database without the schema must exit with an error, not serve (status {status:?}); stderr:\n{err}"
    );
    assert!(
        err.to_lowercase().contains("schema"),
        "the message must say the schema is missing (older than expected): {err}"
    );
    assert_eq!(
        tables, "0",
        "`lavabeacon api` must never create tables (no migrations)"
    );
    println!(
        "faults: api-no-schema: refused in {} ms: {}",
        started.elapsed().as_millis(),
        err.trim()
    );
}
