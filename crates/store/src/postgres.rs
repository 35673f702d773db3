//! PostgreSQL, for production: read replicas for API nodes, and a standby engine waiting on
//! the leader lock (a session advisory lock held on a dedicated connection).

use crate::error::StoreError;
use crate::leader::{self, LeaderLock, Leadership, CONNECT_TIMEOUT, LOCK_KEYS, LOG_LOCK_KEYS};
use crate::lookup::{Lookup, Range};
use crate::pooled::{BeginAppend, PooledStore};
use crate::redact::{redact, scrub};
use crate::role::Role;
use crate::schema;
use crate::sql::{self, db_int};
use crate::{Counts, Store};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::Pulse;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres};
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The PostgreSQL store.
pub struct PostgresStore {
    /// The pool and the SQL both backends share.
    sql: PooledStore<Postgres>,
    options: PgConnectOptions,
    shown_url: String,
}

/// `postgres`, for errors and [`Store::backend`].
const BACKEND: &str = "postgres";

/// PostgreSQL allows 65,535 parameters per statement; 27 columns make 2,400 rows fit.
const ROWS_PER_INSERT: usize = 2_000;

fn fail(e: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(BACKEND, e)
}

/// A pooled connection idle this long is pinged before it is used again (see `open_with`).
const PING_IF_IDLE: Duration = Duration::from_millis(100);

