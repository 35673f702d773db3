//! PostgreSQL, for production: read replicas for API nodes, and a standby engine waiting on
//! the leader lock (a session advisory lock held on a dedicated connection).

use crate::row::{push_row, PulseRow};
use crate::sql::{self, i, now_ms, one};
use crate::{
    check_extends, redact, schema, scrub, Counts, LeaderLock, Leadership, Role, StoreError,
};
use futures_util::stream::BoxStream;
use lavabeacon_format::hash::Hash512;
use lavabeacon_format::message::certificate_id;
use lavabeacon_format::time::Period;
use lavabeacon_format::Pulse;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres, QueryBuilder};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The two keys of the leader's advisory lock: "LAVA", "BEAC".
pub(crate) const LOCK_KEYS: (i32, i32) = (0x4C41_5641, 0x4245_4143);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    role: Role,
    options: PgConnectOptions,
    shown_url: String,
}

/// Whether the calling session holds the leader lock (asked on the lock's own connection).
pub(crate) const HOLDS_OWN_LOCK: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks \
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $1::bigint::oid \
    AND objid = $2::bigint::oid AND objsubid = 2 AND granted)";

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

/// How long opening, or a leadership connection, waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
            StoreError::Unavailable(format!("{shown_url}: {}", scrub(&e.to_string())))
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
            // A connection left over from before a server restart is dead; the ping finds that
            // out and the pool connects anew, so the caller's query never sees it.
            .test_before_acquire(true)
            .connect_with(options.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let migrator = sqlx::migrate!("../../migrations/postgres");
        schema::check(&shown_url, &migrator, &applied(&pool).await?, role)?;
        if role == Role::Engine {
            migrator.run(&pool).await.map_err(|e| {
                StoreError::Database(format!(
                    "{shown_url}: migrations: {}",
                    scrub(&e.to_string())
                ))
            })?;
        }
        Ok(PostgresStore {
            pool,
            role,
            options,
            shown_url,
        })
    }

    /// The role this store was opened for.
    pub fn role(&self) -> Role {
        self.role
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
    async fn begin_append<'c>(
        &self,
        conn: &'c mut sqlx::PgConnection,
        chain: u64,
        leader: Option<&Leadership>,
    ) -> Result<
        (
            sqlx::Transaction<'c, Postgres>,
            Option<(i64, i64, Vec<u8>)>,
            Option<i64>,
        ),
        StoreError,
    > {
        let mut tx = sqlx::Connection::begin(conn)
            .await
            .map_err(StoreError::from_sqlx)?;
        // One appender per chain at a time, so the head read below stays the head until commit.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(i(chain))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        if let Some(l) = leader {
            let LeaderLock::Postgres {
                pid,
                started_us,
                lost,
                ..
            } = &l.inner
            else {
                return Err(StoreError::LostLeadership(
                    "the leadership given belongs to another store".into(),
                ));
            };
            if lost.load(Ordering::SeqCst) {
                return Err(StoreError::LostLeadership(format!(
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
            .map_err(StoreError::from_sqlx)?;
            if !held {
                lost.store(true, Ordering::SeqCst);
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

    /// Waits for the leader lock, up to `wait` (None: forever), through database outages:
    /// a failed connection or query is retried with backoff (a warning at most every 10 s),
    /// and the lock is taken on a connection of its own that lives as long as the leadership.
    pub(crate) async fn acquire_leadership_impl(
        &self,
        wait: Option<Duration>,
    ) -> Result<Leadership, StoreError> {
        let started = tokio::time::Instant::now();
        let deadline = wait.map(|w| started + w);
        let past =
            |d: Option<tokio::time::Instant>| d.is_some_and(|d| tokio::time::Instant::now() >= d);
        let mut session: Option<(sqlx::PgConnection, i32, i64)> = None;
        let mut backoff = Duration::from_millis(100);
        let mut warned: Option<tokio::time::Instant> = None;
        loop {
            match self.try_lock(&mut session).await {
                Ok(true) => {
                    let (conn, pid, started_us) = session.take().expect("the lock's session");
                    if warned.is_some() {
                        tracing::info!(
                            database = %self.shown_url,
                            "the database is back; this engine holds the leader lock"
                        );
                    }
                    return Ok(Leadership {
                        inner: LeaderLock::Postgres {
                            conn: tokio::sync::Mutex::new(conn),
                            pid,
                            started_us,
                            lost: AtomicBool::new(false),
                        },
                    });
                }
                Ok(false) => {
                    backoff = Duration::from_millis(100);
                    if past(deadline) {
                        return Err(StoreError::LeaderBusy(format!(
                            "another writer holds the leader lock on {}",
                            self.shown_url
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    // The session (if any) is unusable: the next try connects anew.
                    session = None;
                    if past(deadline) {
                        return Err(e);
                    }
                    if warned.is_none_or(|w| w.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(
                            database = %self.shown_url,
                            error = %e,
                            "waiting for the leader lock: the database cannot be reached; retrying"
                        );
                        warned = Some(tokio::time::Instant::now());
                    }
                    let sleep = match deadline {
                        Some(d) => {
                            backoff.min(d.saturating_duration_since(tokio::time::Instant::now()))
                        }
                        None => backoff,
                    };
                    tokio::time::sleep(sleep).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One try at the lock: connects `session` if it is not connected yet, then asks.
    async fn try_lock(
        &self,
        session: &mut Option<(sqlx::PgConnection, i32, i64)>,
    ) -> Result<bool, StoreError> {
        if session.is_none() {
            let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect()).await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return Err(StoreError::Unavailable(format!(
                        "{}: {}",
                        self.shown_url,
                        scrub(&e.to_string())
                    )))
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "{}: no answer within {CONNECT_TIMEOUT:?}",
                        self.shown_url
                    )))
                }
            };
            let (pid, started_us): (i32, i64) = sqlx::query_as(
                "SELECT pg_backend_pid(), (extract(epoch FROM backend_start) * 1000000)::bigint \
                 FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            )
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::from_sqlx)?;
            *session = Some((conn, pid, started_us));
        }
        let (conn, _, _) = session.as_mut().expect("connected above");
        let asked = tokio::time::timeout(
            CONNECT_TIMEOUT,
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LOCK_KEYS.0)
                .bind(LOCK_KEYS.1)
                .fetch_one(conn),
        )
        .await;
        match asked {
            Ok(r) => r.map_err(StoreError::from_sqlx),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: no answer within {CONNECT_TIMEOUT:?}",
                self.shown_url
            ))),
        }
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
        .map_err(StoreError::from_sqlx)?;
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
    .map_err(StoreError::from_sqlx)?;
    Ok(schema::Applied {
        table,
        highest,
        failed,
    })
}

crate::store_impl!(PostgresStore, "postgres");

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
