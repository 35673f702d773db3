//! Who opens the store decides what it may do: only the engine migrates and writes; API nodes
//! and audits check the schema version, never write, and an audit never creates a database.

mod common;

use common::chain::{build_chain, ed25519_identity};
use common::Db;
use futures_util::TryStreamExt;
use lavabeacon_store::{open_with, Role, StoreError};
use std::time::Duration;

const START: &str = "2026-02-01T00:00:00.000Z";

contract!(
    api_and_audit_stores_read_everything_and_refuse_every_write,
    an_api_store_refuses_a_database_newer_than_this_build,
);

async fn api_and_audit_stores_read_everything_and_refuse_every_write(db: &Db) {
    let (signer, cert) = ed25519_identity(1);
    let pulses = build_chain(3, START, 60_000, &signer);
    for p in &pulses {
        db.store.append(p, Some("{\"m\":1}"), None).await.unwrap();
    }
    db.store.put_certificate(&cert.der).await.unwrap();
    db.store.put_pending_secret(1, 4, b"sealed").await.unwrap();
    for role in [Role::Api, Role::Audit] {
        let store = db.open_as(role).await;
        assert_eq!(store.last().await.unwrap().as_ref(), pulses.last());
        assert_eq!(
            store.by_index(1, 2).await.unwrap().as_ref(),
            Some(&pulses[1])
        );
        let all: Vec<_> = store
            .range_by_time(0, i64::MAX)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all, pulses);
        let ms: Vec<_> = store
            .manifests_by_index(1, 1, 3)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(store.certificates().await.unwrap().len(), 1);
        assert_eq!(store.counts().await.unwrap().pulses, 3);
        assert!(store.pending_secret(1, 4).await.unwrap().is_some());

        let next = build_chain(4, START, 60_000, &signer).pop().unwrap();
        let refused = [
            store.append(&next, None, None).await.err(),
            store.bulk_load(std::slice::from_ref(&next)).await.err(),
            store.put_certificate(b"x").await.err(),
            store.put_manifests(&[(1, 1, "{}".into())]).await.err(),
            store.put_pending_secret(1, 5, b"s").await.err(),
            store.drop_pending_secrets(1, 9).await.err(),
            store
                .acquire_leadership(Some(Duration::from_millis(10)))
                .await
                .err(),
        ];
        for e in refused {
            let e = e.expect("a write through a read-only role");
            assert!(
                matches!(e, StoreError::Refused { .. }),
                "{}: {e}",
                role.name()
            );
            assert!(e.to_string().contains("never writes"), "{e}");
        }
        assert_eq!(db.store.counts().await.unwrap().pulses, 3);
        assert!(db.store.pending_secret(1, 4).await.unwrap().is_some());
    }
}

async fn an_api_store_refuses_a_database_newer_than_this_build(db: &Db) {
    // A later lavabeacon migrated this database further than this build knows.
    match db.store.backend() {
        "sqlite" => {
            let s = lavabeacon_store::SqliteStore::open(&db.url).await.unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, x'00', 0)",
            )
            .execute(s.pool())
            .await
            .unwrap();
        }
        _ => {
            let s = lavabeacon_store::PostgresStore::open(&db.url)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
            )
            .execute(s.pool())
            .await
            .unwrap();
            s.pool().close().await;
        }
    }
    for role in [Role::Api, Role::Audit, Role::Engine] {
        let e = open_with(&db.url, role)
            .await
            .err()
            .expect("a newer schema");
        assert!(matches!(e, StoreError::Schema { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("this lavabeacon is older than the database: upgrade it"),
            "{e}"
        );
        assert_eq!(e.category(), "schema version mismatch");
    }
}

#[tokio::test]
async fn an_api_store_on_an_unmigrated_database_says_to_run_the_engine() {
    // SQLite: a file that exists but was never migrated (a new empty database).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x INTEGER)")
        .unwrap();
    let url = format!("sqlite:{}", file.display());
    for role in [Role::Api, Role::Audit] {
        let e = open_with(&url, role).await.err().expect("no schema");
        assert!(matches!(e, StoreError::Schema { .. }), "{e}");
        assert!(
            e.to_string().contains(
                "run `lavabeacon engine` (or serve) once against the primary to migrate it"
            ),
            "{e}"
        );
    }
    // And nothing was created in it.
    let tables: i64 = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);

    // PostgreSQL: a fresh database.
    let Some(mut db) = fresh_postgres().await else {
        return;
    };
    let e = open_with(&db.1, Role::Api).await.err().expect("no schema");
    assert!(
        e.to_string()
            .contains("run `lavabeacon engine` (or serve) once against the primary to migrate it"),
        "{e}"
    );
    // Still nothing in it: the API role created no table.
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut db.0)
    .await
    .unwrap();
    assert_eq!(n, 0);
    drop_fresh(db).await;
}

