//! Bad databases get clear errors, with no secret in them.

mod common;

use lavabeacon_store::{open, StoreError};

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_and_the_password_stays_secret() {
    let e = open("postgres://beacon:s3cret-pw@127.0.0.1:1/lavabeacon")
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    let msg = e.to_string();
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(
        msg.contains("postgres://beacon:***@127.0.0.1:1/lavabeacon"),
        "{msg}"
    );
}

#[tokio::test]
async fn unknown_urls_and_unusable_paths_are_refused() {
    let e = open("mysql://x@host/db").await.err().unwrap();
    assert!(
        e.to_string()
            .contains("use sqlite:PATH or postgres://HOST/DB"),
        "{e}"
    );
    let e = open("sqlite::memory:").await.err().unwrap();
    assert!(e.to_string().contains("needs a database file"), "{e}");
    let e = open("sqlite:/proc/no-such-place/lavabeacon.db")
        .await
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
}

#[tokio::test]
async fn sqlite_runs_with_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        lavabeacon_store::SqliteStore::open(&format!("sqlite:{}/b.db", dir.path().display()))
            .await
            .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        (mode.as_str(), sync),
        ("wal", 2),
        "WAL with synchronous=FULL"
    );
}

#[tokio::test]
async fn a_postgres_leader_whose_session_dies_can_no_longer_write() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let (signer, _) = common::chain::ed25519_identity(1);
    let pulses = common::chain::build_chain(2, "2026-01-01T00:00:00.000Z", 60_000, &signer);
    let leader = db.store.acquire_leadership(None).await.unwrap();
    db.store
        .append(&pulses[0], None, Some(&leader))
        .await
        .unwrap();
    // The leader's lock session is killed, as when its host dies or the network drops.
    let pid = leader.postgres_pid().unwrap();
    let admin = lavabeacon_store::PostgresStore::open(&db.url)
        .await
        .unwrap();
    let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin.pool())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let e = db
        .store
        .append(&pulses[1], None, Some(&leader))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::LostLeadership { .. }), "{e}");
    assert!(matches!(
        leader.check().await,
        Err(StoreError::LostLeadership { .. })
    ));
    // A standby takes over at once and writes.
    let standby = db.reopen().await;
    let l2 = standby
        .acquire_leadership(Some(std::time::Duration::from_secs(2)))
        .await
        .unwrap();
    standby.append(&pulses[1], None, Some(&l2)).await.unwrap();
    drop((l2, leader, standby, admin));
    db.cleanup().await;
}

#[tokio::test]
async fn no_form_of_a_password_reaches_an_error_message() {
    // Nothing listens on port 1: each open fails, with the URL in its message.
    let cases = [
        ("postgres://beacon:s3cret@pw@127.0.0.1:1/lb", vec!["s3cret", "pw@127"]),
        ("postgres://beacon:a:b:c-secret@127.0.0.1:1/lb", vec!["a:b", "c-secret"]),
        ("postgresql://beacon:p%40ss-enc@127.0.0.1:1/lb", vec!["p%40ss", "p@ss", "ss-enc"]),
        ("postgres://beacon@127.0.0.1:1/lb?password=qs-secret", vec!["qs-secret"]),
        (
            "postgres://beacon@127.0.0.1:1/lb?sslmode=disable&password=amp-secret&application_name=x",
            vec!["amp-secret"],
        ),
        ("postgres://beacon@127.0.0.1:1/lb?sslpassword=key-secret", vec!["key-secret"]),
    ];
    for (url, secrets) in cases {
        for role in [
            lavabeacon_store::Role::Engine,
            lavabeacon_store::Role::Api,
            lavabeacon_store::Role::Audit,
        ] {
            let e = lavabeacon_store::open_with(url, role)
                .await
                .err()
                .expect("nothing listens on port 1");
            let msg = format!("{e} / {e:?}");
            for s in &secrets {
                assert!(!msg.contains(s), "{url}: {s:?} leaked in {msg}");
            }
            assert!(msg.contains("127.0.0.1:1/lb"), "{msg}");
            assert_eq!(e.category(), "database unavailable", "{msg}");
        }
    }
    // Not a URL the store takes, but its password stays hidden in the refusal all the same.
    let e = open("host=db user=beacon password=kv-secret dbname=lb")
        .await
        .err()
        .unwrap();
    assert!(!e.to_string().contains("kv-secret"), "{e}");
}

#[test]
fn every_error_has_a_short_public_category() {
    let all = [
        (
            StoreError::Conflict {
                chain: 1,
                index: 2,
                reason: "x".into(),
            },
            "conflict",
        ),
        (
            StoreError::LeaderBusy { lock: "x".into() },
            "not the leader",
        ),
        (StoreError::lost_leadership("x"), "leadership lost"),
        (StoreError::unsupported("x"), "cannot store"),
        (StoreError::corrupt("x"), "corrupt data"),
        (StoreError::refused("x"), "refused by the database"),
        (
            StoreError::unavailable("sqlite", "x"),
            "database unavailable",
        ),
        (
            StoreError::DiskFull {
                backend: "sqlite",
                detail: "x".into(),
            },
            "disk full",
        ),
        (
            StoreError::Schema { detail: "x".into() },
            "schema version mismatch",
        ),
        (StoreError::database("postgres", "x"), "database error"),
    ];
    for (e, word) in all {
        assert_eq!(e.category(), word);
    }
}
