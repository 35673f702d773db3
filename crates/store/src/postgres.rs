//! PostgreSQL, for production: read replicas for API nodes, and a standby engine waiting on
//! the leader lock (a session advisory lock held on a dedicated connection).

use crate::row::{push_row, PulseRow};
use crate::sql::{self, i, many, now_ms, one};
use crate::{check_extends, redact, Counts, LeaderLock, Leadership, Store, StoreError};
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

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        let row = PulseRow::from_pulse(pulse)?;
        let (mut tx, head, newest) = self.begin_append(pulse.chain_index, leader).await?;
        check_extends(
            pulse,
            head.as_ref().map(|(i, t, o)| (*i, *t, o.as_slice())),
            newest,
        )?;
        Self::insert(&mut tx, vec![row]).await?;
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
        let (mut tx, head, newest) = self.begin_append(first.chain_index, None).await?;
        crate::check_run(pulses, head, newest)?;
        Self::insert(&mut tx, rows).await?;
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
