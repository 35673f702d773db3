//! Real databases for the contract tests: a fresh SQLite file per test, and a fresh database on
//! a real PostgreSQL server per test (`LAVABEACON_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without a server the PostgreSQL tests are
//! skipped with a message, except under `CI=true`, where that fails the run.
#![allow(dead_code)]

#[path = "../../../format/tests/support/mod.rs"]
pub mod chain;
pub mod cluster;

use lavabeacon_store::Store;
use sqlx::Connection;
use std::sync::Arc;

pub struct Db {
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl Db {
    /// Another store on the same database (a second engine, a second writer).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        lavabeacon_store::open(&self.url).await.unwrap()
    }

    /// Another store on the same database, for `role`.
    pub async fn open_as(&self, role: lavabeacon_store::Role) -> Arc<dyn Store> {
        lavabeacon_store::open_with(&self.url, role).await.unwrap()
    }

    /// Drops a PostgreSQL test database.
    pub async fn cleanup(self) {
        if let Some(name) = self.pg_name {
            drop(self.store);
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        }
    }
}

pub async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("data/lavabeacon.db").display());
    let store = lavabeacon_store::open(&url).await.unwrap();
    Db {
        url,
        store,
        _dir: Some(dir),
        pg_name: None,
    }
}

pub fn admin_url() -> String {
    std::env::var("LAVABEACON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub async fn postgres() -> Option<Db> {
    let admin = admin_url();
    let mut c = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and PostgreSQL is not reachable at {admin}: {e}")
        }
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
    let base = admin.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{name}");
    let store = lavabeacon_store::open(&url).await.unwrap();
    Some(Db {
        url,
        store,
        _dir: None,
        pg_name: Some(name),
    })
}

/// Runs an async contract test against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::sqlite().await;
                    super::$name(&db).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::postgres().await {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                }
            }
        )*
    };
}
