//! SQLite, the embedded default: one file under the data directory, WAL with
//! `synchronous=FULL` so a published pulse survives a power cut.

use crate::row::{push_row, PulseRow};
use crate::sql::{self, i, many, now_ms, one};
use crate::{check_extends, Counts, LeaderLock, Leadership, Store, StoreError};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
    lock_path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file named by `url` (`sqlite:PATH`), and runs
    /// the migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
            return Err(StoreError::Unavailable(format!(
                "{url:?}: the store needs a database file, e.g. sqlite:./data/lavabeacon.db"
            )));
        }
        let file = PathBuf::from(path);
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))
            .map_err(|e| StoreError::Unavailable(format!("{path}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(format!("{path}: {e}")))?;
        sqlx::migrate!("../../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("{path}: migrations: {e}")))?;
        Ok(SqliteStore {
            pool,
            lock_path: dir.join("leader.lock"),
        })
    }

    /// The connection pool, for tools that inspect the database directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn check_leader(&self, leader: Option<&Leadership>) -> Result<(), StoreError> {
        match leader.map(|l| &l.inner) {
            None => Ok(()),
            Some(LeaderLock::Sqlite { path, .. }) if *path == self.lock_path => Ok(()),
            Some(_) => Err(StoreError::LostLeadership(
                "the leadership given belongs to another store".into(),
            )),
        }
    }

    async fn insert(
        &self,
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rows: Vec<PulseRow>,
    ) -> Result<(), StoreError> {
        // SQLite allows 32,766 parameters per statement; 27 columns make 1,200 rows fit.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<PulseRow> = rows.by_ref().take(1_000).collect();
            let mut b = QueryBuilder::<Sqlite>::new(sql::INSERT_PREFIX);
            b.push_values(chunk, |mut b, r| push_row!(b, r));
            b.build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    async fn head(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        chain: u64,
    ) -> Result<(Option<(i64, i64, Vec<u8>)>, Option<i64>), StoreError> {
        let head: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(sql::HEAD)
            .bind(i(chain))
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let newest: Option<i64> = sqlx::query_scalar(sql::NEWEST_TIME)
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok((head, newest))
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        self.check_leader(leader)?;
        let row = PulseRow::from_pulse(pulse)?;
        // BEGIN IMMEDIATE takes the write lock before reading the head, so two writers
        // serialise here instead of both extending the same head.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from_sqlx)?;
        let (head, newest) = Self::head(&mut tx, pulse.chain_index).await?;
        check_extends(
            pulse,
            head.as_ref().map(|(i, t, o)| (*i, *t, o.as_slice())),
            newest,
        )?;
        self.insert(&mut tx, vec![row]).await?;
        if let Some(m) = manifest {
            sqlx::query(sql::INSERT_MANIFEST)
                .bind(i(pulse.chain_index))
                .bind(i(pulse.pulse_index))
                .bind(m)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
        let Some(first) = pulses.first() else {
            return Ok(0);
        };
        let rows = pulses
            .iter()
            .map(PulseRow::from_pulse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::from_sqlx)?;
        let (head, newest) = Self::head(&mut tx, first.chain_index).await?;
        crate::check_run(pulses, head, newest)?;
        self.insert(&mut tx, rows).await?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(pulses.len() as u64)
    }

    async fn last(&self) -> Result<Option<Pulse>, StoreError> {
        one(&self.pool, sqlx::query_as(sql::LAST)).await
    }
    async fn last_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
        one(
            &self.pool,
            sqlx::query_as(sql::LAST_IN_CHAIN).bind(i(chain)),
        )
        .await
    }
    async fn first_in_chain(&self, chain: u64) -> Result<Option<Pulse>, StoreError> {
        one(
            &self.pool,
            sqlx::query_as(sql::FIRST_IN_CHAIN).bind(i(chain)),
        )
        .await
    }
    async fn by_index(&self, chain: u64, index: u64) -> Result<Option<Pulse>, StoreError> {
        one(
            &self.pool,
            sqlx::query_as(sql::BY_INDEX).bind(i(chain)).bind(i(index)),
        )
        .await
    }
    async fn at_or_after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        one(&self.pool, sqlx::query_as(sql::AT_OR_AFTER).bind(time_ms)).await
    }
    async fn before(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        one(&self.pool, sqlx::query_as(sql::BEFORE).bind(time_ms)).await
    }
    async fn after(&self, time_ms: i64) -> Result<Option<Pulse>, StoreError> {
        one(&self.pool, sqlx::query_as(sql::AFTER).bind(time_ms)).await
    }
    async fn first_in_period(
        &self,
        chain: u64,
        period: Period,
        time_ms: i64,
    ) -> Result<Option<Pulse>, StoreError> {
        let Some(start) = period.start_of(time_ms) else {
            return Ok(None);
        };
        one(
            &self.pool,
            sqlx::query_as(sql::FIRST_IN_SPAN)
                .bind(i(chain))
                .bind(start)
                .bind(time_ms),
        )
        .await
    }
    fn range_by_time(&self, from_ms: i64, to_ms: i64) -> BoxStream<'_, Result<Pulse, StoreError>> {
        many(
            &self.pool,
            sqlx::query_as(sql::RANGE_BY_TIME).bind(from_ms).bind(to_ms),
        )
    }
    fn range_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<Pulse, StoreError>> {
        many(
            &self.pool,
            sqlx::query_as(sql::RANGE_BY_INDEX)
                .bind(i(chain))
                .bind(i(from))
                .bind(i(to)),
        )
    }

    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        let id = certificate_id(der);
        sqlx::query(sql::PUT_CERTIFICATE)
            .bind(id.0.to_vec())
            .bind(der)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(id)
    }
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::CERTIFICATE)
            .bind(id.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(sql::MANIFEST)
            .bind(i(chain))
            .bind(i(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }
    async fn counts(&self) -> Result<Counts, StoreError> {
        let (pulses, chains): (i64, i64) = sqlx::query_as(sql::COUNTS)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        let certificates: i64 = sqlx::query_scalar(sql::COUNT_CERTIFICATES)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(Counts {
            pulses: pulses as u64,
            chains: chains as u64,
            certificates: certificates as u64,
        })
    }

    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(sql::PUT_SECRET)
            .bind(i(chain))
            .bind(i(index))
            .bind(sealed)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar(sql::SECRET)
            .bind(i(chain))
            .bind(i(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError> {
        sqlx::query(sql::DROP_SECRETS)
            .bind(i(chain))
            .bind(i(up_to_index))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError> {
        let path = self.lock_path.clone();
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Leadership {
                        inner: LeaderLock::Sqlite { file, path },
                    })
                }
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::Unavailable(format!("{}: {e}", path.display())))
                }
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(StoreError::LeaderBusy(format!(
                    "another writer holds {}",
                    path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