#[tokio::test]
async fn an_older_schema_is_reported_as_older() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}/old.db", dir.path().display());
    let s = lavabeacon_store::SqliteStore::open(&url).await.unwrap();
    // As if this build had one migration more than the database.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(s.pool())
    .await
    .unwrap();
    drop(s);
    let e = open_with(&url, Role::Api).await.err().expect("older");
    assert!(e.to_string().contains("older than this build's"), "{e}");
    assert!(e.to_string().contains("to migrate it"), "{e}");
}

#[tokio::test]
async fn audit_and_api_never_create_a_missing_sqlite_database_or_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo/x.db");
    for role in [Role::Audit, Role::Api] {
        let e = open_with(&format!("sqlite:{}", typo.display()), role)
            .await
            .err()
            .expect("a missing database");
        assert!(
            e.to_string()
                .contains(&format!("no database at {}", typo.display())),
            "{e}"
        );
        assert!(!typo.parent().unwrap().exists(), "{} created", role.name());
    }
    // The same inside an existing directory: no file appears.
    let missing = dir.path().join("missing.db");
    assert!(
        open_with(&format!("sqlite:{}", missing.display()), Role::Audit)
            .await
            .is_err()
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn audit_opens_sqlite_read_only_and_leaves_the_database_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lb.db");
    let url = format!("sqlite:{}", file.display());
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(5, START, 60_000, &signer);
    {
        let engine = lavabeacon_store::SqliteStore::open(&url).await.unwrap();
        for p in &pulses {
            lavabeacon_store::Store::append(&engine, p, None, None)
                .await
                .unwrap();
        }
        // Everything in the file itself, the engine gone: from here on only the audit could
        // change the file.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(engine.pool())
            .await
            .unwrap();
        engine.pool().close().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                format!("{:?}:{}", e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let listed = listing();
    let before = std::fs::read(&file).unwrap();
    let audit = lavabeacon_store::SqliteStore::open_with(&url, Role::Audit)
        .await
        .unwrap();
    let all: Vec<_> = <dyn lavabeacon_store::Store>::range_by_index(&audit, 1, 1, 5)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all, pulses);
    assert_eq!(
        <dyn lavabeacon_store::Store>::by_index(&audit, 1, 3)
            .await
            .unwrap()
            .as_ref(),
        Some(&pulses[2])
    );
    // Even a hand-written statement cannot write through its connections.
    let e = sqlx::query("CREATE TABLE sneaky (x INTEGER)")
        .execute(audit.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("readonly"), "{e}");
    drop(audit);
    // (SQLite may create the -wal and -shm files beside it; the database file stays as it was.)
    assert!(
        std::fs::read(&file).unwrap() == before,
        "the database file changed: {listed:?} became {:?}",
        listing()
    );
}

#[tokio::test]
async fn postgres_api_sessions_are_read_only_and_reads_work_on_a_read_only_database() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let (signer, _) = ed25519_identity(1);
    let pulses = build_chain(3, START, 60_000, &signer);
    for p in &pulses {
        db.store.append(p, Some("{}"), None).await.unwrap();
    }
    let api = lavabeacon_store::PostgresStore::open_with(&db.url, Role::Api)
        .await
        .unwrap();
    let e = sqlx::query("CREATE TABLE sneaky (x INT)")
        .execute(api.pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only transaction"), "{e}");
    drop(api);
    // The whole database read-only, as a hot standby is: every read path still answers.
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::admin_url())
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let api = open_with(&db.url, Role::Api).await.unwrap();
    assert_eq!(api.last().await.unwrap().as_ref(), pulses.last());
    assert_eq!(
        api.first_in_chain(1).await.unwrap().as_ref(),
        pulses.first()
    );
    assert!(api.at_or_after(0).await.unwrap().is_some());
    let all: Vec<_> = api.range_by_index(1, 1, 3).try_collect().await.unwrap();
    assert_eq!(all, pulses);
    let ms: Vec<_> = api.manifests_by_index(1, 1, 3).try_collect().await.unwrap();
    assert_eq!(ms.len(), 3);
    assert_eq!(api.counts().await.unwrap().pulses, 3);
    assert!(api.manifest(1, 2).await.unwrap().is_some());
    assert!(api.certificates().await.unwrap().is_empty());
    drop(api);
    db.cleanup().await;
}

/// A connection to a fresh database, its URL and its name.
type Fresh = (sqlx::PgConnection, String, String);

/// A new, empty PostgreSQL database (not migrated), or None without a server.
async fn fresh_postgres() -> Option<Fresh> {
    let admin = common::admin_url();
    let mut c = match <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable at {admin}: {e}");
            return None;
        }
    };
    let name = format!("lbtest_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    drop(c);
    Some((conn, url, name))
}

async fn drop_fresh(f: Fresh) {
    drop(f.0);
    if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&common::admin_url()).await
    {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", f.2))
            .execute(&mut c)
            .await;
    }
}
