//! PostgreSQL, for production: read replicas for API nodes, and a standby engine waiting on
//! the leader lock (a session advisory lock held on a dedicated connection).

use crate::row::{push_row, PulseRow};
use crate::sql::{self, i, many, now_ms, one};
use crate::{check_extends, redact, Counts, LeaderLock, Leadership, StoreError};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres, QueryBuilder};
use std::str::FromStr;
use std::time::Duration;

/// The two keys of the leader's advisory lock: "LAVA", "BEAC".
const LOCK_KEYS: (i32, i32) = (0x4C41_5641, 0x4245_4143);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    shown_url: String,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db`) and runs the migrations.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown_url = redact(url);
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("{shown_url}: {}", without_url(&e.to_string(), url)))
        })?;
        // One plain connection first: a stopped server or a wrong password fails at once with
        // the server's own reason, instead of after the pool's acquire timeout.
        options.connect().await.map_err(|e| {
            StoreError::Unavailable(format!("{shown_url}: {}", without_url(&e.to_string(), url)))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            // A broken connection shows up as an error on the query itself; pinging before
            // every acquire would double the round trips of every lookup.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "{shown_url}: {}",
                    without_url(&e.to_string(), url)
                ))
            })?;
        sqlx::migrate!("../../migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("{shown_url}: migrations: {e}")))?;
        Ok(PostgresStore {
            pool,
            options,
            shown_url,
        })
    }

    /// The connection pool, for tools that inspect the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn insert(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        rows: Vec<PulseRow>,
    ) -> Result<(), StoreError> {
        // PostgreSQL allows 65,535 parameters per statement; 27 columns make 2,400 rows fit.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<PulseRow> = rows.by_ref().take(2_000).collect();
            let mut b = QueryBuilder::<Postgres>::new(sql::INSERT_PREFIX);
            b.push_values(chunk, |mut b, r| push_row!(b, r));
            b.build()
                .execute(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }

    /// Begins an append: serialises writers of the chain, checks leadership, reads the head.
    async fn begin_append(
        &self,
        chain: u64,
        leader: Option<&Leadership>,
    ) -> Result<
        (
            sqlx::Transaction<'_, Postgres>,
            Option<(i64, i64, Vec<u8>)>,
            Option<i64>,
        ),
        StoreError,
    > {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        // One appender per chain at a time, so the head read below stays the head until commit.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(i(chain))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        if let Some(l) = leader {
            let LeaderLock::Postgres { pid, .. } = &l.inner else {
                return Err(StoreError::LostLeadership(
                    "the leadership given belongs to another store".into(),
                ));
            };
            // The lock is a session lock of the leader's own connection: if that session died,
            // the lock is gone and so is the right to write.
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 \
                 AND classid = $2::bigint::oid AND objid = $3::bigint::oid AND objsubid = 2 AND granted)",
            )
            .bind(*pid)
            .bind(i64::from(LOCK_KEYS.0))
            .bind(i64::from(LOCK_KEYS.1))
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            if !held {
                return Err(StoreError::LostLeadership(format!(
                    "the leader lock's session (pid {pid}) no longer holds it"
                )));
            }
        }
        let head: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(sql::HEAD)
            .bind(i(chain))
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let newest: Option<i64> = sqlx::query_scalar(sql::NEWEST_TIME)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok((tx, head, newest))
    }
}

/// sqlx can echo the URL in connection errors; never let the password through.
fn without_url(message: &str, url: &str) -> String {
    message.replace(url, &redact(url))
}

/// What only this backend does differently; the rest of `Store` is `store_impl!`.
impl PostgresStore {
    /// A one-pulse lookup (`store_impl!`): through the pool.
    pub(crate) async fn one_row(
        &self,
        q: &'static str,
        args: &[i64],
    ) -> Result<Option<Pulse>, StoreError> {
        let mut query = sqlx::query_as::<_, PulseRow>(q);
        for a in args {
            query = query.bind(*a);
        }
        one(&self.pool, query).await
    }

    pub(crate) async fn acquire_leadership_impl(
        &self,
        wait: Option<Duration>,
    ) -> Result<Leadership, StoreError> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        // A connection of its own, outside the pool: the lock lives exactly as long as it does.
        let mut conn = self
            .options
            .connect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", self.shown_url)))?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LOCK_KEYS.0)
                .bind(LOCK_KEYS.1)
                .fetch_one(&mut conn)
                .await
                .map_err(StoreError::from_sqlx)?;
            if got {
                return Ok(Leadership {
                    inner: LeaderLock::Postgres {
                        conn: tokio::sync::Mutex::new(conn),
                        pid,
                    },
                });
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(StoreError::LeaderBusy(format!(
                    "another writer holds the leader lock on {}",
                    self.shown_url
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

crate::store_impl!(PostgresStore, "postgres");