/// Per role: pool size and how long a caller waits for a connection.
fn limits(role: Role) -> (u32, Duration) {
    match role {
        // One pulse a period and a few reads: a small pool that nobody else can take.
        Role::Engine => (4, Duration::from_secs(2)),
        // Reads fail fast while the database is down: a 503 within about a second.
        Role::Api => (8, Duration::from_secs(1)),
        Role::Audit => (2, Duration::from_secs(1)),
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db`) for the engine and runs the migrations.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        Self::open_with(url, Role::Engine).await
    }

    /// Connects to `url` for `role` (see [`Role`]): only the engine migrates; the API and
    /// audit roles check the schema version and use read-only sessions, so they work on a hot
    /// standby.
    pub async fn open_with(url: &str, role: Role) -> Result<PostgresStore, StoreError> {
        crate::redact::remember(url);
        let shown_url = redact(url);
        let unavailable = |e: &dyn std::fmt::Display| {
            StoreError::unavailable(BACKEND, format!("{shown_url}: {}", scrub(&e.to_string())))
        };
        let (url, dropped) = without_sslpassword(url);
        if dropped {
            // sqlx does not know this parameter and would log it, value and all.
            tracing::warn!(
                database = %shown_url,
                "sslpassword is not supported (use an unencrypted client key): ignored"
            );
        }
        let mut options = PgConnectOptions::from_str(&url).map_err(|e| unavailable(&e))?;
        if role != Role::Engine {
            // Every transaction of these sessions is read-only: nothing can write through them,
            // and a hot standby accepts them.
            options = options.options([("default_transaction_read_only", "on")]);
        }
        // One plain connection first: a stopped server or a wrong password fails at once with
        // the server's own reason, instead of after the pool's acquire timeout.
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(c)) => drop(c),
            Ok(Err(e)) => return Err(unavailable(&e)),
            Err(_) => {
                return Err(unavailable(&format!(
                    "no answer within {CONNECT_TIMEOUT:?}"
                )))
            }
        }
        let (max, acquire) = limits(role);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .min_connections(0)
            .acquire_timeout(acquire)
            // A connection left over from before a server restart is dead; a ping finds that
            // out and the pool connects anew, so the caller's query never sees it. sqlx pings
            // every connection as it goes back to the pool already, so only one that sat idle
            // since (long enough for a restart to have happened) is pinged again before use:
            // pinging every time made each lookup two round trips, and held an API node on
            // PostgreSQL to half SQLite's lookup rate (the ten_years bench).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let migrator = sqlx::migrate!("../../migrations/postgres");
        schema::check(&shown_url, &migrator, &applied(&pool).await?, role)?;
        if role == Role::Engine {
            migrator.run(&pool).await.map_err(|e| {
                StoreError::database(
                    BACKEND,
                    format!("{shown_url}: migrations: {}", scrub(&e.to_string())),
                )
            })?;
        }
        Ok(PostgresStore {
            sql: PooledStore {
                pool,
                role,
                backend: BACKEND,
            },
            options,
            shown_url,
        })
    }

    /// The role this store was opened for.
    pub fn role(&self) -> Role {
        self.sql.role
    }

    /// The connection pool, for tools that inspect the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.sql.pool
    }
}

/// `url` without its `sslpassword` query parameters, and whether it had one.
fn without_sslpassword(url: &str) -> (String, bool) {
    let after_host = url.rfind('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_host..].find('?').map(|q| after_host + q) else {
        return (url.to_string(), false);
    };
    let (base, query) = (&url[..q], &url[q + 1..]);
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            !kv.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("sslpassword"))
        })
        .collect();
    let dropped = kept.len() != query.split('&').count();
    if kept.is_empty() {
        (base.to_string(), dropped)
    } else {
        (format!("{base}?{}", kept.join("&")), dropped)
    }
}

/// The schema versions the database has applied (none: never migrated).
async fn applied(pool: &PgPool) -> Result<schema::Applied, StoreError> {
    let table: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(fail)?;
    if !table {
        return Ok(schema::Applied {
            table,
            highest: None,
            failed: None,
        });
    }
    let (highest, failed): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MAX(version) FILTER (WHERE success), MIN(version) FILTER (WHERE NOT success) \
         FROM _sqlx_migrations",
    )
    .fetch_one(pool)
    .await
    .map_err(fail)?;
    Ok(schema::Applied {
        table,
        highest,
        failed,
    })
}

impl BeginAppend<Postgres> for PostgresStore {
    /// Begins the transaction, serialises writers of the chain, checks the leadership.
    async fn begin_append<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
        chain: u64,
        leader: Option<&'c Leadership>,
    ) -> Result<sqlx::Transaction<'c, Postgres>, StoreError> {
        let mut tx = sqlx::Connection::begin(conn).await.map_err(fail)?;
        // One appender per chain at a time, so the head read below stays the head until commit.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(db_int(chain))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        if let Some(l) = leader {
            let LeaderLock::Postgres {
                pid,
                started_us,
                lost,
                ..
            } = &l.inner
            else {
                return Err(StoreError::lost_leadership(
                    "the leadership given belongs to another store",
                ));
            };
            if lost.load(Ordering::SeqCst) {
                return Err(StoreError::lost_leadership(format!(
                    "the leader lock's session (pid {pid}) was lost"
                )));
            }
            // The lock is a session lock of the leader's own connection: if that session died
            // (killed, or the server restarted), the lock is gone and so is the right to write.
            // The session is named by its pid and its start time, so that a later session that
            // happens to get the same pid is not taken for it.
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.pid = $1 AND l.classid = $2::bigint::oid \
                 AND l.objid = $3::bigint::oid AND l.objsubid = 2 AND l.granted \
                 AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = $4)",
            )
            .bind(*pid)
            .bind(i64::from(LOCK_KEYS.0))
            .bind(i64::from(LOCK_KEYS.1))
            .bind(*started_us)
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
            if !held {
                lost.store(true, Ordering::SeqCst);
                return Err(StoreError::lost_leadership(format!(
                    "the leader lock's session (pid {pid}) no longer holds it"
                )));
            }
        }
        Ok(tx)
    }
    /// Begins the transaction and takes the log's lock.
    async fn begin_log<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
    ) -> Result<sqlx::Transaction<'c, Postgres>, StoreError> {
        let mut tx = sqlx::Connection::begin(conn).await.map_err(fail)?;
        self.lock_log(&mut tx).await?;
        Ok(tx)
    }

    /// The log's lock: an advisory lock of the two-key kind (the chains' locks are one-key,
    /// the leader's has other keys), taken after the chain's, so no two orders deadlock.
    async fn lock_log<'t>(
        &'t self,
        tx: &'t mut sqlx::Transaction<'_, Postgres>,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOG_LOCK_KEYS.0)
            .bind(LOG_LOCK_KEYS.1)
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn append(
        &self,
        pulse: &Pulse,
        manifest: Option<&str>,
        leader: Option<&Leadership>,
    ) -> Result<(), StoreError> {
        let manifests: Vec<(u64, u64, String)> = manifest
            .map(|m| (pulse.chain_index, pulse.pulse_index, m.to_string()))
            .into_iter()
            .collect();
        let run = std::slice::from_ref(pulse);
        self.sql
            .append_run(self, run, &manifests, leader, ROWS_PER_INSERT)
            .await
            .map(drop)
    }

    async fn bulk_load(&self, pulses: &[Pulse]) -> Result<u64, StoreError> {
        self.sql
            .append_run(self, pulses, &[], None, ROWS_PER_INSERT)
            .await
    }

    async fn find(&self, lookup: Lookup) -> Result<Option<Pulse>, StoreError> {
        match sql::lookup(lookup) {
            Some(q) => self.sql.one(q).await,
            None => Ok(None),
        }
    }

    fn range(&self, range: Range) -> BoxStream<'_, Result<Pulse, StoreError>> {
        self.sql.range(range)
    }

    async fn put_certificate(&self, der: &[u8]) -> Result<Hash512, StoreError> {
        self.sql.put_certificate(der).await
    }
    async fn certificate(&self, id: &Hash512) -> Result<Option<Vec<u8>>, StoreError> {
        self.sql.certificate(id).await
    }
    async fn certificates(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.sql.certificates().await
    }
    async fn put_external_source(&self, description: &str) -> Result<Hash512, StoreError> {
        self.sql.put_external_source(description).await
    }
    async fn external_source(&self, id: &Hash512) -> Result<Option<String>, StoreError> {
        self.sql.external_source(id).await
    }
    async fn external_sources(&self) -> Result<Vec<String>, StoreError> {
        self.sql.external_sources().await
    }
    async fn put_key_switch(&self, s: &crate::KeySwitch) -> Result<(), StoreError> {
        self.sql.put_key_switch(s).await
    }
    async fn key_switches(&self) -> Result<Vec<crate::KeySwitch>, StoreError> {
        self.sql.key_switches().await
    }
    async fn put_draw(
        &self,
        d: &crate::StoredDraw,
        log_entry: &[u8],
    ) -> Result<crate::StoredDraw, StoreError> {
        self.sql.put_draw_logged(self, d, log_entry).await
    }
    fn log(&self) -> Result<&dyn crate::Log, StoreError> {
        Ok(self)
    }
    async fn draw(&self, id: &Hash512) -> Result<Option<crate::StoredDraw>, StoreError> {
        self.sql.draw(id).await
    }

    async fn put_manifests(&self, manifests: &[(u64, u64, String)]) -> Result<(), StoreError> {
        self.sql.put_manifests(manifests).await
    }
    async fn manifest(&self, chain: u64, index: u64) -> Result<Option<String>, StoreError> {
        self.sql.manifest(chain, index).await
    }
    fn manifests_by_index(
        &self,
        chain: u64,
        from: u64,
        to: u64,
    ) -> BoxStream<'_, Result<(u64, u64, String), StoreError>> {
        self.sql.manifests_by_index(chain, from, to)
    }

    async fn put_pending_secret(
        &self,
        chain: u64,
        index: u64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        self.sql.put_pending_secret(chain, index, sealed).await
    }
    async fn pending_secret(&self, chain: u64, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.sql.pending_secret(chain, index).await
    }
    async fn drop_pending_secrets(&self, chain: u64, up_to_index: u64) -> Result<(), StoreError> {
        self.sql.drop_pending_secrets(chain, up_to_index).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.sql.counts().await
    }

    async fn acquire_leadership(&self, wait: Option<Duration>) -> Result<Leadership, StoreError> {
        self.sql.role.refuse_writes()?;
        leader::wait_for_advisory_lock(&self.options, &self.shown_url, wait).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sslpassword_never_reaches_the_driver() {
        use super::without_sslpassword as w;
        assert_eq!(
            w("postgres://h/db?sslpassword=k&sslmode=require"),
            ("postgres://h/db?sslmode=require".to_string(), true)
        );
        assert_eq!(
            w("postgres://h/db?SSLPASSWORD=k"),
            ("postgres://h/db".to_string(), true)
        );
        assert_eq!(
            w("postgres://u:p?w@h/db?x=1"),
            ("postgres://u:p?w@h/db?x=1".to_string(), false)
        );
        assert_eq!(w("postgres://h/db"), ("postgres://h/db".to_string(), false));
    }
}

crate::log::log_for!(PostgresStore);
