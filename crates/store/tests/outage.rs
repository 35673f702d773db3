//! A PostgreSQL server that stops hard (`pg_ctl stop -m immediate`) and comes back, on a cluster
//! of the test's own: API reads fail fast while it is down, the leader learns that its lock
//! died with the server and can no longer write, a standby waiting with `acquire_leadership(None)`
//! waits through the outage and takes the lock once the server is back, and every pool
//! reconnects by itself without one failed query. Warnings name the database, never its
//! password.

mod common;

use common::chain::{build_chain, ed25519_identity};
use common::cluster::Cluster;
use lavabeacon_store::{open, open_with, Role, StoreError};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const START: &str = "2026-06-01T00:00:00.000Z";
/// Trust authentication ignores it; it is here to be looked for in every message and log line.
const PASSWORD: &str = "Pw-never-shown-4711";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_survived_by_every_role_and_the_leadership() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let admin = cluster.url("postgres", None);
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE lb")
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);
    let url = cluster.url("lb", Some(PASSWORD));
    let mut messages: Vec<String> = Vec::new();

    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(10, START, 1_000, &signer);
    let engine = open(&url).await.unwrap();
    let api = open_with(&url, Role::Api).await.unwrap();
    let leader = engine
        .acquire_leadership(Some(Duration::from_secs(2)))
        .await
        .unwrap();
    engine
        .append(&pulses[0], None, Some(&leader))
        .await
        .unwrap();
    assert_eq!(api.last().await.unwrap().as_ref(), Some(&pulses[0]));

    // A standby engine waits for the lock, forever.
    let standby = open(&url).await.unwrap();
    let waiting = {
        let standby = standby.clone();
        tokio::spawn(async move {
            let l = standby.acquire_leadership(None).await;
            (l, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the standby took a held lock");

    cluster.stop_immediate();
    let down = Instant::now();

    // While it is down: API reads fail fast with "database unavailable".
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        let e = api.last().await.unwrap_err();
        slowest = slowest.max(t.elapsed());
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        assert_eq!(e.category(), "database unavailable");
        messages.push(e.to_string());
        let e = api.counts().await.unwrap_err();
        messages.push(e.to_string());
    }
    assert!(
        slowest < Duration::from_millis(1_500),
        "an API read took {slowest:?} to fail while the database was down"
    );
    // The leader's lock died with its session: it can no longer write, and says so.
    let e = engine
        .append(&pulses[1], None, Some(&leader))
        .await
        .unwrap_err();
    messages.push(e.to_string());
    let t = Instant::now();
    let e = leader.check().await.unwrap_err();
    assert!(matches!(e, StoreError::LostLeadership { .. }), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "check took {:?}",
        t.elapsed()
    );
    messages.push(e.to_string());

    // The standby keeps waiting through the outage (long enough for a throttled warning).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !waiting.is_finished(),
        "the standby gave up during the outage"
    );
    cluster.start_again();
    let up = Instant::now();
    let down_for = up.duration_since(down);
    eprintln!("server down for {down_for:?}");

    // The old leadership stays lost, and an append with it stays refused.
    let e = leader.check().await.unwrap_err();
    assert!(matches!(e, StoreError::LostLeadership { .. }), "{e}");
    let e = engine
        .append(&pulses[1], None, Some(&leader))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LostLeadership { .. }), "{e}");
    drop(leader);

    // The standby gets the lock soon after the server is back, and writes at once.
    let (l2, got) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the standby never took the lock after the restart")
        .unwrap();
    let l2 = l2.unwrap();
    let took = got.duration_since(up);
    assert!(
        took < Duration::from_secs(4),
        "took the lock {took:?} after the restart"
    );
    standby.append(&pulses[1], None, Some(&l2)).await.unwrap();
    // Every pool replaced its dead connections without failing a query.
    assert_eq!(api.last().await.unwrap().as_ref(), Some(&pulses[1]));
    assert_eq!(engine.last().await.unwrap().as_ref(), Some(&pulses[1]));
    // The old engine is now the standby; once the lock is free it acquires it again afresh.
    let busy = engine
        .acquire_leadership(Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(busy, StoreError::LeaderBusy { .. }), "{busy}");
    drop(l2);
    let l3 = engine
        .acquire_leadership(Some(Duration::from_secs(2)))
        .await
        .unwrap();
    l3.check().await.unwrap();
    engine.append(&pulses[2], None, Some(&l3)).await.unwrap();
    assert_eq!(api.counts().await.unwrap().pulses, 3);

    let warnings = String::from_utf8_lossy(&logs.0.lock().unwrap())
        .matches("waiting for the leader lock")
        .count();
    // Throttled: one warning per 10 s of outage, not one per retry (about 10 retries).
    assert!(
        warnings >= 1 && warnings as u64 <= down_for.as_secs() / 10 + 1,
        "{warnings} warnings in {down_for:?}"
    );

    // A standby with a deadline during an outage gives up at its deadline, unavailable.
    cluster.stop_immediate();
    let t = Instant::now();
    let e = standby
        .acquire_leadership(Some(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    messages.push(e.to_string());

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("waiting for the leader lock"),
        "no warning while waiting through the outage:\n{logged}"
    );
    assert!(logged.contains("postgres:***@127.0.0.1"), "{logged}");
    for m in messages.iter().chain(std::iter::once(&logged)) {
        assert!(!m.contains(PASSWORD), "the password leaked: {m}");
    }
    eprintln!(
        "API reads failed within {slowest:?}; the standby took over {took:?} after the restart"
    );
}
