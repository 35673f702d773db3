//! SQLite under ordinary faults: one leader per database file whatever path leads to it, and a
//! full database that refuses an append cleanly and takes it once there is space again.

mod common;

use common::chain::{build_chain, ed25519_identity};
use lavabeacon_store::{SqliteStore, Store, StoreError};
use std::time::Duration;

const START: &str = "2026-05-01T00:00:00.000Z";

#[tokio::test]
async fn two_paths_to_one_database_through_a_symlink_give_one_leader() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let first = SqliteStore::open(&format!("sqlite:{}/db.sqlite", a.display()))
        .await
        .unwrap();
    std::os::unix::fs::symlink(a.join("db.sqlite"), b.join("db.sqlite")).unwrap();
    let second = SqliteStore::open(&format!("sqlite:{}/db.sqlite", b.display()))
        .await
        .unwrap();
    assert_eq!(first.lock_path(), second.lock_path());
    let leader = first
        .acquire_leadership(Some(Duration::from_millis(100)))
        .await
        .unwrap();
    let e = second
        .acquire_leadership(Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LeaderBusy { .. }), "{e}");
    // A symlinked directory leads to the same lock too.
    let c = dir.path().join("c");
    std::os::unix::fs::symlink(&a, &c).unwrap();
    let third = SqliteStore::open(&format!("sqlite:{}/db.sqlite", c.display()))
        .await
        .unwrap();
    let e = third
        .acquire_leadership(Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LeaderBusy { .. }), "{e}");
    // Released, the other path's store takes it.
    drop(leader);
    second
        .acquire_leadership(Some(Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(!b.join("leader.lock").exists(), "a lock beside the symlink");
}

/// Caps the database at its current size on every connection of the engine's pool, as a full
/// disk would (SQLite reports SQLITE_FULL either way); `None` lifts the cap.
async fn cap(store: &SqliteStore, pages: Option<i64>) {
    let max = store.pool().options().get_max_connections();
    let mut conns = Vec::new();
    for _ in 0..max {
        conns.push(store.pool().acquire().await.unwrap());
    }
    for c in conns.iter_mut() {
        let n = pages.unwrap_or(1 << 30);
        sqlx::query(&format!("PRAGMA max_page_count = {n}"))
            .execute(&mut **c)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_an_append_cleanly_and_takes_it_once_there_is_space() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/full.db", dir.path().display());
    let store = SqliteStore::open(&url).await.unwrap();
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(400, START, 1_000, &signer);
    store.append(&pulses[0], Some("{}"), None).await.unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(store.pool())
        .await
        .unwrap();
    cap(&store, Some(pages)).await;
    let mut stored = 1;
    let failed = loop {
        assert!(stored < pulses.len(), "the capped database never filled");
        match store.append(&pulses[stored], Some("{}"), None).await {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(failed, StoreError::DiskFull { .. }), "{failed}");
    assert_eq!(failed.category(), "disk full");
    // Nothing of the refused append is visible, everything before it is, and the database
    // is intact.
    assert_eq!(store.counts().await.unwrap().pulses, stored as u64);
    assert_eq!(
        <dyn Store>::last(&store).await.unwrap().as_ref(),
        Some(&pulses[stored - 1])
    );
    assert!(store
        .manifest(1, pulses[stored].pulse_index)
        .await
        .unwrap()
        .is_none());
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    // No connection was left inside the failed transaction: each can begin a new one.
    let max = store.pool().options().get_max_connections();
    let mut conns = Vec::new();
    for _ in 0..max {
        conns.push(store.pool().acquire().await.unwrap());
    }
    for c in conns.iter_mut() {
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut **c)
            .await
            .unwrap();
        sqlx::query("ROLLBACK").execute(&mut **c).await.unwrap();
    }
    drop(conns);
    // Other writes fail the same way while full, and all succeed once space is back. (The
    // cap is a per-connection setting and the failed append's connection was replaced, so it
    // is set again; a full disk needs no such help.)
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(store.pool())
        .await
        .unwrap();
    cap(&store, Some(pages)).await;
    let e = store
        .put_pending_secret(1, 999, &[7u8; 20_000])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::DiskFull { .. }), "{e}");
    cap(&store, None).await;
    store
        .append(&pulses[stored], Some("{}"), None)
        .await
        .unwrap();
    store.append(&pulses[stored + 1], None, None).await.unwrap();
    assert_eq!(store.counts().await.unwrap().pulses, stored as u64 + 2);
    // A second store on the file (as after a restart) sees the same intact chain.
    drop(store);
    let again = lavabeacon_store::open(&url).await.unwrap();
    assert_eq!(
        again.last().await.unwrap().as_ref(),
        Some(&pulses[stored + 1])
    );
}
